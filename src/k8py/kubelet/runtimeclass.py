"""The runtime handler of a pod, from its RuntimeClass (the kubelet's RuntimeClass
manager): no `runtimeClassName` is the default handler; a class must exist and name a
handler this node runs. k8py's nodes run one handler, `runc` (RUNTIME_HANDLERS).
"""

from __future__ import annotations

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.kubelet.errors import RuntimeHandlerError

DEFAULT_HANDLER = "runc"
RUNTIME_HANDLERS = (DEFAULT_HANDLER,)


async def runtime_handler(client: Client, pod: Obj) -> str:
    """The handler to run the pod's sandbox with; raises RuntimeHandlerError when none."""
    name = (pod.get("spec") or {}).get("runtimeClassName")
    if not name:
        return DEFAULT_HANDLER
    rc = await client.get_or_none("runtimeclasses", str(name))
    if rc is None:
        raise RuntimeHandlerError(f'RuntimeClass "{name}" not found')
    handler = str(rc.get("handler") or "")
    if handler not in RUNTIME_HANDLERS:
        raise RuntimeHandlerError(f'failed to get sandbox runtime: no runtime for "{handler}" is configured')
    return handler
