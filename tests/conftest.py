"""Shared pytest fixtures; each section is owned by one package's engineer."""
from __future__ import annotations

# ======================= runtime: local OCI registry (owner: runtime) =======================
import importlib.util as _ilu
import os as _os
import shutil as _shutil
import socket as _socket
import subprocess as _subprocess
import sys as _sys
import tempfile as _tempfile
from dataclasses import dataclass as _dataclass
from pathlib import Path as _Path
from typing import Iterator as _Iterator

import pytest as _pytest

_REPO = _Path(__file__).resolve().parent.parent
_IMAGES_DIR = _REPO / "scripts" / "images"


def _load_script(name: str):  # type: ignore[no-untyped-def]
    spec = _ilu.spec_from_file_location(f"k8py_images_{name}", _IMAGES_DIR / f"{name}.py")
    assert spec and spec.loader
    mod = _ilu.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _free_port() -> int:
    with _socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@_dataclass(frozen=True)
class LocalRegistry:
    """A docker-registry on loopback holding k8py's test images under library/<name>."""

    addr: str  # "127.0.0.1:PORT"
    data: _Path

    @property
    def url(self) -> str:
        return f"http://{self.addr}"

    def registries_yaml(self) -> dict:
        """A k3s-style registries.yaml (as a dict) mirroring the usual registries here."""
        ep = {"endpoint": [self.url]}
        return {"mirrors": {h: ep for h in ("docker.io", "registry.k8s.io", "gcr.io", "quay.io")},
                "disable_default_endpoint": True}

    def write_registries_yaml(self, path: _Path) -> _Path:
        import yaml

        path.write_text(yaml.safe_dump(self.registries_yaml()))
        return path


@_pytest.fixture(scope="session")
def local_registry() -> _Iterator[LocalRegistry]:
    """Build (cached under /var/cache/k8py/images) and push busybox, stress, nginx and
    mysql to a private registry on a random loopback port; stopped at session end.
    The first build on a machine takes about a minute; later sessions a few seconds."""
    if _os.geteuid() != 0:
        _pytest.skip("local_registry needs root (debootstrap, chroot, overlay mounts)")
    if not _Path("/usr/bin/docker-registry").exists() or not _shutil.which("debootstrap"):
        _pytest.skip("local_registry needs docker-registry and debootstrap (apt)")
    registry = _load_script("registry")
    data = _Path(_tempfile.mkdtemp(prefix="k8py-registry-", dir="/var/tmp"))
    addr = registry.start(data, _free_port())
    try:
        r = _subprocess.run([_sys.executable, str(_IMAGES_DIR / "build.py"), "--push", addr],
                            capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"image build failed:\n{r.stderr[-4000:]}")
        yield LocalRegistry(addr, data)
    finally:
        registry.stop(data)
        _shutil.rmtree(data, ignore_errors=True)
# ===================== end runtime: local OCI registry (owner: runtime) =====================
