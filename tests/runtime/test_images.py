"""Image store: archives (docker save, OCI layout), tags, removal (the `k8py image` CLI: tests/cli/test_image.py)."""
from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from k8py.runtime.errors import ImageNotFound, RuntimeError_
from k8py.runtime.images import ImageStore
from tests.runtime.oci_helpers import TestImage, digest_of, image, layer


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("unpacking layers with ownership needs root")


def write_oci_layout(d: Path, img: TestImage, name: str) -> None:
    (d / "blobs/sha256").mkdir(parents=True)
    (d / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    for dg, data in {**img.blobs, img.digest: img.manifest}.items():
        (d / "blobs/sha256" / dg[7:]).write_bytes(data)
    (d / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img.digest,
         "size": len(img.manifest), "annotations": {"io.containerd.image.name": name}}]}))


def tar_dir(d: Path, out: Path) -> Path:
    with tarfile.open(out, "w") as tf:
        for p in sorted(d.rglob("*")):
            tf.add(p, arcname=str(p.relative_to(d)), recursive=False)
    return out


async def test_load_oci_archive(tmp_path: Path) -> None:
    need_root()
    img = image([layer({"hello": b"oci\n"}, "gzip")])
    write_oci_layout(tmp_path / "layout", img, "docker.io/library/app:oci")
    store = ImageStore(tmp_path / "store")
    [got] = await store.load_archive(tar_dir(tmp_path / "layout", tmp_path / "app.tar"))
    assert got.id == img.config_digest
    assert got.repo_tags == ["docker.io/library/app:oci"]
    assert (store.layer_dirs(got)[0] / "hello").read_text() == "oci\n"
    assert store.get("app:oci") == got


async def test_load_docker_save_archive(tmp_path: Path) -> None:
    need_root()
    lay = layer({"etc/": None, "etc/issue": b"docker save\n"}, "none")
    img = image([lay], {"Cmd": ["cat", "/etc/issue"]})
    d = tmp_path / "save"
    (d / "abc").mkdir(parents=True)
    (d / "abc/layer.tar").write_bytes(lay.blob)
    (d / f"{img.config_digest[7:]}.json").write_bytes(img.config)
    (d / "manifest.json").write_text(json.dumps([{"Config": f"{img.config_digest[7:]}.json",
                                                   "RepoTags": ["myapp:1.0"], "Layers": ["abc/layer.tar"]}]))
    store = ImageStore(tmp_path / "store")
    [got] = await store.load_archive(tar_dir(d, tmp_path / "save.tar"))
    assert got.repo_tags == ["docker.io/library/myapp:1.0"]
    assert got.config["Cmd"] == ["cat", "/etc/issue"]
    assert (store.layer_dirs(got)[0] / "etc/issue").read_text() == "docker save\n"


async def test_corrupt_archive_refused(tmp_path: Path) -> None:
    img = image([layer({"a": b"b"})])
    write_oci_layout(tmp_path / "layout", img, "bad:1")
    blob = tmp_path / "layout/blobs/sha256" / digest_of(img.layers[0].blob)[7:]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(RuntimeError_, match="corrupt"):
        await ImageStore(tmp_path / "store").load_archive(tmp_path / "layout")


async def test_tags_and_remove(tmp_path: Path) -> None:
    need_root()
    shared = layer({"shared": b"1"})
    a = image([shared, layer({"a": b"a"})])
    b = image([shared, layer({"b": b"b"})])
    store = ImageStore(tmp_path / "store")
    for img, name in ((a, "a:1"), (b, "b:1")):
        write_oci_layout(tmp_path / name, img, name)
        await store.load_archive(tmp_path / name)
    write_oci_layout(tmp_path / "a2", a, "a:2")
    await store.load_archive(tmp_path / "a2")
    assert store.require("a:1").repo_tags == ["docker.io/library/a:1", "docker.io/library/a:2"]
    store.remove("a:2")  # another tag remains: only untagged
    assert store.require("a:1").repo_tags == ["docker.io/library/a:1"]
    with pytest.raises(ImageNotFound):
        store.require("a:2")
    with pytest.raises(RuntimeError_, match="in use"):
        store.remove("a:1", in_use=lambda i: i == a.config_digest)
    removed = store.remove("a:1")
    assert removed.id == a.config_digest
    assert store.get("a:1") is None
    # the layer b still uses stays, a's own layer and blobs go
    assert store.layer_path(shared.diff_id).exists()
    assert not store.layer_path(a.layers[1].diff_id).exists()
    assert not store.blob_path(digest_of(a.layers[1].blob)).exists()
    assert [i.id for i in store.list()] == [b.config_digest]
