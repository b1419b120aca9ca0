"""VolumeBinding: a pod's PersistentVolumeClaims constrain where it can go.

- A claim that does not exist fails the pod everywhere (`persistentvolumeclaim "x" not found`).
- A claim bound to a PV with spec.nodeAffinity (a local volume) confines the pod to the
  nodes that affinity selects (`node(s) had volume node affinity conflict`).
- An unbound claim whose StorageClass has volumeBindingMode WaitForFirstConsumer fits
  anywhere; once a node is chosen the scheduler writes the annotation
  `volume.kubernetes.io/selected-node` on the claim (see `claims_to_annotate`) so the
  provisioner creates the volume there.
- An unbound claim with Immediate binding must wait for its PV
  (`pod has unbound immediate PersistentVolumeClaims`)."""

from __future__ import annotations

from typing import Any

from k8py.api.selectors import node_selector_matches
from k8py.scheduler.framework import CycleState, Status
from k8py.scheduler.types import NodeInfo, PodInfo

NAME = "VolumeBinding"
ERR_REASON_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_REASON_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
ERR_REASON_NOT_FOUND = 'persistentvolumeclaim "%s" not found'
ERR_REASON_PV_NOT_FOUND = 'persistentvolume "%s" not found'
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


class VolumeBinding:
    NAME = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo) -> bool | Status:
        if not pod.pvcs:
            return False
        snap = state.snapshot
        selectors: list[dict[str, Any]] = []
        delayed: list[str] = []
        for claim in pod.pvcs:
            pvc = snap.pvc(pod.namespace, claim)
            if pvc is None:
                return Status.unresolvable(ERR_REASON_NOT_FOUND % claim, plugin=NAME)
            volume = (pvc.get("spec") or {}).get("volumeName")
            if volume:
                pv = snap.pv(volume)
                if pv is None:
                    return Status.unresolvable(ERR_REASON_PV_NOT_FOUND % volume, plugin=NAME)
                required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")
                if required is not None:
                    selectors.append(required)
                continue
            sc_name = (pvc.get("spec") or {}).get("storageClassName") or ""
            sc = snap.storage_class(sc_name) if sc_name else None
            if sc is not None and sc.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER:
                delayed.append(claim)
                continue
            return Status.unresolvable(ERR_REASON_UNBOUND_IMMEDIATE, plugin=NAME)
        state.data[NAME] = selectors
        state.data[NAME + "/delayed"] = delayed
        return bool(selectors)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for sel in state.data[NAME]:
            if not node_selector_matches(sel, node.node):
                return _FAIL
        return None


def claims_to_annotate(state: CycleState) -> list[str]:
    """Unbound WaitForFirstConsumer claims of the pod just scheduled."""
    return list(state.data.get(NAME + "/delayed") or [])


_FAIL = Status.unresolvable(ERR_REASON_NODE_CONFLICT, plugin=NAME)


def new() -> VolumeBinding:
    return VolumeBinding()
