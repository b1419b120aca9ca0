"""PV binder and local-path provisioner: default class, static binding,
WaitForFirstConsumer provisioning on the selected node, reclaim."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.api.wellknown import ANNOTATION_SELECTED_NODE
from k8py.controllers.localpath import PROVISIONER
from k8py.controllers.pvbinder import PersistentVolumeBinder

from ctrl_helpers import Cluster, node

Obj = dict[str, Any]


def pvc(name: str, size: str = "1Gi", cls: str | None = None, modes: tuple[str, ...] = ("ReadWriteOnce",)) -> Obj:
    spec: Obj = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def host_pv(name: str, size: str, cls: str = "manual", modes: tuple[str, ...] = ("ReadWriteOnce",)) -> Obj:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls,
                     "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/mnt/{name}"}}}


async def start(c: Cluster, tmp: str = "/var/lib/k8py/storage") -> PersistentVolumeBinder:
    ctrl = PersistentVolumeBinder(c.client, c.factory, c.clock, c.recorder("persistentvolume-controller"),
                                  base_dir=tmp)
    await c.start(ctrl)
    return ctrl


async def phase(c: Cluster, resource: str, name: str, want: str, ns: str | None = "default") -> Obj | None:
    o = await c.client.get_or_none(resource, name, ns)
    return o if o is not None and (o.get("status") or {}).get("phase") == want else None


async def test_default_class_is_created_and_given_to_claims_without_class(cluster: Cluster) -> None:
    c = cluster
    ctrl = await start(c)
    sc = await c.until(lambda: c.client.get_or_none("storageclasses", "local-path"), "default class")
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert (sc["provisioner"], sc["volumeBindingMode"], sc["reclaimPolicy"]) == (
        PROVISIONER, "WaitForFirstConsumer", "Delete")
    await c.client.create("persistentvolumeclaims", pvc("data"))
    claim = await c.until(lambda: _with_class(c, "data"), "default class given")
    assert claim["spec"]["storageClassName"] == "local-path"
    await c.until(lambda: ctrl.recorder.for_reason("WaitForFirstConsumer"), "waiting event")
    assert (await c.client.get("persistentvolumeclaims", "data", "default"))["status"]["phase"] == "Pending"
    assert "waiting for first consumer to be created before binding" in ctrl.recorder.for_reason(
        "WaitForFirstConsumer")
    assert await c.list("persistentvolumes", None) == []


async def _with_class(c: Cluster, name: str) -> Obj | None:
    o = await c.client.get("persistentvolumeclaims", name, "default")
    return o if o["spec"].get("storageClassName") else None


@pytest.mark.parametrize("claim,volumes,chosen", [
    (pvc("c", "1Gi", "manual"), [host_pv("small", "500Mi"), host_pv("fit", "2Gi"), host_pv("big", "10Gi")], "fit"),
    (pvc("c", "1Gi", "manual", ("ReadWriteMany",)),
     [host_pv("rwo", "2Gi"), host_pv("rwx", "5Gi", modes=("ReadWriteOnce", "ReadWriteMany"))], "rwx"),
    (pvc("c", "1Gi", "fast"), [host_pv("manual", "2Gi"), host_pv("fast", "2Gi", cls="fast")], "fast"),
])
async def test_static_binding_picks_the_smallest_fitting_volume(cluster: Cluster, claim: Obj,
                                                                volumes: list[Obj], chosen: str) -> None:
    c = cluster
    await start(c)
    for v in volumes:
        await c.client.create("persistentvolumes", v)
    await c.client.create("persistentvolumeclaims", claim)
    bound = await c.until(lambda: phase(c, "persistentvolumeclaims", "c", "Bound"), "bound claim")
    assert bound["spec"]["volumeName"] == chosen
    assert bound["status"]["capacity"]["storage"] == next(
        v for v in volumes if v["metadata"]["name"] == chosen)["spec"]["capacity"]["storage"]
    pv = await c.until(lambda: phase(c, "persistentvolumes", chosen, "Bound", None), "bound volume")
    ref = pv["spec"]["claimRef"]
    assert (ref["namespace"], ref["name"], ref["uid"]) == ("default", "c", bound["metadata"]["uid"])
    for v in volumes:
        if v["metadata"]["name"] != chosen:
            await c.until(lambda v=v: phase(c, "persistentvolumes", v["metadata"]["name"], "Available", None),
                          "others available")
    # the claim goes: a Retain volume is Released, not reused
    await c.client.delete("persistentvolumeclaims", "c", "default")
    await c.until(lambda: phase(c, "persistentvolumes", chosen, "Released", None), "released")


async def test_wait_for_first_consumer_provisions_on_the_selected_node(cluster: Cluster, tmp_path: Any) -> None:
    c = cluster
    ctrl = await start(c, str(tmp_path))
    await c.client.create("nodes", node("n2"))
    claim = await c.client.create("persistentvolumeclaims", pvc("data", "3Gi"))
    await c.until(lambda: phase(c, "persistentvolumeclaims", "data", "Pending"), "waiting")
    # what the scheduler does when it places a pod that uses the claim
    await c.client.patch("persistentvolumeclaims", "data",
                         {"metadata": {"annotations": {ANNOTATION_SELECTED_NODE: "n2"}}}, "default")
    bound = await c.until(lambda: phase(c, "persistentvolumeclaims", "data", "Bound"), "bound")
    name = f"pvc-{claim['metadata']['uid']}"
    assert bound["spec"]["volumeName"] == name
    pv = await c.client.get("persistentvolumes", name)
    assert pv["spec"]["hostPath"]["path"] == f"{tmp_path}/{name}"
    assert pv["spec"]["capacity"]["storage"] == "3Gi"
    assert pv["spec"]["storageClassName"] == "local-path"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"] == [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2"]}]}]
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == PROVISIONER
    await c.until(lambda: phase(c, "persistentvolumes", name, "Bound", None), "pv bound")
    assert ctrl.recorder.for_reason("ProvisioningSucceeded") == [f"Successfully provisioned volume {name}"]
    # reclaim policy Delete: the PV goes with the claim
    await c.client.delete("persistentvolumeclaims", "data", "default")
    await c.until(lambda: _gone(c, name), "pv deleted")


async def _gone(c: Cluster, name: str) -> bool:
    return await c.client.get_or_none("persistentvolumes", name) is None
