"""Fixtures for runtime tests: a pre-pulled image store and a runc runtime per test.

Every runtime a test gets has its own state/data dirs, cgroup parent and netns prefix
(all named k8py-...), so parallel sessions never see each other's containers; teardown
runs cleanup() and asserts nothing of it is left: no runc container, netns, cgroup or mount.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from k8py.runtime import cgroups, mounts
from k8py.runtime.images import ImageStore
from k8py.runtime.mirrors import RegistriesConfig
from k8py.runtime.registry import RegistryClient
from k8py.runtime.runc import RuncRuntime
from tests.runtime.oci_helpers import FakeRegistry

TEST_IMAGES = ["busybox", "stress", "nginx:1.14.2", "mysql:5.6"]


def need_root_and_runc() -> None:
    if os.geteuid() != 0:
        pytest.skip("runtime tests need root (runc, overlay mounts, netns, cgroups)")
    if shutil.which("runc") is None:
        pytest.skip("runtime tests need runc (apt install runc)")


@pytest.fixture(scope="session")
def registries(local_registry) -> RegistriesConfig:  # type: ignore[no-untyped-def]
    return RegistriesConfig.from_dict(local_registry.registries_yaml())


@pytest.fixture(scope="session")
def image_root(registries: RegistriesConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image store with TEST_IMAGES pulled. It persists across sessions (content-addressed,
    flock-protected, so parallel sessions share it safely): later sessions only re-resolve."""
    need_root_and_runc()
    root = Path(os.environ.get("K8PY_TEST_IMAGE_STORE", "/var/cache/k8py/test-image-store"))
    root.mkdir(parents=True, exist_ok=True)

    async def pull() -> None:
        client = RegistryClient(registries)
        try:
            store = ImageStore(root, client)
            for im in TEST_IMAGES:
                await store.pull(im)
        finally:
            await client.close()

    asyncio.run(pull())
    return root


def leftovers(rt: RuncRuntime) -> list[str]:
    out: list[str] = []
    r = subprocess.run(["runc", "--root", str(rt.runc_root), "list", "-q"], capture_output=True, text=True)
    out += [f"runc container {n}" for n in r.stdout.split()]
    prefix = rt.sandboxes.netns_prefix
    if Path("/run/netns").exists():
        out += [f"netns {n}" for n in os.listdir("/run/netns") if n.startswith(prefix)]
    out += [f"cgroup {p}" for p in cgroups.existing(rt.cgroup_parent)]
    out += [f"mount {m}" for m in mounts.mounts_under(rt.state_dir) + mounts.mounts_under(rt.data_dir)]
    return out


@pytest.fixture
async def runtime(image_root: Path, registries: RegistriesConfig, tmp_path: Path) -> AsyncIterator[RuncRuntime]:
    tag = uuid.uuid4().hex[:8]
    state = Path(f"/run/k8py-test-{tag}")
    data = tmp_path / f"k8py-data-{tag}"
    rt = RuncRuntime(state, data, images=ImageStore(image_root, RegistryClient(registries)),
                     cgroup_parent=f"k8py-test-{tag}", netns_prefix=f"k8py-t{tag[:4]}-")
    try:
        yield rt
    finally:
        await rt.cleanup()
        await rt.close()
        left = leftovers(rt)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
        assert not left, f"runtime teardown left: {left}"


@pytest.fixture
async def fake() -> AsyncIterator[FakeRegistry]:
    """An OCI registry in memory, on loopback, for the image store's tests."""
    reg = FakeRegistry()
    await reg.start()
    yield reg
    await reg.stop()
