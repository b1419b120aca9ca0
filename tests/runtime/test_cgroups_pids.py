"""The pod's pids cgroup (the kubelet's --pod-max-pids) on cgroup v1 and v2 layouts (a fake
/sys/fs/cgroup in a temporary directory)."""
from __future__ import annotations

from pathlib import Path

import pytest

from k8py.runtime import cgroups


def test_v1_writes_pids_max_in_the_pids_hierarchy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "cgroup.procs").write_text("")
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
    d = cgroups.set_pod_pids_limit("/k8py/uid-1", 4096)
    assert d == tmp_path / "pids" / "k8py" / "uid-1"
    assert (d / "pids.max").read_text() == "4096"
    (d / "pids.current").write_text("7\n")
    assert cgroups.pids("/k8py/uid-1") == (7, 4096)
    assert cgroups.set_pod_pids_limit("k8py/uid-1", 100) == d  # idempotent, the newest value wins
    assert cgroups.pids("k8py/uid-1") == (7, 100)


def test_v2_enables_the_pids_controller_in_the_ancestors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cgroup.subtree_control").write_text("cpu memory\n")
    (tmp_path / "k8py").mkdir()
    (tmp_path / "k8py" / "cgroup.subtree_control").write_text("pids\n")
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
    d = cgroups.set_pod_pids_limit("k8py/uid-2", 50)
    assert d == tmp_path / "k8py" / "uid-2"
    assert (d / "pids.max").read_text() == "50"
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+pids"  # what the kernel is told
    assert (tmp_path / "k8py" / "cgroup.subtree_control").read_text() == "pids\n"  # already on: untouched


def test_pids_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
    assert not cgroups.pids_available()  # neither v1 pids nor v2 offering it: the limit is skipped
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory\n")
    assert not cgroups.pids_available()
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    assert cgroups.pids_available()


def test_pids_of_a_missing_cgroup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
    assert cgroups.pids("k8py/gone") is None
