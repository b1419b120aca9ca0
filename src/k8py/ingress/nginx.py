"""k8py's own nginx: one master process per controller, with its config, pid, logs,
temp files and certificates under the controller's directory (never Debian's).

`Nginx.apply(rendered)` writes the certificates (0600), tests the candidate config
with `nginx -t` (a config nginx refuses is never loaded: the running one stays), then
starts nginx or reloads it with `nginx -s reload` (graceful: old workers finish their
requests) only when the config text changed. `stop()` asks for a graceful quit, then
kills. The master stays in k8py's process group, so a killed server takes it along.

Invariants: the live config file is only ever one that passed `nginx -t`; certificate
files no live config names are removed after a successful reload.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path

from k8py.host import proc
from k8py.ingress.errors import NginxError
from k8py.ingress.render import Rendered, Settings

log = logging.getLogger(__name__)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


class Nginx:
    def __init__(self, settings: Settings, binary: str) -> None:
        self.s = settings
        self.binary = binary
        self.dir = Path(settings.prefix)
        self.certs = Path(settings.certs_dir)
        self.conf = self.dir / "nginx.conf"
        self.proc: subprocess.Popen[bytes] | None = None
        self.loaded = ""  # the config text the running master has
        self.reloads = 0

    def prepare(self) -> None:
        for d in (self.dir, self.dir / "logs", self.dir / "tmp", self.certs):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.certs, 0o700)
        if not (self.certs / self.s.default_cert).exists():
            crt, key = default_certificate()
            _write_private(self.certs / self.s.default_key, key)
            _write_private(self.certs / self.s.default_cert, crt)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def apply(self, r: Rendered) -> bool:
        """Load `r` if it differs from the running config; True if nginx (re)loaded it."""
        if r.config == self.loaded and self.running():
            return False
        for name, data in r.files.items():
            path = self.certs / name
            if not path.exists() or path.read_bytes() != data:
                _write_private(path, data)
        candidate = self.dir / "nginx.conf.new"
        candidate.write_text(r.config)
        await self._nginx("-t", "-c", str(candidate))
        os.replace(candidate, self.conf)
        if self.running():
            await self._nginx("-s", "reload", "-c", str(self.conf))
            self.reloads += 1
        else:
            await self._start()
        self.loaded = r.config
        self._prune(r)
        return True

    async def _start(self) -> None:
        """Start the master; return once it listens (its pid file is written after the bind)."""
        log.info("ingress: starting nginx (%s)", self.conf)
        pid = self.dir / "nginx.pid"
        pid.unlink(missing_ok=True)
        p = self.proc = subprocess.Popen(  # our child, in our process group: it dies with the server
            [self.binary, "-p", str(self.dir), "-e", str(self.dir / "logs" / "error.log"), "-c", str(self.conf),
             "-g", "daemon off; master_process on;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            if p.poll() is not None:
                self.proc = None
                raise NginxError(f"nginx exited ({p.returncode}): {self._log_tail()}")
            if pid.exists() and pid.read_text().strip() == str(p.pid):
                return
            await asyncio.sleep(0.05)
        raise NginxError("nginx did not start within 30s")

    def _log_tail(self) -> str:
        try:
            return (self.dir / "logs" / "error.log").read_text(errors="replace")[-2000:].strip()
        except OSError:
            return ""

    async def _nginx(self, *args: str) -> None:
        rc, out, _ = await proc.run(self.binary, "-p", str(self.dir), "-e", str(self.dir / "logs" / "error.log"),
                                    *args, merge_stderr=True, timeout=30)
        if rc != 0:
            raise NginxError(f"nginx {' '.join(args)}: {out.decode(errors='replace').strip()}")

    def _prune(self, r: Rendered) -> None:
        keep = set(r.files) | {self.s.default_cert, self.s.default_key}
        for f in self.certs.iterdir():
            if f.name not in keep:
                f.unlink(missing_ok=True)

    async def stop(self, grace: float = 5.0) -> None:
        p, self.proc = self.proc, None
        self.loaded = ""
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGQUIT)  # graceful shutdown
        for _ in range(int(grace * 20)):
            if p.poll() is not None:
                return
            await asyncio.sleep(0.05)
        p.kill()
        await asyncio.get_running_loop().run_in_executor(None, p.wait)


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (created 0600, never wider for a moment)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def default_certificate() -> tuple[bytes, bytes]:
    """A self-signed certificate for HTTPS requests no Ingress has a certificate for."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k8py ingress default certificate")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))
