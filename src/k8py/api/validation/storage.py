"""storage.k8s.io/v1: StorageClasses (provisioner, policies, parameters fixed after creation).

Invariants: as in `meta`.
"""

from __future__ import annotations

from typing import Any

from k8py.api import names
from k8py.api.validation.field import forbidden, required, too_long
from k8py.api.validation.meta import ErrorList, dict_of, validate_enum


def validate_storageclass(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    prov = obj.get("provisioner") or ""
    if not prov:
        v.add(required("provisioner"))
    else:
        v.msgs("provisioner", prov, names.qualified_name_errors(prov))
    validate_enum(v, obj.get("reclaimPolicy"), "reclaimPolicy", ("Delete", "Retain"))
    validate_enum(v, obj.get("volumeBindingMode"), "volumeBindingMode", ("Immediate", "WaitForFirstConsumer"))
    params = dict_of(obj.get("parameters"))
    if len(params) > 512:
        v.add(too_long("parameters", 512))
    if old is not None:
        if obj.get("parameters") != old.get("parameters"):
            v.add(forbidden("parameters", "updates to parameters are forbidden."))
        if obj.get("provisioner") != old.get("provisioner"):
            v.add(forbidden("provisioner", "updates to provisioner are forbidden."))
        if (obj.get("reclaimPolicy") or "Delete") != (old.get("reclaimPolicy") or "Delete"):
            v.add(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        if (obj.get("volumeBindingMode") or "Immediate") != (old.get("volumeBindingMode") or "Immediate"):
            v.add(forbidden("volumeBindingMode", "updates to volumeBindingMode are forbidden."))
