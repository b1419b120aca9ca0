"""PersistentVolume binder (Kubernetes' persistentvolume controller) with the
local-path provisioner wired in.

Claims (`pvc:<ns>/<name>`): a claim without storageClassName gets the default class
(the DefaultStorageClass admission step, done here by a patch); an unbound claim
binds to the smallest available PV that fits (class, access modes, volume mode,
capacity, selector; PVs pre-bound to it first); failing that, a class provisioned by
`k8py.io/local-path` gets a new PV — at once for Immediate classes, and for
WaitForFirstConsumer classes once the scheduler has put the node it chose in the
claim's `volume.kubernetes.io/selected-node` annotation. Binding sets the PV's
claimRef and the claim's volumeName, and both phases to Bound.
Volumes (`pv:<name>`): a PV whose claim is gone is Released, or deleted when its
reclaim policy is Delete and we provisioned it (the node agent removes the
directory); an unclaimed PV is Available.
Invariants: every write reads the live object and is a compare-and-swap PUT (or a
merge patch of fields only this controller sets); a PV is bound to at most one claim
(the claimRef is written first, with CAS, before the claim points at it).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from k8py.api.quantity import parse_quantity
from k8py.api.selectors import label_selector_from_dict, node_selector_matches
from k8py.api.types import Obj
from k8py.api.wellknown import (
    ANNOTATION_IS_DEFAULT_CLASS,
    ANNOTATION_IS_DEFAULT_CLASS_BETA,
    ANNOTATION_SELECTED_NODE,
)
from k8py.client.client import Client, retry_on_conflict
from k8py.client.errors import ApiError
from k8py.client.events import NORMAL, WARNING, EventRecorder
from k8py.client.informer import SharedInformerFactory, split_key
from k8py.clock import Clock
from k8py.controllers.base import Controller
from k8py.controllers.controllerutil import (
    is_deleting,
    key_of,
    meta,
)
from k8py.controllers.localpath import (
    DEFAULT_BASE_DIR,
    DEFAULT_CLASS_NAME,
    PROVISIONED_BY,
    PROVISIONER,
    build_pv,
    default_storage_class,
)

log = logging.getLogger(__name__)

STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"


def _phase(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


class PersistentVolumeBinder(Controller):
    name = "persistentvolume-binder-controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 2,
                 base_dir: str = DEFAULT_BASE_DIR, create_default_class: bool = True) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.base_dir = base_dir
        self.create_default_class = create_default_class
        self._announced: set[tuple[str, str]] = set()  # (claim uid, reason) of waiting events sent
        self.pvcs = self.informer("persistentvolumeclaims")
        self.pvs = self.informer("persistentvolumes")
        self.classes = self.informer("storageclasses")
        self.nodes = self.informer("nodes")
        self.watch(self.pvcs, self._claim, self._claim_deleted)
        self.watch(self.pvs, self._volume, self._volume)
        self.watch(self.classes, self._class_changed)

    # -- handlers -------------------------------------------------------------
    def _claim(self, pvc: Obj) -> None:
        self.queue.add(f"pvc:{key_of(pvc)}")

    def _claim_deleted(self, pvc: Obj) -> None:
        vn = (pvc.get("spec") or {}).get("volumeName")
        if vn:
            self.queue.add(f"pv:{vn}")
        for pv in self.pvs.list():
            ref = (pv.get("spec") or {}).get("claimRef") or {}
            if ref.get("uid") == meta(pvc).get("uid"):
                self.queue.add(f"pv:{meta(pv)['name']}")

    def _volume(self, pv: Obj) -> None:
        self.queue.add(f"pv:{meta(pv)['name']}")
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref and ref.get("name"):
            self.queue.add(f"pvc:{ref.get('namespace')}/{ref['name']}")
        elif not ref:  # a free volume may satisfy a pending claim
            for pvc in self.pvcs.list():
                if not (pvc.get("spec") or {}).get("volumeName"):
                    self._claim(pvc)

    def _class_changed(self, sc: Obj) -> None:
        for pvc in self.pvcs.list():
            if _phase(pvc) != "Bound":
                self._claim(pvc)

    async def on_start(self) -> None:
        if not self.create_default_class or self.classes.get(None, DEFAULT_CLASS_NAME) is not None:
            return
        try:
            await self.client.create("storageclasses", default_storage_class())
        except ApiError as e:
            if not e.already_exists:
                log.warning("pv binder: cannot create the default storage class: %s", e)

    # -- sync -----------------------------------------------------------------
    async def sync(self, key: str) -> None:
        kind, _, rest = key.partition(":")
        if kind == "pvc":
            ns, name = split_key(rest)
            pvc = self.pvcs.get(ns, name)
            if pvc is not None:
                await self.sync_claim(pvc)
        elif kind == "pv":
            pv = self.pvs.get(None, rest)
            if pv is not None:
                await self.sync_volume(pv)

    def default_class(self) -> Obj | None:
        defaults = [sc for sc in self.classes.list()
                    if (meta(sc).get("annotations") or {}).get(ANNOTATION_IS_DEFAULT_CLASS) == "true"
                    or (meta(sc).get("annotations") or {}).get(ANNOTATION_IS_DEFAULT_CLASS_BETA) == "true"]
        if not defaults:
            return None
        return sorted(defaults, key=lambda s: (meta(s).get("creationTimestamp") or "", meta(s)["name"]))[-1]

    async def sync_claim(self, pvc: Obj) -> None:
        if is_deleting(pvc):
            return
        md = meta(pvc)
        spec = pvc.get("spec") or {}
        ns, name = md.get("namespace"), md["name"]
        if spec.get("storageClassName") is None and not spec.get("volumeName"):
            default = self.default_class()
            if default is not None:
                await self.client.patch("persistentvolumeclaims", name,
                                        {"spec": {"storageClassName": meta(default)["name"]}}, ns)
                return
        volume_name = spec.get("volumeName")
        if volume_name:
            pv = self.pvs.get(None, volume_name) or await self.client.get_or_none("persistentvolumes", volume_name)
            if pv is None:
                if _phase(pvc) == "Bound":
                    await self._set_phase("persistentvolumeclaims", pvc, "Lost")
                    self.recorder.event(pvc, WARNING, "ClaimLost",
                                              "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
                return
            ref = (pv.get("spec") or {}).get("claimRef")
            if ref is None or (ref.get("namespace") == ns and ref.get("name") == name
                               and ref.get("uid") in (None, "", md.get("uid"))):
                await self.bind(pv, pvc)
            return
        pv = self.find_matching_volume(pvc)
        if pv is not None:
            await self.bind(pv, pvc)
            return
        class_name = spec.get("storageClassName") or ""
        sc = self.classes.get(None, class_name) if class_name else None
        if sc is None:
            msg = ("no persistent volumes available for this claim and no storage class is set"
                   if not class_name else f'storageclass.storage.k8s.io "{class_name}" not found')
            await self._pending(pvc, NORMAL if not class_name else WARNING, "FailedBinding", msg)
            return
        provisioner = sc.get("provisioner") or ""
        node: Obj | None = None
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer":
            node_name = (md.get("annotations") or {}).get(ANNOTATION_SELECTED_NODE)
            if not node_name:
                await self._pending(pvc, NORMAL, "WaitForFirstConsumer",
                                    "waiting for first consumer to be created before binding")
                return
            node = self.nodes.get(None, node_name) or {"metadata": {"name": node_name}}
        if provisioner != PROVISIONER:
            await self._pending(
                pvc, NORMAL, "ExternalProvisioning",
                f"Waiting for a volume to be created either by the external provisioner '{provisioner}' "
                "or manually by the system administrator. If volume creation is delayed, please verify "
                "that the provisioner is running and correctly registered.")
            return
        await self.provision(pvc, sc, node)

    async def _pending(self, pvc: Obj, etype: str, reason: str, message: str) -> None:
        """The claim waits: phase Pending, and one event per claim and reason."""
        if _phase(pvc) != "Pending":
            await self._set_phase("persistentvolumeclaims", pvc, "Pending")
        key = (meta(pvc).get("uid", ""), reason)
        if key not in self._announced:
            self._announced.add(key)
            self.recorder.event(pvc, etype, reason, message)

    def find_matching_volume(self, pvc: Obj) -> Obj | None:
        md = meta(pvc)
        spec = pvc.get("spec") or {}
        class_name = spec.get("storageClassName") or ""
        sc = self.classes.get(None, class_name) if class_name else None
        node_name = (md.get("annotations") or {}).get(ANNOTATION_SELECTED_NODE)
        wait = sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"
        node = self.nodes.get(None, node_name) if node_name else None
        try:
            want = parse_quantity(((spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
        except Exception:
            return None
        modes = set(spec.get("accessModes") or [])
        mode = spec.get("volumeMode") or "Filesystem"
        selector = label_selector_from_dict(spec["selector"]) if spec.get("selector") else None
        best: tuple[Any, str, Obj] | None = None
        for pv in self.pvs.list():
            ps = pv.get("spec") or {}
            ref = ps.get("claimRef")
            if ref:
                if (ref.get("namespace") == md.get("namespace") and ref.get("name") == md["name"]
                        and ref.get("uid") in (None, "", md.get("uid"))):
                    return pv  # pre-bound to this claim
                continue
            if is_deleting(pv) or _phase(pv) not in ("", "Available", "Pending"):
                continue
            if (ps.get("storageClassName") or "") != class_name:
                continue
            if (ps.get("volumeMode") or "Filesystem") != mode:
                continue
            if not modes <= set(ps.get("accessModes") or []):
                continue
            try:
                cap = parse_quantity((ps.get("capacity") or {}).get("storage", "0"))
            except Exception:
                continue
            if cap < want:
                continue
            if selector is not None and not selector.matches(meta(pv).get("labels") or {}):
                continue
            req = (ps.get("nodeAffinity") or {}).get("required")
            if wait:
                if node is None or (req is not None and not node_selector_matches(req, node)):
                    continue
            cand = (cap, meta(pv)["name"], pv)
            if best is None or cand[:2] < best[:2]:
                best = cand
        return best[2] if best else None

    async def provision(self, pvc: Obj, sc: Obj, node: Obj | None) -> None:
        md = meta(pvc)
        ann = md.get("annotations") or {}
        if ann.get(STORAGE_PROVISIONER) != PROVISIONER:
            await self.client.patch("persistentvolumeclaims", md["name"], {"metadata": {"annotations": {
                STORAGE_PROVISIONER: PROVISIONER, BETA_STORAGE_PROVISIONER: PROVISIONER}}}, md.get("namespace"))
        pv = build_pv(pvc, sc, node, self.base_dir)
        try:
            pv = await self.client.create("persistentvolumes", pv)
            self.recorder.event(pvc, NORMAL, "ProvisioningSucceeded",
                                      f"Successfully provisioned volume {meta(pv)['name']}")
        except ApiError as e:
            if not e.already_exists:
                self.recorder.event(pvc, WARNING, "ProvisioningFailed",
                                          f"failed to provision volume with StorageClass \"{meta(sc)['name']}\": "
                                          f"{e.body.get('message', e)}")
                raise
            pv = await self.client.get("persistentvolumes", meta(pv)["name"])
        await self.bind(pv, pvc)

    # -- binding --------------------------------------------------------------
    async def _edit(self, resource: str, name: str, namespace: str | None,
                    fn: Callable[[Obj], bool], status: bool = False) -> Obj | None:
        """Read-modify-write of the live object with CAS; fn edits in place and says
        whether anything changed."""
        result: Obj | None = None

        async def attempt() -> None:
            nonlocal result
            live = await self.client.get_or_none(resource, name, namespace)
            if live is None:
                result = None
                return
            obj = copy.deepcopy(live)
            if not fn(obj):
                result = live
                return
            result = await (self.client.update_status(resource, obj) if status
                            else self.client.update(resource, obj))

        await retry_on_conflict(attempt)
        return result

    async def bind(self, pv: Obj, pvc: Obj) -> None:
        cmd = meta(pvc)
        pv_name = meta(pv)["name"]
        ns, name, uid = cmd.get("namespace"), cmd["name"], cmd.get("uid")
        taken = False

        def claim_volume(o: Obj) -> bool:
            nonlocal taken
            ref = (o.get("spec") or {}).get("claimRef")
            if ref and not (ref.get("namespace") == ns and ref.get("name") == name
                            and ref.get("uid") in (None, "", uid)):
                taken = True
                return False
            want = {"kind": "PersistentVolumeClaim", "namespace": ns, "name": name, "uid": uid,
                    "apiVersion": "v1", "resourceVersion": cmd.get("resourceVersion")}
            if ref and ref.get("uid") == uid:
                return False
            o["spec"]["claimRef"] = want
            o["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
            return True

        live_pv = await self._edit("persistentvolumes", pv_name, None, claim_volume)
        if live_pv is None or taken:
            return

        def phase_bound(o: Obj) -> bool:
            if _phase(o) == "Bound":
                return False
            o.setdefault("status", {})["phase"] = "Bound"
            return True

        await self._edit("persistentvolumes", pv_name, None, phase_bound, status=True)

        def claim_spec(o: Obj) -> bool:
            if meta(o).get("uid") != uid:
                return False
            ann = o["metadata"].setdefault("annotations", {})
            if (o.get("spec") or {}).get("volumeName") == pv_name and ann.get(BIND_COMPLETED) == "yes":
                return False
            o["spec"]["volumeName"] = pv_name
            ann[BIND_COMPLETED] = "yes"
            ann[BOUND_BY_CONTROLLER] = "yes"
            return True

        await self._edit("persistentvolumeclaims", name, ns, claim_spec)
        pvspec = live_pv.get("spec") or {}

        def claim_status(o: Obj) -> bool:
            if meta(o).get("uid") != uid:
                return False
            st = o.setdefault("status", {})
            want = {"phase": "Bound", "accessModes": pvspec.get("accessModes") or [],
                    "capacity": pvspec.get("capacity") or {}}
            if all(st.get(k) == v for k, v in want.items()):
                return False
            st.update(want)
            return True

        before = _phase(pvc)
        await self._edit("persistentvolumeclaims", name, ns, claim_status, status=True)
        if before != "Bound":
            log.info("pv binder: bound %s/%s to %s", ns, name, pv_name)

    async def _set_phase(self, resource: str, obj: Obj, phase: str) -> None:
        def set_phase(o: Obj) -> bool:
            if _phase(o) == phase:
                return False
            o.setdefault("status", {})["phase"] = phase
            return True
        await self._edit(resource, meta(obj)["name"], meta(obj).get("namespace"), set_phase, status=True)

    async def sync_volume(self, pv: Obj) -> None:
        if is_deleting(pv):
            return
        ref = (pv.get("spec") or {}).get("claimRef")
        if not ref:
            if _phase(pv) != "Available":
                await self._set_phase("persistentvolumes", pv, "Available")
            return
        ns, name = ref.get("namespace"), ref.get("name", "")
        pvc = self.pvcs.get(ns, name) or await self.client.get_or_none("persistentvolumeclaims", name, ns)
        if pvc is None or (ref.get("uid") and meta(pvc).get("uid") != ref.get("uid")):
            await self.reclaim(pv)
            return
        if not ref.get("uid"):
            self.queue.add(f"pvc:{ns}/{name}")  # pre-bound by a user: the claim's sync binds it
            return
        if _phase(pv) != "Bound":
            await self._set_phase("persistentvolumes", pv, "Bound")
        if (pvc.get("spec") or {}).get("volumeName") != meta(pv)["name"]:
            self.queue.add(f"pvc:{ns}/{name}")

    async def reclaim(self, pv: Obj) -> None:
        policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain"
        ours = (meta(pv).get("annotations") or {}).get(PROVISIONED_BY) == PROVISIONER
        if policy == "Delete" and ours:
            try:
                await self.client.delete("persistentvolumes", meta(pv)["name"],
                                         preconditions={"uid": meta(pv)["uid"]})
            except ApiError as e:
                if not (e.not_found or e.conflict):
                    raise
            return
        if _phase(pv) != "Released":
            await self._set_phase("persistentvolumes", pv, "Released")
            self.recorder.event(pv, NORMAL if policy == "Retain" else WARNING, "VolumeReleased",
                                      f"Volume is released (reclaim policy {policy}); its claim is gone")


