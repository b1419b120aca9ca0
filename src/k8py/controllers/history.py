"""ControllerRevisions: the template history of DaemonSets and StatefulSets (what
`kubectl rollout history/undo ds|sts` read).

`ensure_revision` records the owner's current template as ControllerRevision
`<owner>-<hash>` with data `{"spec": {"template": {..., "$patch": "replace"}}}` (the
strategic merge patch kubectl applies on undo) and makes it the highest revision
number: a template that comes back (an undo) gets its old revision renumbered, as
Kubernetes does. Invariants: one revision per (owner, hash); numbers only grow.
"""

from __future__ import annotations

import copy

from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.informer import Informer
from k8py.controllers.controllerutil import (
    CONTROLLER_REVISION_HASH_LABEL,
    meta,
    new_controller_ref,
)
from k8py.controllers.indexes import BY_CONTROLLER


async def ensure_revision(client: Client, revisions: Informer, owner: Obj, kind: str, name: str, h: str) -> None:
    ns = meta(owner).get("namespace")
    revs: list[Obj] = revisions.by_index(BY_CONTROLLER, meta(owner)["uid"])
    top = max((int(r.get("revision") or 0) for r in revs), default=0)
    existing = revisions.get(ns, name)
    if existing is not None:
        if int(existing.get("revision") or 0) < top:
            cr = copy.deepcopy(existing)
            cr["revision"] = top + 1
            try:
                await client.update("controllerrevisions", cr)
            except ApiError as e:
                if not (e.conflict or e.not_found):
                    raise
        return
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    cr = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
          "metadata": {"name": name, "namespace": ns,
                       "labels": {**((template.get("metadata") or {}).get("labels") or {}),
                                  CONTROLLER_REVISION_HASH_LABEL: h},
                       "ownerReferences": [new_controller_ref(owner, "apps/v1", kind)]},
          "data": {"spec": {"template": template}}, "revision": top + 1}
    try:
        await client.create("controllerrevisions", cr, ns)
    except ApiError as e:
        if not e.already_exists:
            raise
