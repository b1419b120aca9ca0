"""Reclaiming local-path volumes on the node: the provisioner (controllers/localpath.py)
creates PersistentVolumes whose data is a directory under the node's storage dir; when
such a PV is deleted (reclaim policy Delete), the node agent removes its directory.

Invariant: only direct subdirectories of the storage dir named like provisioned volumes
(`pvc-...`) are ever removed, and only when no PersistentVolume in the cluster points at
them; a failed PV list removes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def stale_volume_dirs(storage_dir: str | Path, pvs: list[dict[str, Any]]) -> list[Path]:
    """Directories of `storage_dir` that no PV of `pvs` uses any more."""
    base = Path(storage_dir)
    if not base.is_dir():
        return []
    used = set()
    for pv in pvs:
        spec = pv.get("spec") or {}
        for src in ("hostPath", "local"):
            path = (spec.get(src) or {}).get("path")
            if path:
                used.add(Path(path).resolve())
    return sorted(d for d in base.iterdir()
                  if d.is_dir() and not d.is_symlink() and d.name.startswith("pvc-") and d.resolve() not in used)
