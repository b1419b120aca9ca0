"""Volumes: emptyDir, hostPath types, configMap/secret projection with atomic updates, PVCs."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from k8py.kubelet.errors import VolumeError
from k8py.kubelet.volumes import VolumeManager, write_atomic


def test_atomic_writer_swaps_data_and_drops_old_keys(tmp_path: Path) -> None:
    t = tmp_path / "vol"
    assert write_atomic(t, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (t / "a").read_text() == "1" and (t / "dir" / "b").read_text() == "2"
    assert os.readlink(t / "a") == "..data/a" and (t / "..data").is_symlink()
    assert ((t / "dir" / "b").stat().st_mode & 0o777) == 0o600
    first = os.readlink(t / "..data")
    assert not write_atomic(t, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})  # unchanged: no swap
    assert write_atomic(t, {"a": (b"changed", 0o644)})
    assert (t / "a").read_text() == "changed" and not (t / "dir").exists()
    assert os.readlink(t / "..data") != first and not (t / first).exists()


class FakeTokens:
    """A TokenSource: one token per (pod uid, source), as the token manager gives."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    async def token(self, pod: dict, source: dict) -> bytes:
        return f"token-of-{pod['metadata']['uid']}-{source.get('expirationSeconds')}".encode()

    def forget(self, pod_uid: str) -> None:
        self.forgotten.append(pod_uid)


def _pod(volumes: list[dict]) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"a": "b"}},
            "spec": {"volumes": volumes, "containers": [{"name": "c"}]}, "status": {"podIP": "10.0.0.9"}}


async def test_setup_all_kinds(tmp_path: Path) -> None:
    objs: dict[tuple[str, str, str], Any] = {
        ("configmaps", "ns", "cfg"): {"data": {"app.conf": "x=1", "other": "y"}},
        ("secrets", "ns", "sec"): {"data": {"pw": base64.b64encode(b"hunter2").decode()}},
        ("persistentvolumeclaims", "ns", "claim"): {"spec": {"volumeName": "pv1"}, "status": {"phase": "Bound"}},
        ("persistentvolumes", "", "pv1"): {"spec": {"hostPath": {"path": str(tmp_path / "pvdir")}}},
    }

    async def lookup(kind: str, ns: str, name: str) -> Any:
        return objs.get((kind, ns, name))

    tokens = FakeTokens()
    vm = VolumeManager(tmp_path / "kubelet", lookup, tokens=tokens)
    pod = _pod([
        {"name": "scratch", "emptyDir": {}},
        {"name": "host", "hostPath": {"path": str(tmp_path / "h" / "d"), "type": "DirectoryOrCreate"}},
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": "conf/app.conf",
                                                                "mode": 0o400}]}},
        {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o600}},
        {"name": "claim", "persistentVolumeClaim": {"claimName": "claim"}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "proj", "projected": {"sources": [{"configMap": {"name": "cfg"}},
                                                   {"serviceAccountToken": {"path": "token",
                                                                            "expirationSeconds": 3607}}]}},
    ])
    paths = await vm.setup(pod)
    assert Path(paths["scratch"]).is_dir() and (tmp_path / "h" / "d").is_dir()
    assert (Path(paths["cfg"]) / "conf" / "app.conf").read_text() == "x=1"
    assert not (Path(paths["cfg"]) / "other").exists()
    assert (Path(paths["sec"]) / "pw").read_text() == "hunter2"
    assert ((Path(paths["sec"]) / "pw").stat().st_mode & 0o777) == 0o600
    assert paths["claim"] == str(tmp_path / "pvdir") and (tmp_path / "pvdir").is_dir()
    assert (Path(paths["info"]) / "labels").read_text() == 'a="b"'
    assert {p.name for p in Path(paths["proj"]).iterdir() if not p.name.startswith("..")} == {"app.conf", "other",
                                                                                                "token"}
    assert (Path(paths["proj"]) / "token").read_text() == "token-of-u1-3607"
    # a configMap update is projected on the next setup
    objs[("configmaps", "ns", "cfg")] = {"data": {"app.conf": "x=2"}}
    await vm.setup(pod)
    assert (Path(paths["cfg"]) / "conf" / "app.conf").read_text() == "x=2"
    mounts = vm.mounts({"name": "c", "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app", "readOnly": True},
                                                      {"name": "scratch", "mountPath": "/s", "subPath": "sub"}]},
                       paths)
    assert (mounts[0].container_path, mounts[0].host_path, mounts[0].read_only) == ("/etc/app", paths["cfg"], True)
    assert mounts[1].host_path == paths["scratch"] + "/sub" and Path(mounts[1].host_path).is_dir()
    vm.teardown("u1")
    assert not vm.pod_dir("u1").exists() and (tmp_path / "pvdir").is_dir()
    assert tokens.forgotten == ["u1"]


async def test_a_token_projection_needs_a_token_source(tmp_path: Path) -> None:
    async def lookup(kind: str, ns: str, name: str) -> Any:
        return None

    with pytest.raises(VolumeError, match="no service-account token source"):
        await VolumeManager(tmp_path, lookup).setup(
            _pod([{"name": "v", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]))


@pytest.mark.parametrize("vol, message", [
    ({"name": "v", "configMap": {"name": "nope"}}, 'configmap "nope" not found'),
    ({"name": "v", "secret": {"secretName": "nope"}}, 'secret "nope" not found'),
    ({"name": "v", "persistentVolumeClaim": {"claimName": "nope"}}, 'persistentvolumeclaim "nope" not found'),
    ({"name": "v", "hostPath": {"path": "/nonexistent/k8py", "type": "Directory"}},
     "hostPath type check failed: /nonexistent/k8py is not a directory"),
])
async def test_setup_errors(tmp_path: Path, vol: dict, message: str) -> None:
    async def lookup(kind: str, ns: str, name: str) -> Any:
        return None

    with pytest.raises(VolumeError) as e:
        await VolumeManager(tmp_path, lookup).setup(_pod([vol]))
    assert e.value.message == message


async def test_optional_configmap_is_empty(tmp_path: Path) -> None:
    async def lookup(kind: str, ns: str, name: str) -> Any:
        return None

    paths = await VolumeManager(tmp_path, lookup).setup(
        _pod([{"name": "v", "configMap": {"name": "x", "optional": True}}]))
    assert [p for p in Path(paths["v"]).iterdir() if not p.name.startswith("..")] == []
