"""Volume confinement on the node: the atomic writer never writes (or removes) outside its volume,
even with hostile item paths that bypassed validation or symlinks a container planted, and a
subPath is resolved inside its volume (CVE-2017-1002101): a symlink out of it is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from k8py.kubelet.errors import ContainerConfigError, VolumeError
from k8py.kubelet.safepath import check_path, open_dir
from k8py.kubelet.volumes import VolumeManager, write_atomic


def _tree(p: Path) -> set[str]:
    return {str(q.relative_to(p)) for q in p.rglob("*")}


@pytest.mark.parametrize("rel, message", [
    ("../../etc/x", "invalid path: must not contain '..': ../../etc/x"),
    ("a/../../x", "invalid path: must not contain '..': a/../../x"),
    ("{outside}/x", "invalid path: must be relative path: {outside}/x"),  # never a real host path here
    ("..data/x", "invalid path: must not start with '..': ..data/x"),
    ("..", "invalid path: must not contain '..': .."),
    ("", 'invalid path: must not be empty: ""'),
    (".", "invalid path: must name a file inside the volume: ."),
])
def test_hostile_item_path_is_refused_by_the_writer(tmp_path: Path, rel: str, message: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    vol = tmp_path / "a" / "b" / "vol"
    rel, message = rel.format(outside=outside), message.format(outside=outside)
    with pytest.raises(VolumeError) as e:
        write_atomic(vol, {"ok": (b"1", 0o644), rel: (b"pwned", 0o644)})
    assert e.value.message == message
    assert _tree(tmp_path) == {"outside", "a", "a/b", "a/b/vol"} or _tree(tmp_path) == {"outside"}
    assert not any(p.read_bytes() == b"pwned" for p in tmp_path.rglob("*") if p.is_file())


def test_check_path_cleans() -> None:
    assert check_path("a/./b") == "a/b" and check_path("x..y") == "x..y" and check_path("a//b/") == "a/b"


def test_planted_data_link_out_of_the_volume_is_neither_followed_nor_removed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    vol = tmp_path / "vol"
    write_atomic(vol, {"a": (b"1", 0o644)})
    for planted in (str(outside), "../outside"):  # a container with the volume writable replaced ..data
        os.unlink(vol / "..data")
        os.symlink(planted, vol / "..data")
        assert write_atomic(vol, {"a": (b"2", 0o644), "keep": (b"overwritten", 0o644)})
        assert (outside / "keep").read_text() == "precious" and _tree(outside) == {"keep"}
        assert (vol / "a").read_text() == "2" and (vol / "keep").read_text() == "overwritten"


def test_planted_top_level_symlink_is_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    vol = tmp_path / "vol"
    write_atomic(vol, {"a": (b"1", 0o644)})
    os.symlink(str(outside), vol / "conf")  # a planted name the next payload uses as a directory
    write_atomic(vol, {"a": (b"1", 0o644), "conf/x": (b"secret", 0o600)})
    assert _tree(outside) == set()
    assert (vol / "..data" / "conf" / "x").read_bytes() == b"secret"


def test_open_dir_refuses_a_symlink_component(tmp_path: Path) -> None:
    (tmp_path / "vol").mkdir()
    os.symlink("/", tmp_path / "vol" / "esc")
    fd = os.open(tmp_path / "vol", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError):
            os.close(open_dir(fd, ["esc", "etc"], create=True))
    finally:
        os.close(fd)


async def _lookup(kind: str, ns: str, name: str) -> Any:
    return None


class _Tokens:
    async def token(self, pod: dict, source: dict) -> bytes:
        return b"t"

    def forget(self, pod_uid: str) -> None:
        pass


def _pod(volumes: list[dict]) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"volumes": volumes, "containers": [{"name": "c"}]}, "status": {}}


@pytest.mark.parametrize("volume", [
    {"name": "v", "downwardAPI": {"items": [{"path": "../../../../x", "fieldRef": {"fieldPath": "metadata.name"}}]}},
    {"name": "v", "projected": {"sources": [{"serviceAccountToken": {"path": "{tmp}/x"}}]}},
    {"name": "v", "projected": {"sources": [{"downwardAPI": {"items": [
        {"path": "ok/../../../x", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
])
async def test_setup_refuses_hostile_paths_that_bypassed_validation(tmp_path: Path, volume: dict) -> None:
    vm = VolumeManager(tmp_path / "root", _lookup, tokens=_Tokens())
    volume = json.loads(json.dumps(volume).replace("{tmp}", str(tmp_path)))
    with pytest.raises(VolumeError, match="invalid path"):
        await vm.setup(_pod([volume]))
    assert {p.name for p in tmp_path.rglob("x")} == set()


def _emptydir(tmp_path: Path) -> tuple[VolumeManager, dict[str, str], Path]:
    vm = VolumeManager(tmp_path / "root", _lookup)
    return vm, {"scratch": str(tmp_path / "root" / "vol")}, tmp_path / "root" / "vol"


@pytest.mark.parametrize("target, sub", [
    ("/", "esc"),
    ("/", "esc/etc"),
    ("../../..", "esc"),
    ("/etc/passwd", "esc"),
])
def test_subpath_symlink_out_of_the_volume_is_refused(tmp_path: Path, target: str, sub: str) -> None:
    vm, paths, vol = _emptydir(tmp_path)
    vol.mkdir(parents=True)
    os.symlink(target, vol / "esc")  # planted by a first container
    with pytest.raises(ContainerConfigError) as e:
        vm.mounts({"name": "second", "volumeMounts": [{"name": "scratch", "mountPath": "/h", "subPath": sub}]}, paths)
    assert e.value.reason == "CreateContainerConfigError"
    assert e.value.message == 'failed to prepare subPath for volumeMount "scratch" of container "second"'
    assert not Path("/etc/esc").exists() and not Path("/esc").exists()


def test_subpath_symlink_inside_the_volume_and_new_subpaths(tmp_path: Path) -> None:
    vm, paths, vol = _emptydir(tmp_path)
    (vol / "real").mkdir(parents=True)
    os.symlink("real", vol / "inside")
    (vol / "file").write_text("f")
    mounts = vm.mounts({"name": "c", "volumeMounts": [
        {"name": "scratch", "mountPath": "/a", "subPath": "inside"},
        {"name": "scratch", "mountPath": "/b", "subPath": "new/dir"},
        {"name": "scratch", "mountPath": "/c", "subPath": "file"}]}, paths)
    assert [m.host_path for m in mounts] == [str(vol / "real"), str(vol / "new" / "dir"), str(vol / "file")]
    assert (vol / "new" / "dir").is_dir()


async def test_api_data_volumes_are_mounted_read_only(tmp_path: Path) -> None:
    vm = VolumeManager(tmp_path / "root", _lookup)
    paths = await vm.setup(_pod([{"name": "info", "downwardAPI": {"items": [
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}, {"name": "scratch", "emptyDir": {}}]))
    mounts = vm.mounts({"name": "c", "volumeMounts": [{"name": "info", "mountPath": "/i"},
                                                      {"name": "scratch", "mountPath": "/s"}]}, paths)
    assert [m.read_only for m in mounts] == [True, False]


def _mountpoints() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_subpath_is_pinned_by_a_bind_mount_a_later_swap_cannot_redirect(tmp_path: Path) -> None:
    vm = VolumeManager(tmp_path / "root", _lookup)
    vol = vm.pod_dir("u1") / "volumes" / "kubernetes.io~empty-dir" / "scratch"
    (vol / "sub").mkdir(parents=True)
    (vol / "sub" / "f").write_text("inside")
    (vol / "file").write_text("a file")
    c = {"name": "c", "volumeMounts": [{"name": "scratch", "mountPath": "/a", "subPath": "sub"},
                                       {"name": "scratch", "mountPath": "/b", "subPath": "file"}]}
    try:
        mounts = vm.mounts(c, {"scratch": str(vol)}, pod_uid="u1")
        pinned = vm.pod_dir("u1") / "volume-subpaths" / "scratch" / "c"
        assert [m.host_path for m in mounts] == [str(pinned / "0"), str(pinned / "1")]
        assert {str(pinned / "0"), str(pinned / "1")} <= _mountpoints()
        # the container swaps the checked directory for a symlink to /: the pinned mount is unmoved
        os.rename(vol / "sub", vol / "moved")
        os.symlink("/", vol / "sub")
        assert (pinned / "0" / "f").read_text() == "inside" and (pinned / "1").read_text() == "a file"
        with pytest.raises(ContainerConfigError):  # and the next start refuses it
            vm.mounts(c, {"scratch": str(vol)}, pod_uid="u1")
        os.unlink(vol / "sub")
        os.rename(vol / "moved", vol / "sub")
        vm.mounts(c, {"scratch": str(vol)}, pod_uid="u1")  # a restart re-binds, one mount per target
        assert sum(1 for line in open("/proc/self/mountinfo") if line.split()[4] == str(pinned / "0")) == 1
    finally:
        vm.teardown("u1")
    assert not vm.pod_dir("u1").exists()
    assert not [m for m in _mountpoints() if m.startswith(str(tmp_path))]
