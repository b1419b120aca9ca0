"""Crafted images and archives against the image store (issue 10, item 4: a safe node).

Every case is built in memory here (tarfile), served by the fake registry or written as an
archive, and must be refused with nothing written outside the store: a sentinel directory
next to the store is listed before and after, and the store's layer directories, markers,
records and refs are compared with what they were before the attempt.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from k8py.runtime.errors import ImagePullError, RuntimeError_
from k8py.runtime.images import ImageStore
from k8py.runtime.mirrors import RegistriesConfig
from k8py.runtime.registry import RegistryClient
from k8py.runtime.unpack import LayerError, unpack_layer
from tests.runtime.oci_helpers import FakeRegistry, Layer, TestImage, digest_of, image, layer

# An entry: (kind, name, data) with kind file|dir|sym|link; "{out}" in a name or target is
# the sentinel directory's absolute path.
Entry = tuple[str, str, Any]


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("unpacking layers with ownership and whiteouts needs root")


def raw_tar(entries: list[Entry], out: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kind, name, data in entries:
            ti = tarfile.TarInfo(name.replace("{out}", str(out)))
            ti.mode = 0o755 if kind == "dir" else 0o644
            if kind == "file":
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "link": tarfile.LNKTYPE}[kind]
            if kind in ("sym", "link"):
                ti.linkname = data.replace("{out}", str(out))
            tf.addfile(ti)
    return buf.getvalue()


def crafted_layer(entries: list[Entry], out: Path) -> Layer:
    raw = raw_tar(entries, out)
    return Layer(gzip.compress(raw, mtime=0), digest_of(raw), "application/vnd.oci.image.layer.v1.tar+gzip")


def snapshot(root: Path, parts: tuple[str, ...] = ("layers", "verified", "images", "refs.json")) -> dict[str, Any]:
    """What the store holds under `parts`: every path with its size (directories as None)."""
    out: dict[str, Any] = {}
    for part in parts:
        p = root / part
        if p.is_file():
            out[part] = p.read_bytes()
        elif p.is_dir():
            for q in sorted(p.rglob("*")):
                out[str(q.relative_to(root))] = None if q.is_dir() else os.lstat(q).st_size
    return out


@pytest.fixture
async def env(tmp_path: Path, fake: FakeRegistry) -> AsyncIterator[tuple[ImageStore, Path]]:
    """A store holding one good image already (its layer must survive every attack), and the
    sentinel directory `outside` (one file) next to the store."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("untouched\n")
    client = RegistryClient(RegistriesConfig.from_dict(
        {"mirrors": {"docker.io": {"endpoint": [f"http://{fake.addr}"]}}, "disable_default_endpoint": True}))
    store = ImageStore(tmp_path / "store", client)
    if os.geteuid() == 0:
        fake.add("library/good", "1", image([layer({"etc/": None, "etc/good": b"good\n"})]))
        await store.pull("good:1")
    yield store, outside
    await client.close()


def assert_nothing_outside(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["sentinel"]
    assert (outside / "sentinel").read_text() == "untouched\n"


# ---------------------------------------------------------------- digests and diff_ids

BAD_DIGESTS = [
    ("diff_id traversing", "diff_id", "sha256:../../etc"),
    ("diff_id into the sentinel", "diff_id", "sha256:../../outside"),
    ("diff_id not hex", "diff_id", "sha256:" + "g" * 64),
    ("diff_id upper-case hex", "diff_id", "sha256:" + "A" * 64),
    ("diff_id short", "diff_id", "sha256:abc"),
    ("diff_id other algorithm", "diff_id", "sha512:" + "a" * 64),
    ("layer digest traversing", "layer", "sha256:../../outside/x"),
    ("layer digest not hex", "layer", "sha256:" + "z" * 64),
    ("config digest traversing", "config", "sha256:../../../outside/cfg"),
]


@pytest.mark.parametrize("case,where,bad", BAD_DIGESTS, ids=[c[0] for c in BAD_DIGESTS])
async def test_bad_digest_refused_before_anything_is_written(env, fake: FakeRegistry, case: str, where: str,  # type: ignore[no-untyped-def]
                                                             bad: str) -> None:
    store, outside = env
    good = layer({"f": b"x"})
    lay = Layer(good.blob, bad, good.media_type) if where == "diff_id" else good
    img = image([lay])
    if where != "diff_id":
        m = json.loads(img.manifest)
        if where == "layer":
            m["layers"][0]["digest"] = bad
        else:
            m["config"]["digest"] = bad
        img = TestImage(json.dumps(m).encode(), img.config, img.layers, img.blobs)
    fake.add("library/crafted", "1", img)
    before = snapshot(store.root, ("layers", "verified", "images", "refs.json", "blobs"))
    with pytest.raises(ImagePullError) as e:
        await store.pull("crafted:1")
    assert e.value.reason == "ErrImagePull"
    assert repr(bad) in e.value.message and "sha256:[0-9a-f]{64}" in e.value.message, e.value.message
    assert snapshot(store.root, ("layers", "verified", "images", "refs.json", "blobs")) == before
    assert_nothing_outside(outside)
    assert store.get("crafted:1") is None


def test_paths_are_only_named_by_well_formed_digests(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    for bad in ("sha256:../../etc", "sha256:/etc", "../x", "sha256:" + "0" * 63, "sha256:" + "0" * 64 + "/.."):
        for f in (store.blob_path, store.layer_path, store._record_path):
            with pytest.raises(ValueError, match="must match sha256"):
                f(bad)


# ---------------------------------------------------------------- layer contents

B = b"pwned\n"
CRAFTED_LAYERS: list[tuple[str, list[Entry], str]] = [
    ("dotdot entry", [("file", "../../../outside/pwned", B)], "contains '..'"),
    ("dotdot inside a name", [("dir", "a", None), ("file", "a/../../../../outside/pwned", B)], "contains '..'"),
    ("absolute entry", [("file", "{out}/pwned", B)], "is absolute"),
    ("symlink then write through", [("sym", "a", "{out}"), ("file", "a/pwned", B)], "a symlink or not a directory"),
    ("relative symlink then write through", [("dir", "d", None), ("sym", "d/up", "../../../../outside"),
                                             ("file", "d/up/pwned", B)], "a symlink or not a directory"),
    ("symlink then directory through", [("sym", "a", "{out}"), ("dir", "a/sub", None)],
     "a symlink or not a directory"),
    ("symlink then hard link through", [("file", "f", B), ("sym", "a", "{out}"), ("link", "a/pwned", "f")],
     "a symlink or not a directory"),
    ("symlink then whiteout through", [("sym", "a", "{out}"), ("file", "a/.wh.sentinel", b"")],
     "a symlink or not a directory"),
    ("hard link to /etc/passwd", [("link", "passwd", "/etc/passwd")], "is absolute"),
    ("hard link out by ..", [("link", "s", "../../../outside/sentinel")], "contains '..'"),
    ("hard link to a file not in the layer", [("link", "passwd", "etc/passwd")], "no such file in the layer"),
    ("hard link through a symlink", [("sym", "a", "{out}"), ("link", "s", "a/sentinel")],
     "a symlink or not a directory"),
    ("whiteout .wh..", [("file", "keep", b"k"), ("file", ".wh..", b"")], "whiteout"),
    ("whiteout .wh...", [("file", ".wh...", b"")], "whiteout"),
    ("whiteout .wh... in a directory", [("dir", "d", None), ("file", "d/.wh...", b"")], "whiteout"),
    ("whiteout .wh. (empty)", [("file", ".wh.", b"")], "whiteout"),
]


@pytest.mark.parametrize("case,entries,why", CRAFTED_LAYERS, ids=[c[0] for c in CRAFTED_LAYERS])
async def test_crafted_layer_refused(env, fake: FakeRegistry, case: str, entries: list[Entry], why: str) -> None:  # type: ignore[no-untyped-def]
    need_root()
    store, outside = env
    nlink = os.stat("/etc/passwd").st_nlink
    fake.add("library/crafted", "1", image([crafted_layer(entries, outside)]))
    before = snapshot(store.root)
    with pytest.raises(ImagePullError) as e:
        await store.pull("crafted:1")
    assert e.value.reason == "ErrImagePull" and why in e.value.message, e.value.message
    assert snapshot(store.root) == before  # no layer dir, no .partial, no marker, no record, no ref
    assert_nothing_outside(outside)
    assert os.stat("/etc/passwd").st_nlink == nlink
    assert (store.layer_dirs(store.require("good:1"))[0] / "etc/good").read_text() == "good\n"


async def test_content_not_matching_its_diff_id_refused(env, fake: FakeRegistry) -> None:  # type: ignore[no-untyped-def]
    need_root()
    store, outside = env
    real, claimed = layer({"bin/sh": b"evil"}), layer({"bin/sh": b"fine"})
    fake.add("library/crafted", "1", image([Layer(real.blob, claimed.diff_id, real.media_type)]))
    before = snapshot(store.root)
    with pytest.raises(ImagePullError, match="diff_id mismatch") as e:
        await store.pull("crafted:1")
    assert claimed.diff_id in e.value.message and real.diff_id in e.value.message
    assert snapshot(store.root) == before
    assert not store.layer_path(claimed.diff_id).exists() and not store.is_verified(claimed.diff_id)
    assert_nothing_outside(outside)


def plant_dir(p: Path, outside: Path) -> None:
    (p / "etc").mkdir(parents=True)
    (p / "etc/planted").write_text("planted\n")


def plant_symlink(p: Path, outside: Path) -> None:
    p.symlink_to(outside)


def plant_file(p: Path, outside: Path) -> None:
    p.write_text("planted\n")


@pytest.mark.parametrize("plant", [plant_dir, plant_symlink, plant_file], ids=["directory", "symlink", "file"])
async def test_unverified_layer_dir_on_disk_is_not_used(env, fake: FakeRegistry, plant) -> None:  # type: ignore[no-untyped-def]
    """A layer directory nobody verified (planted, or left by an older k8py) is never used:
    the image is not present until pulled, and the pull unpacks and verifies it again."""
    need_root()
    store, outside = env
    lay = layer({"etc/": None, "etc/real": b"real\n"})
    img = image([lay])
    fake.add("library/app", "1", img)
    plant(store.layer_path(lay.diff_id), outside)
    # an image record and ref that claim the planted layer, as a crafted or stale store would
    record = {"id": img.config_digest, "repo_tags": ["docker.io/library/app:1"], "repo_digests": [],
              "manifest_digest": img.digest, "layers": [digest_of(lay.blob)], "diff_ids": [lay.diff_id],
              "config": {}, "size": 1, "created": 0.0}
    store._record_path(img.config_digest).write_text(json.dumps(record))
    refs = json.loads((store.root / "refs.json").read_text())
    (store.root / "refs.json").write_text(json.dumps({**refs, "docker.io/library/app:1": img.config_digest}))
    assert store.get("app:1") is None  # not verified: not present (the kubelet pulls)
    assert store.get("app:1", verified=False) is not None
    got = await store.pull("app:1")
    [d] = store.layer_dirs(store.get("app:1") or got)
    assert store.is_verified(lay.diff_id) and not d.is_symlink()
    assert sorted(p.name for p in (d / "etc").iterdir()) == ["real"]
    assert_nothing_outside(outside)
    assert not [p for p in (store.root / "layers").iterdir() if p.name.startswith(".")]  # nothing set aside left


async def test_tampered_record_and_refs_name_no_path(env) -> None:  # type: ignore[no-untyped-def]
    """Records and refs read back from disk are checked too: a bad digest in them is no image."""
    store, outside = env
    (store.root / "refs.json").write_text(json.dumps({"docker.io/library/evil:1": "sha256:../../outside/sentinel"}))
    assert store.get("evil:1") is None
    rec = {"id": "sha256:" + "1" * 64, "repo_tags": ["docker.io/library/evil:2"], "repo_digests": [],
           "manifest_digest": "sha256:" + "2" * 64, "layers": ["sha256:" + "3" * 64], "diff_ids": ["sha256:../../etc"],
           "config": {}, "size": 0, "created": 0.0}
    store._record_path(rec["id"]).write_text(json.dumps(rec))
    assert store.get(rec["id"], verified=False) is None
    assert rec["id"] not in [i.id for i in store.list()]
    assert_nothing_outside(outside)


def test_unpack_layer_direct(tmp_path: Path) -> None:
    """The unpacker alone: a safe layer keeps modes, links and whiteouts; a bad one leaves nothing."""
    need_root()
    raw = raw_tar([("dir", "d", None), ("file", "d/f", b"data"), ("sym", "d/abs", "/etc/passwd"),
                   ("link", "d/hard", "d/f"), ("file", ".wh.gone", b""), ("file", "d/.wh..wh..opq", b"")], tmp_path)
    blob = tmp_path / "blob"
    blob.write_bytes(raw)
    dest = tmp_path / "layer"
    assert unpack_layer(blob, dest, digest_of(raw)) == digest_of(raw)
    assert (dest / "d/f").read_bytes() == b"data" and os.readlink(dest / "d/abs") == "/etc/passwd"
    assert os.stat(dest / "d/hard").st_ino == os.stat(dest / "d/f").st_ino
    assert os.stat(dest / "gone").st_rdev == 0 and os.getxattr(dest / "d", "trusted.overlay.opaque") == b"y"
    with pytest.raises(LayerError, match="diff_id mismatch"):
        unpack_layer(blob, tmp_path / "other", "sha256:" + "0" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob", "layer"]


# ---------------------------------------------------------------- archives (k8py image load)


def tar_file(out: Path, members: list[tuple[str, str, Any]]) -> Path:
    """A tar archive of (kind, name, data): kind file|sym, names used verbatim."""
    with tarfile.open(out, "w") as tf:
        for kind, name, data in members:
            ti = tarfile.TarInfo(name)
            if kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return out


def docker_save(lay: Layer, img: TestImage, config_path: str | None = None,
                layer_path: str = "abc/layer.tar") -> list[tuple[str, str, Any]]:
    cfg = config_path or f"{img.config_digest[7:]}.json"
    return [("file", "abc/layer.tar", lay.blob), ("file", f"{img.config_digest[7:]}.json", img.config),
            ("file", "manifest.json", json.dumps([{"Config": cfg, "RepoTags": ["evil:1"],
                                                   "Layers": [layer_path]}]).encode())]


def oci_layout(img: TestImage, manifest_digest: str | None = None) -> list[tuple[str, str, Any]]:
    files = [("file", "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')]
    files += [("file", f"blobs/sha256/{d[7:]}", data) for d, data in {**img.blobs, img.digest: img.manifest}.items()]
    files.append(("file", "index.json", json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest or img.digest,
         "size": len(img.manifest), "annotations": {"io.containerd.image.name": "evil:1"}}]}).encode()))
    return files


def archive_cases(out: Path) -> list[tuple[str, list[tuple[str, str, Any]], str]]:
    lay = layer({"f": b"x"}, "none")
    img = image([lay])
    bad_diff = image([Layer(lay.blob, "sha256:../../outside", lay.media_type)])
    return [
        ("member with ..", docker_save(lay, img) + [("file", "../../outside/pwned", B)], "outside"),
        ("absolute member", docker_save(lay, img) + [("file", f"{out}/pwned", B)], "absolute"),
        ("symlink member out", docker_save(lay, img) + [("sym", "esc", str(out))], "link to an absolute path"),
        ("Config path with ..", docker_save(lay, img, config_path="../../../../etc/passwd"), "outside the archive"),
        ("Layers path absolute", docker_save(lay, img, layer_path="/etc/passwd"), "outside the archive"),
        ("Layers path through a symlink", docker_save(lay, img, layer_path="ln/passwd")
         + [("sym", "ln", "../abc")], "outside the destination"),
        ("docker save diff_id traversing", docker_save(lay, bad_diff), "'sha256:../../outside'"),
        ("OCI index digest traversing", oci_layout(img, "sha256:../../../outside/x"), "'sha256:../../../outside/x'"),
        ("OCI diff_id traversing", oci_layout(bad_diff), "'sha256:../../outside'"),
    ]


@pytest.mark.parametrize("n", range(9), ids=[c[0] for c in archive_cases(Path("/x"))])
async def test_crafted_archive_refused(tmp_path: Path, n: int) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("untouched\n")
    case, members, why = archive_cases(outside)[n]
    store = ImageStore(tmp_path / "store")
    before = snapshot(store.root, ("layers", "verified", "images", "refs.json", "blobs"))
    with pytest.raises(RuntimeError_) as e:
        await store.load_archive(tar_file(tmp_path / "evil.tar", members))
    assert why in e.value.message, e.value.message
    assert snapshot(store.root, ("layers", "verified", "images", "refs.json", "blobs")) == before
    assert not [p for p in store.root.iterdir() if p.name.startswith(".load-")]
    assert_nothing_outside(outside)


async def test_archive_directory_paths_confined(tmp_path: Path) -> None:
    """A directory archive (`k8py image load DIR`) whose manifest names a symlink out is refused."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_text("untouched\n")
    d = tmp_path / "save"
    d.mkdir()
    (d / "cfg.json").symlink_to(outside / "sentinel")
    (d / "manifest.json").write_text(json.dumps([{"Config": "cfg.json", "RepoTags": ["x:1"], "Layers": []}]))
    store = ImageStore(tmp_path / "store")
    with pytest.raises(RuntimeError_, match="resolves outside the archive"):
        await store.load_archive(d)
    assert store.list() == []
    assert_nothing_outside(outside)
