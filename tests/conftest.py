"""Shared pytest fixtures; each section is owned by one package's engineer (the imports,
shared by all sections, at the top)."""
from __future__ import annotations

import importlib.util as _ilu
import os as _os
import shutil as _shutil
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

from helpers.net import free_port as _free_port

# ======================= runtime: local OCI registry (owner: runtime) =======================
_REPO = _Path(__file__).resolve().parent.parent
_IMAGES_DIR = _REPO / "scripts" / "images"


def _load_script(name: str):  # type: ignore[no-untyped-def]
    spec = _ilu.spec_from_file_location(f"k8py_images_{name}", _IMAGES_DIR / f"{name}.py")
    assert spec and spec.loader
    mod = _ilu.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@_dataclass(frozen=True)
class LocalRegistry:
    """A docker-registry on loopback holding k8py's test images under library/<name>
    (and registry.k8s.io's hpa-example under hpa-example)."""

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
    """Build (cached under /var/cache/k8py/images) and push busybox, stress, nginx,
    mysql, tcpdump and hpa-example to a private registry on a random loopback port;
    stopped at session end. The first build on a machine takes about a minute; later sessions a few seconds."""
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


class EtcdProcess:
    """One etcd on loopback; `stop()` kills it and removes its data dir."""

    def __init__(self, tls: bool = False) -> None:
        self.dir = _Path(_tempfile.mkdtemp(prefix="k8py-etcd-"))
        self.proc: _subprocess.Popen[bytes] | None = None
        self.url = ""
        self.pki: EtcdPki | None = _mint_etcd_pki(self.dir / "pki") if tls else None

    def start(self, timeout: float = 30.0) -> str:
        for _attempt in range(3):  # a free port may be taken before etcd binds it
            client, peer = _free_port(), _free_port()
            self.url = f"{'https' if self.pki else 'http'}://127.0.0.1:{client}"
            peer_url = f"http://127.0.0.1:{peer}"
            log = open(self.dir / "etcd.log", "ab")
            tls = [] if self.pki is None else [
                "--cert-file", str(self.pki.server_cert), "--key-file", str(self.pki.server_key),
                "--trusted-ca-file", str(self.pki.ca), "--client-cert-auth"]
            self.proc = _subprocess.Popen(
                [_ETCD_BIN, "--name", "default", "--data-dir", str(self.dir / "data"),
                 "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                 "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                 "--initial-cluster", f"default={peer_url}", *tls],
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
        ctx = None
        if self.pki is not None:
            import ssl
            ctx = ssl.create_default_context(cafile=str(self.pki.ca))
            ctx.load_cert_chain(str(self.pki.client_cert), str(self.pki.client_key))
        try:
            with _etcd_urlrequest.urlopen(req, timeout=1, context=ctx) as r:
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
class EtcdCluster:
    """A 3-member etcd cluster on loopback (one data dir each, under one temp dir).
    `urls` are the members' client URLs, `store_url` the `--store etcd://h1:p1,...` form;
    `kill(i)` is kill -9 of member i; `stop()` kills every member and removes the dirs."""

    def __init__(self, size: int = 3) -> None:
        self.dir = _Path(_tempfile.mkdtemp(prefix="k8py-etcd3-"))
        self.size = size
        self.procs: list[_subprocess.Popen[bytes] | None] = []
        self.urls: list[str] = []

    @property
    def store_url(self) -> str:
        return "etcd://" + ",".join(u.split("://", 1)[1] for u in self.urls)

    def start(self, timeout: float = 60.0) -> EtcdCluster:
        for _attempt in range(3):  # a free port may be taken before etcd binds it
            if self._start_once(timeout):
                return self
            self.stop(remove=False)
        tail = "".join((self.dir / f"m{i}.log").read_text(errors="replace")[-1500:] for i in range(self.size))
        self.stop()
        raise RuntimeError(f"etcd cluster did not start:\n{tail}")

    def _start_once(self, timeout: float) -> bool:
        clients = [f"http://127.0.0.1:{_free_port()}" for _ in range(self.size)]
        peers = [f"http://127.0.0.1:{_free_port()}" for _ in range(self.size)]
        initial = ",".join(f"m{i}={p}" for i, p in enumerate(peers))
        token = self.dir.name
        self.urls, self.procs = clients, []
        for i in range(self.size):
            _shutil.rmtree(self.dir / f"m{i}", ignore_errors=True)
            log = open(self.dir / f"m{i}.log", "ab")
            self.procs.append(_subprocess.Popen(
                [_ETCD_BIN, "--name", f"m{i}", "--data-dir", str(self.dir / f"m{i}"),
                 "--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
                 "--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
                 "--initial-cluster", initial, "--initial-cluster-token", token,
                 "--initial-cluster-state", "new"],
                stdout=log, stderr=_subprocess.STDOUT, stdin=_subprocess.DEVNULL,
                preexec_fn=_etcd_die_with_parent))
            log.close()
        deadline = _etcd_time.monotonic() + timeout
        while _etcd_time.monotonic() < deadline:
            if any(p is None or p.poll() is not None for p in self.procs):
                return False
            if all(_etcd_answers(u) for u in self.urls):
                return True
            _etcd_time.sleep(0.1)
        return False

    def kill(self, i: int) -> None:
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()

    def stop(self, remove: bool = True) -> None:
        for i in range(len(self.procs)):
            self.kill(i)
        self.procs = []
        if remove:
            _shutil.rmtree(self.dir, ignore_errors=True)


def _etcd_answers(url: str) -> bool:
    """A write-free linearizable read answers: the member is up and the cluster has a leader."""
    req = _etcd_urlrequest.Request(url + "/v3/kv/range", data=b'{"key":"AA=="}',
                                   headers={"Content-Type": "application/json"})
    try:
        with _etcd_urlrequest.urlopen(req, timeout=2) as r:
            return bool(r.status == 200)
    except (_etcd_urlerror.URLError, OSError):
        return False


@_dataclass
class EtcdPki:
    """Files minted for an etcd on TLS: its CA, its serving certificate (127.0.0.1), a
    client certificate of that CA, and a stranger: a client certificate of another CA."""

    ca: _Path
    server_cert: _Path
    server_key: _Path
    client_cert: _Path
    client_key: _Path
    stranger_cert: _Path
    stranger_key: _Path


def _mint_cert(out: _Path, name: str, cn: str, issuer: tuple | None, *, ca: bool = False,  # type: ignore[type-arg]
               server: bool = False) -> tuple:  # type: ignore[type-arg]
    """A key and certificate `name`.crt/.key in `out`, signed by `issuer` (key, cert) or self-signed."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder().subject_name(subject)
         .issuer_name(issuer[1].subject if issuer else subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                         x509.DNSName("localhost")]), critical=False)
    if not ca:
        # etcd's gateway dials its own gRPC port with the serving certificate: a server needs clientAuth too.
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        b = b.add_extension(x509.ExtendedKeyUsage([*usages, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    cert = b.sign(issuer[0] if issuer else key, hashes.SHA256())
    (out / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    return key, cert


def _mint_etcd_pki(out: _Path) -> EtcdPki:
    out.mkdir(mode=0o700, parents=True)
    ca = _mint_cert(out, "ca", "k8py-test-etcd-ca", None, ca=True)
    _mint_cert(out, "server", "etcd", ca, server=True)
    _mint_cert(out, "client", "k8py-apiserver", ca)
    other = _mint_cert(out, "other-ca", "k8py-test-other-ca", None, ca=True)
    _mint_cert(out, "stranger", "k8py-apiserver", other)
    return EtcdPki(out / "ca.crt", out / "server.crt", out / "server.key", out / "client.crt", out / "client.key",
                   out / "stranger.crt", out / "stranger.key")


@_pytest.fixture(scope="session")
def etcd_tls() -> _Iterator[EtcdProcess]:
    """A real etcd serving https only, requiring client certificates (--client-cert-auth) of
    the CA minted for it (its `pki`); shared by the session (unique key prefixes, please)."""
    if not _os.path.exists(_ETCD_BIN):
        _pytest.skip(f"{_ETCD_BIN} not installed (apt-get install etcd-server)")
    etcd = EtcdProcess(tls=True)
    try:
        etcd.start()
        yield etcd
    finally:
        etcd.stop()


@_pytest.fixture
def etcd3() -> _Iterator[EtcdCluster]:
    """A 3-member etcd cluster of the test's own (its members may be killed), torn down after."""
    if not _os.path.exists(_ETCD_BIN):
        _pytest.skip(f"{_ETCD_BIN} not installed (apt-get install etcd-server)")
    cluster = EtcdCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()

# ========================== end store: etcd server (owner: store) ==========================
