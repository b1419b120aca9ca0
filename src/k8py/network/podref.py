"""PodRef: what the pod network knows of the pod a sandbox belongs to.

The network package imports no container runtime: anything with a pod's namespace,
name and uid will do (the runtime's `PodSandboxConfig` satisfies this Protocol as it
is), as a CNI plugin gets K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_UID and nothing
of the runtime that calls it.
"""

from __future__ import annotations

from typing import Protocol


class PodRef(Protocol):
    """The pod of a sandbox: read-only identity, no behaviour."""

    @property
    def namespace(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def uid(self) -> str: ...
