"""The local-path provisioner: k8py's default StorageClass and the PersistentVolumes
it provisions (as Rancher's local-path-provisioner, built into the controller manager).

A volume is a directory `<base_dir>/<pv-name>` on one node: the PV is a hostPath
volume (type DirectoryOrCreate: the kubelet creates the directory) with a required
node affinity for that node, so that pods using it land there. Pure functions; the
PV binder calls them and writes the results.
"""

from __future__ import annotations

import posixpath

from k8py.api.types import Obj
from k8py.api.wellknown import ANNOTATION_IS_DEFAULT_CLASS, LABEL_HOSTNAME
from k8py.controllers.controllerutil import meta

PROVISIONER = "k8py.io/local-path"
DEFAULT_CLASS_NAME = "local-path"
DEFAULT_BASE_DIR = "/var/lib/k8py/storage"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"


def default_storage_class() -> Obj:
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": DEFAULT_CLASS_NAME, "annotations": {ANNOTATION_IS_DEFAULT_CLASS: "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": False,
    }


def volume_name(pvc: Obj) -> str:
    return f"pvc-{meta(pvc)['uid']}"


def build_pv(pvc: Obj, storage_class: Obj, node: Obj | None, base_dir: str = DEFAULT_BASE_DIR) -> Obj:
    """The PV provisioned for a claim on a node (None: no node affinity), pre-bound to it."""
    name = volume_name(pvc)
    md = meta(pvc)
    spec = pvc.get("spec") or {}
    request = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    pv_spec: Obj = {
        "capacity": {"storage": request},
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
        "storageClassName": meta(storage_class)["name"],
        "volumeMode": spec.get("volumeMode") or "Filesystem",
        "hostPath": {"path": posixpath.join(base_dir, name), "type": "DirectoryOrCreate"},
        "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": md.get("namespace"),
                     "name": md["name"], "uid": md["uid"]},
    }
    if storage_class.get("mountOptions"):
        pv_spec["mountOptions"] = storage_class["mountOptions"]
    if node is not None:
        nmd = meta(node)
        hostname = (nmd.get("labels") or {}).get(LABEL_HOSTNAME)
        term: Obj = ({"matchExpressions": [{"key": LABEL_HOSTNAME, "operator": "In", "values": [hostname]}]}
                     if hostname else
                     {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [nmd["name"]]}]})
        pv_spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [term]}}
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER}},
        "spec": pv_spec,
    }
