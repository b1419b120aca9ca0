"""Which local-path directories the node agent reclaims (table-driven)."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8py.kubelet.localpathgc import stale_volume_dirs


def pv(path: str, source: str = "hostPath") -> dict:  # type: ignore[type-arg]
    return {"spec": {source: {"path": path}}}


@pytest.mark.parametrize("dirs,pvs,stale", [
    (["pvc-a", "pvc-b"], ["pvc-a"], ["pvc-b"]),            # pvc-b's PV is gone
    (["pvc-a"], [], ["pvc-a"]),
    (["pvc-a"], ["pvc-a"], []),
    (["pvc-a"], [("pvc-a", "local")], []),                 # a `local` PV counts too
    (["data", "pvc-a"], [], ["pvc-a"]),                    # not ours: left alone
])
def test_stale_volume_dirs(tmp_path: Path, dirs: list[str], pvs: list, stale: list[str]) -> None:  # type: ignore[type-arg]
    for d in dirs:
        (tmp_path / d).mkdir()
    objs = [pv(str(tmp_path / p)) if isinstance(p, str) else pv(str(tmp_path / p[0]), p[1]) for p in pvs]
    assert [p.name for p in stale_volume_dirs(tmp_path, objs)] == stale


def test_missing_storage_dir_is_nothing_to_reclaim(tmp_path: Path) -> None:
    assert stale_volume_dirs(tmp_path / "absent", []) == []
