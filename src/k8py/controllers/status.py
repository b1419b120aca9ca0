"""Writing the status a controller computed for an object.

`write_status(client, resource, obj, status)` PUTs the status subresource of `obj`
with its status replaced by `status` (a compare-and-swap on the resourceVersion `obj`
carries) and returns the object as written; an object gone meanwhile (NotFound) is no
error: None is returned, and the informer's delete event follows. With
`ignore_conflict`, a stale `obj` (Conflict) gives None as well, for controllers that
rewrite the status on their next periodic sync anyway.
`non_empty(status)` is how controllers compare statuses: without the zero and empty
fields a typed (Go) status would omit.
Invariants: `obj` is never mutated.
"""

from __future__ import annotations

import copy
from typing import Any

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError

EMPTY: tuple[Any, ...] = (0, None, [], {})


async def write_status(client: Client, resource: str, obj: Obj, status: Obj, *,
                       ignore_conflict: bool = False) -> Obj | None:
    written = copy.deepcopy(obj)
    written["status"] = status
    try:
        return await client.update_status(resource, written)
    except ApiError as e:
        if e.not_found or (ignore_conflict and e.conflict):
            return None
        raise


def non_empty(status: Obj, empty: tuple[Any, ...] = EMPTY) -> Obj:
    """The status without its fields whose value is one of `empty`."""
    return {k: v for k, v in status.items() if v not in empty}
