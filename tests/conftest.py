"""Shared pytest fixtures; each section is owned by one package's engineer (the imports,
shared by all sections, at the top)."""
from __future__ import annotations

import importlib.util as _ilu
import os as _os
import shutil as _shutil
import socket as _socket
import subprocess as _subprocess
import sys as _sys
import tempfile as _tempfile
import time as _etcd_time
import urllib.error as _etcd_urlerror
import urllib.request as _etcd_urlrequest
from collections.abc import Iterator as _Iterator
from dataclasses import dataclass as _dataclass
from pathlib import Path as _Path

import pytest as _pytest

# ======================= runtime: local OCI registry (owner: runtime) =======================
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


# ============================ store: etcd server (owner: store) ============================
# `etcd_url` starts one real etcd (Debian's etcd-server, /usr/bin/etcd) per test session on
# free loopback ports with a temporary data dir; tests that use it are skipped, with the
# reason, when etcd is not installed. Tests share the one etcd: give your keys a unique
# prefix, and expect its revisions to move under you.
_ETCD_BIN = "/usr/bin/etcd"


def _etcd_die_with_parent() -> None:
    """In the child: SIGKILL etcd when the test process dies, so none outlives a killed run."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _etcd_free_port() -> int:
    with _socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EtcdProcess:
    """One etcd on loopback; `stop()` kills it and removes its data dir."""

    def __init__(self) -> None:
        self.dir = _Path(_tempfile.mkdtemp(prefix="k8py-etcd-"))
        self.proc: _subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> str:
        for _attempt in range(3):  # a free port may be taken before etcd binds it
            client, peer = _etcd_free_port(), _etcd_free_port()
            self.url = f"http://127.0.0.1:{client}"
            peer_url = f"http://127.0.0.1:{peer}"
            log = open(self.dir / "etcd.log", "ab")
            self.proc = _subprocess.Popen(
                [_ETCD_BIN, "--name", "default", "--data-dir", str(self.dir / "data"),
                 "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                 "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                 "--initial-cluster", f"default={peer_url}"],
                stdout=log, stderr=_subprocess.STDOUT, stdin=_subprocess.DEVNULL,
                preexec_fn=_etcd_die_with_parent)
            log.close()
            deadline = _etcd_time.monotonic() + timeout
            while self.proc.poll() is None and _etcd_time.monotonic() < deadline:
                if self._answers():
                    return self.url
                _etcd_time.sleep(0.05)
            self.stop(remove=False)
        tail = (self.dir / "etcd.log").read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"etcd did not start:\n{tail}")

    def _answers(self) -> bool:
        req = _etcd_urlrequest.Request(self.url + "/v3/kv/range", data=b'{"key":"AA=="}',
                                       headers={"Content-Type": "application/json"})
        try:
            with _etcd_urlrequest.urlopen(req, timeout=1) as r:
                return bool(r.status == 200)
        except (_etcd_urlerror.URLError, OSError):
            return False

    def stop(self, remove: bool = True) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if remove:
            _shutil.rmtree(self.dir, ignore_errors=True)


@_pytest.fixture(scope="session")
def etcd_url() -> _Iterator[str]:
    """Base URL (http://127.0.0.1:PORT) of a real etcd shared by the test session."""
    if not _os.path.exists(_ETCD_BIN):
        _pytest.skip(f"{_ETCD_BIN} not installed (apt-get install etcd-server)")
    etcd = EtcdProcess()
    try:
        yield etcd.start()
    finally:
        etcd.stop()
# ========================== end store: etcd server (owner: store) ==========================
