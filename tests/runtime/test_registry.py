"""Registry client and image store: pulls, digests, manifest lists, auth, whiteouts."""
from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from k8py.runtime import reference
from k8py.runtime.errors import ImagePullError
from k8py.runtime.images import ImageStore
from k8py.runtime.mirrors import Credentials, RegistriesConfig
from k8py.runtime.registry import RegistryClient, host_platform
from tests.runtime.oci_helpers import FakeRegistry, digest_of, image, index, layer, push, put_manifest


def mirror_to(addr: str, **extra: object) -> RegistriesConfig:
    return RegistriesConfig.from_dict({"mirrors": {"docker.io": {"endpoint": [f"http://{addr}"]}},
                                       "disable_default_endpoint": True, **extra})


@pytest.fixture
async def store_for(tmp_path: Path) -> AsyncIterator:  # type: ignore[type-arg]
    clients: list[RegistryClient] = []

    def make(cfg: RegistriesConfig) -> ImageStore:
        c = RegistryClient(cfg)
        clients.append(c)
        return ImageStore(tmp_path / f"store-{len(clients)}", c)

    yield make
    for c in clients:
        await c.close()


def file_digest(p: Path) -> str:
    return "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()


# ---------------------------------------------------------------- fake registry (no root needed)


async def test_pull_verifies_and_stores_by_digest(fake: FakeRegistry, store_for) -> None:  # type: ignore[no-untyped-def]
    img = image([layer({"etc/": None, "etc/motd": b"hello\n"})], {"Env": ["A=1"], "Cmd": ["sh"]})
    fake.add("library/tiny", "1.0", img)
    store: ImageStore = store_for(mirror_to(fake.addr))
    got = await store.pull("tiny:1.0")
    assert got.id == img.config_digest
    assert got.repo_tags == ["docker.io/library/tiny:1.0"]
    assert got.repo_digests == [f"docker.io/library/tiny@{img.digest}"]
    assert got.config == {"Env": ["A=1"], "Cmd": ["sh"]}
    for d in [img.digest, img.config_digest] + got.layers:
        assert file_digest(store.blob_path(d)) == d
    assert (store.layer_dirs(got)[0] / "etc/motd").read_text() == "hello\n"
    assert store.get("docker.io/library/tiny:1.0") == store.get(img.config_digest[:19]) == got
    assert [i.id for i in store.list()] == [got.id]


async def test_corrupted_blob_is_refused(fake: FakeRegistry, store_for) -> None:  # type: ignore[no-untyped-def]
    img = image([layer({"f": b"good"})])
    fake.add("library/bad", "latest", img)
    ld = digest_of(img.layers[0].blob)
    fake.blobs[ld] = img.layers[0].blob[:-4] + b"XXXX"
    store: ImageStore = store_for(mirror_to(fake.addr))
    with pytest.raises(ImagePullError, match="unexpected commit digest") as e:
        await store.pull("bad")
    assert e.value.cause == "digest mismatch" and e.value.reason == "ErrImagePull"
    assert not store.blob_path(ld).exists()
    assert store.list() == []


async def test_a_local_failure_is_a_pull_error_too(fake: FakeRegistry, store_for) -> None:  # type: ignore[no-untyped-def]
    """pull raises ImagePullError for every failure: here a corrupt cached image config."""
    img = image([layer({"f": b"x"})])
    fake.add("library/cached", "latest", img)
    store: ImageStore = store_for(mirror_to(fake.addr))
    store.blob_path(img.config_digest).parent.mkdir(parents=True, exist_ok=True)
    store.blob_path(img.config_digest).write_bytes(b"{not json")
    with pytest.raises(ImagePullError, match='failed to pull and unpack image "cached": ') as e:
        await store.pull("cached")
    assert e.value.reason == "ErrImagePull"


async def test_manifest_list_resolves_to_this_platform(fake: FakeRegistry, store_for) -> None:  # type: ignore[no-untyped-def]
    os_, arch, _ = host_platform()
    ours = image([layer({"who": b"ours"})])
    other = image([layer({"who": b"other"})], arch="s390x")
    fake.add("library/multi", "ours", ours)
    fake.add("library/multi", "other", other)
    body = index([(other, "linux", "s390x"), (ours, os_, arch), ("sha256:" + "0" * 64, "windows", arch)])
    fake.add_index("library/multi", "latest", body)
    store: ImageStore = store_for(mirror_to(fake.addr))
    got = await store.pull("multi")
    assert got.id == ours.config_digest
    assert got.repo_digests == [f"docker.io/library/multi@{digest_of(body)}"]
    fake.add_index("library/multi", "nope", index([(other, "linux", "s390x")]))
    with pytest.raises(ImagePullError, match="no match for platform") as e:
        await store.pull("multi:nope")
    assert e.value.cause == "no matching platform"


async def test_docker_v2_manifest_list_and_media_types(fake: FakeRegistry, store_for) -> None:  # type: ignore[no-untyped-def]
    """What Docker Hub serves: a Docker manifest list of schema 2 manifests with docker layer types."""
    os_, arch, _ = host_platform()
    ours = image([layer({"etc/": None, "etc/os": b"docker\n"}), layer({"x": b"y"}, "none")], docker=True)
    other = image([layer({"etc/os": b"arm\n"})], arch="arm", docker=True)
    fake.add("library/hub", "ours", ours)
    fake.add("library/hub", "other", other)
    lst = index([(other, "linux", "arm"), (ours, os_, arch)], docker=True)
    fake.add_index("library/hub", "1.0", lst)
    store: ImageStore = store_for(mirror_to(fake.addr))
    got = await store.pull("hub:1.0")
    assert got.id == ours.config_digest and got.manifest_digest == ours.digest
    assert got.repo_digests == [f"docker.io/library/hub@{digest_of(lst)}"]
    assert (store.layer_dirs(got)[0] / "etc/os").read_text() == "docker\n"
    assert (store.layer_dirs(got)[1] / "x").read_text() == "y"


async def test_pull_by_digest_checks_the_manifest(fake: FakeRegistry, store_for) -> None:  # type: ignore[no-untyped-def]
    img = image([layer({"x": b"1"})])
    fake.add("library/pinned", "v1", img)
    store: ImageStore = store_for(mirror_to(fake.addr))
    got = await store.pull(f"pinned@{img.digest}")
    assert got.id == img.config_digest
    evil = image([layer({"x": b"2"})])
    fake.manifests[("library/pinned", img.digest)] = (evil.manifest, "application/vnd.oci.image.manifest.v1+json")
    with pytest.raises(ImagePullError, match="digest mismatch"):
        await store_for(mirror_to(fake.addr)).pull(f"pinned@{img.digest}")


async def test_bearer_token_auth(store_for) -> None:  # type: ignore[no-untyped-def]
    reg = FakeRegistry(token="s3cret-token", user="alice", password="pw")
    await reg.start()
    try:
        img = image([layer({"a": b"b"})])
        reg.add("team/app", "1", img)
        cfg = RegistriesConfig.from_dict({
            "mirrors": {"docker.io": {"endpoint": [f"http://{reg.addr}"]}}, "disable_default_endpoint": True,
            "configs": {reg.addr: {"auth": {"username": "alice", "password": "pw"}}}})
        got = await store_for(cfg).pull("team/app:1")
        assert got.id == img.config_digest
        assert reg.token_requests[0] == {"service": "fake-registry", "scope": "repository:team/app:pull"}
        # wrong credentials: the token endpoint refuses -> unauthorized
        bad = RegistriesConfig.from_dict({
            "mirrors": {"docker.io": {"endpoint": [f"http://{reg.addr}"]}}, "disable_default_endpoint": True,
            "configs": {reg.addr: {"auth": {"username": "alice", "password": "wrong"}}}})
        with pytest.raises(ImagePullError, match="pull access denied") as e:
            await store_for(bad).pull("team/app:1")
        assert e.value.cause == "unauthorized"
        # credentials given with the pull (imagePullSecrets) override registries.yaml
        plain = mirror_to(reg.addr)
        with pytest.raises(ImagePullError) as e:
            await store_for(plain).pull("team/app:1")
        assert e.value.cause == "unauthorized"
        got = await store_for(plain).pull("team/app:1", credentials=Credentials("alice", "pw"))
        assert got.id == img.config_digest
        # a token the registry does not accept -> unauthorized as well
        reg.accept_token = "something-else"
        with pytest.raises(ImagePullError) as e:
            await store_for(cfg).pull("team/app:1")
        assert e.value.cause == "unauthorized"
    finally:
        await reg.stop()


@pytest.mark.parametrize("image_name, cause, message", [
    ("library/missing:1", "not found", 'failed to resolve reference "docker.io/library/missing:1": '
                                       "docker.io/library/missing:1: not found"),
    ("tiny:nope", "not found", "docker.io/library/tiny:nope: not found"),
])
async def test_not_found(fake: FakeRegistry, store_for, image_name: str, cause: str, message: str) -> None:  # type: ignore[no-untyped-def]
    fake.add("library/tiny", "1.0", image([layer({"a": b""})]))
    with pytest.raises(ImagePullError) as e:
        await store_for(mirror_to(fake.addr)).pull(image_name)
    assert e.value.cause == cause
    assert message in str(e.value)
    assert str(e.value).startswith(f'failed to pull and unpack image "{reference.parse(image_name)}"')


async def test_connection_refused_and_mirror_fallback(fake: FakeRegistry, store_for) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(ImagePullError, match=f"dial tcp {dead}: connect: connection refused") as e:
        await store_for(mirror_to(dead)).pull("busybox")
    assert e.value.cause == "connection"
    img = image([layer({"a": b"b"})])
    fake.add("library/busybox", "latest", img)
    cfg = RegistriesConfig.from_dict({
        "mirrors": {"docker.io": {"endpoint": [f"http://{dead}", f"http://{fake.addr}"]}},
        "disable_default_endpoint": True})
    assert (await store_for(cfg).pull("busybox")).id == img.config_digest


# ---------------------------------------------------------------- overlay form (root)


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("whiteouts need root (mknod 0/0, trusted.* xattrs, overlay mounts)")


async def test_whiteouts_gzip_and_zstd_layers(fake: FakeRegistry, store_for, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    need_root()
    base = layer({"a.txt": b"a", "keep.txt": b"k", "d/": None, "d/x": b"x", "d/y": b"y", "gone/": None,
                   "gone/f": b"f"}, "gzip")
    top = layer({".wh.a.txt": b"", "d/": None, "d/.wh..wh..opq": b"", "d/z": b"z", ".wh.gone": b""}, "zstd")
    img = image([base, top])
    fake.add("library/wh", "latest", img)
    store: ImageStore = store_for(mirror_to(fake.addr))
    got = await store.pull("wh")
    lower, upper = store.layer_dirs(got)
    st = os.lstat(upper / "a.txt")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(upper / "d", "trusted.overlay.opaque") == b"y"
    assert not any(p.name.startswith(".wh.") for p in upper.rglob("*"))
    merged = tmp_path / "merged"
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "k8py-overlay", "-o", f"lowerdir={upper}:{lower}", str(merged)],
                   check=True)
    try:
        assert sorted(p.name for p in merged.iterdir()) == ["d", "keep.txt"]
        assert sorted(p.name for p in (merged / "d").iterdir()) == ["z"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)


# ---------------------------------------------------------------- the local registry (docker-registry)


async def test_local_registry_pull_and_corruption(local_registry, store_for) -> None:  # type: ignore[no-untyped-def]
    """docker-registry holds the built images; a blob corrupted on its disk is refused."""
    store: ImageStore = store_for(RegistriesConfig.from_dict(local_registry.registries_yaml()))
    bb = await store.pull("docker.io/library/busybox:1.28")
    assert bb.repo_tags == ["docker.io/library/busybox:1.28"]
    assert (store.layer_dirs(bb)[0] / "bin/busybox").exists()
    repo = f"k8pytest/corrupt-{uuid.uuid4().hex[:8]}"
    img = image([layer({"payload": os.urandom(4096)})])
    await push(local_registry.addr, repo, "v1", img)
    ld = digest_of(img.layers[0].blob)
    data = (local_registry.data / "storage/docker/registry/v2/blobs/sha256" / ld[7:9] / ld[7:] / "data")
    data.write_bytes(bytes(b ^ 0xFF for b in data.read_bytes()))
    cfg = RegistriesConfig.from_dict({"mirrors": {}, "disable_default_endpoint": False})
    with pytest.raises(ImagePullError) as e:
        await store_for(cfg).pull(f"{local_registry.addr}/{repo}:v1")
    assert e.value.cause == "digest mismatch"


async def test_local_registry_manifest_list(local_registry, store_for) -> None:  # type: ignore[no-untyped-def]
    os_, arch, _ = host_platform()
    repo = f"k8pytest/multi-{uuid.uuid4().hex[:8]}"
    ours, other = image([layer({"who": b"ours"})]), image([layer({"who": b"other"})], arch="s390x")
    await push(local_registry.addr, repo, "ours", ours)
    await push(local_registry.addr, repo, "other", other)
    await put_manifest(local_registry.addr, repo, "latest", index([(other, "linux", "s390x"), (ours, os_, arch)]),
                       "application/vnd.oci.image.index.v1+json")
    got = await store_for(RegistriesConfig()).pull(f"{local_registry.addr}/{repo}")
    assert got.id == ours.config_digest
