"""Per-container shim: owns one runc container's process, logs and exit status.

Run as `python3 -I -S shim.py --runc R --root ROOT --id ID --bundle B --state DIR --log PATH
[--cgroup-memory DIR] [--log-max-size BYTES --log-max-files N]` (standard library only, so it
starts fast and survives restarts of the k8py process). It double-forks into its own session,
so restarting the agent never touches a running container; then, as a child subreaper, it
runs `runc create` with the container's stdout/stderr on pipes, reports `ok <pid>` (or
`error <message>`) on its original stdout and detaches from it. It copies both pipes into the
log file in CRI format (`<RFC3339Nano> stdout|stderr F|P <line>`; rotated past
--log-max-size, see LogWriter), reaps the container's init process (reparented to the shim
because it is a subreaper) and finally writes `exit.json`:
{"exit_code", "signal", "finished_at", "oom_killed"}.

Every container also gets `attach.sock` (see Attach): output frames to any client, stdin
frames into the container's stdin (a pipe with --stdin, the pty with --tty), resizes.
With --tty, runc hands the pty master over `console.sock` (runc's --console-socket); its
output is logged as stdout.

Invariants: exit.json appears exactly once, atomically, after the log pipes drained (or a
short grace period); oom_killed is read from the memory cgroup before anyone deletes it.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import termios
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
MAX_LINE = 16 * 1024


def rfc3339nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class LogWriter:
    """Appends CRI records to `path`; with `max_size` > 0 it rotates the file as the kubelet's
    container log manager does (`--container-log-max-size`, `--container-log-max-files`):
    before a record would take the file past max_size it is renamed `<path>.<YYYYmmdd-HHMMSS>`
    and a new one is started; the rotated files but the newest are gzipped (`.gz`, in a thread)
    and the oldest removed so that at most `max_files` files (the current one included) remain.
    The check is on every write (the kubelet's is every 10 s), so no file is larger than
    max_size (but for one record longer than it), and the current file always holds the
    latest record (`kubectl logs --tail 1` answers right after a rotation)."""

    def __init__(self, path: str, max_size: int = 0, max_files: int = 5) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.path, self.max_size, self.max_files = path, max_size, max(2, max_files)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.lock = threading.Lock()
        self.gz_lock = threading.Lock()  # compression vs removal of rotated files
        self.compressing: list[threading.Thread] = []

    def write(self, stream: str, line: bytes, partial: bool) -> None:
        rec = f"{rfc3339nano(time.time_ns())} {stream} {'P' if partial else 'F'} ".encode() + line + b"\n"
        with self.lock:
            if 0 < self.max_size < self.size + len(rec) and self.size > 0:
                try:
                    self._rotate()
                except OSError:
                    pass  # a full disk must not stop the copy (the pipe would fill and block the container)
            os.write(self.fd, rec)
            self.size += len(rec)

    def rotated(self) -> list[str]:
        """The rotated files of `path`, oldest first."""
        d, base = os.path.split(self.path)
        names = [n for n in os.listdir(d or ".") if n.startswith(base + ".") and not n.endswith(".tmp")]
        return [os.path.join(d, n) for n in sorted(names, key=lambda n: n.removesuffix(".gz"))]

    def _rotate(self) -> None:
        with self.gz_lock:
            old = self.rotated()
            for p in old[:max(0, len(old) - (self.max_files - 2))]:  # room for the one made now
                os.unlink(p)
            now = time.time_ns()
            target = f"{self.path}.{time.strftime('%Y%m%d-%H%M%S', time.localtime(now / 1e9))}"
            if any(p.startswith(target) for p in old):  # more than one rotation this second: keep the order
                target = f"{target}-{now % 1_000_000_000:09d}"
        os.rename(self.path, target)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        os.close(self.fd)
        self.fd, self.size = fd, 0
        t = threading.Thread(target=self.compress_older, daemon=True)
        self.compressing = [c for c in self.compressing if c.is_alive()] + [t]
        t.start()

    def finish(self, timeout: float) -> None:
        """Wait for the compressions under way (the shim exits with its container: a daemon
        thread would be cut short and leave a rotated file uncompressed)."""
        for t in self.compressing:
            t.join(timeout=timeout)

    def compress_older(self) -> None:
        """gzip every rotated file but the newest (the kubelet keeps the latest one plain)."""
        import gzip  # not at the top: only containers that rotate pay for it
        import shutil

        with self.gz_lock:
            for p in self.rotated()[:-1]:
                if p.endswith(".gz"):
                    continue
                try:
                    with open(p, "rb") as src, gzip.open(p + ".gz.tmp", "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    os.rename(p + ".gz.tmp", p + ".gz")
                    os.unlink(p)
                except OSError:
                    pass


def copy_stream(fd: int, stream: str, log: LogWriter, attach: Attach | None = None) -> None:
    buf = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO on a pty master once the terminal's last holder is gone
            chunk = b""
        if not chunk:
            break
        if attach is not None:
            attach.send(1 if stream == "stdout" else 2, chunk)
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1:]
            while len(line) > MAX_LINE:
                log.write(stream, line[:MAX_LINE], True)
                line = line[MAX_LINE:]
            log.write(stream, line, False)
        while len(buf) > MAX_LINE:
            log.write(stream, buf[:MAX_LINE], True)
            buf = buf[MAX_LINE:]
    if buf:
        log.write(stream, buf, False)
    os.close(fd)


def oom_killed(memcg: str) -> bool:
    """Whether the OOM killer struck in the memory cgroup (v1 memory.oom_control, v2 memory.events)."""
    if not memcg:
        return False
    for name in ("memory.oom_control", "memory.events"):
        try:
            with open(os.path.join(memcg, name)) as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if k == "oom_kill" and int(v) > 0:
                        return True
        except OSError:
            pass
    return False


def runc_error(logfile: str) -> str:
    import json  # not at the top: json pulls in re, and startup is on every pod's start path

    msg = ""
    try:
        with open(logfile) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("level") in ("error", "fatal"):
                    msg = rec.get("msg", "")
    except OSError:
        pass
    return msg


def write_json(path: str, data: dict) -> None:
    import json

    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


class Attach:
    """The attach socket: clients get output frames and may send stdin/resize frames.

    Frame: 1 byte channel, 4 bytes big-endian length, payload. Channels: 0 stdin (client ->
    shim), 1 stdout, 2 stderr, 3 exit (shim -> client, payload = 4-byte exit code) or
    close-stdin (client -> shim, empty), 4 resize (client -> shim, 2+2 bytes cols, rows).
    """

    def __init__(self, path: str, stdin_fd: int | None, master: int | None, stdin_once: bool) -> None:
        self.stdin_fd, self.master, self.stdin_once = stdin_fd, master, stdin_once
        self.clients: list[socket.socket] = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(path)
        except OSError:
            pass
        self.sock.bind(path)
        os.chmod(path, 0o600)
        self.sock.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.clients.append(c)
            threading.Thread(target=self._client, args=(c,), daemon=True).start()

    def _close_stdin(self) -> None:
        with self.lock:
            fd, self.stdin_fd = self.stdin_fd, None
        if fd is not None and fd != self.master:
            try:
                os.close(fd)
            except OSError:
                pass

    def _client(self, c: socket.socket) -> None:
        used_stdin = False
        f = c.makefile("rb")
        try:
            while True:
                head = f.read(5)
                if len(head) < 5:
                    break
                ch, n = struct.unpack(">BI", head)
                payload = f.read(n)
                if ch == 0 and self.stdin_fd is not None:
                    used_stdin = True
                    try:
                        os.write(self.stdin_fd, payload)
                    except OSError:
                        pass
                elif ch == 3:
                    used_stdin = True
                    if self.master is None:
                        self._close_stdin()
                elif ch == 4 and self.master is not None and len(payload) == 4:
                    cols, rows = struct.unpack(">HH", payload)
                    try:
                        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                    except OSError:
                        pass
        except OSError:
            pass
        finally:
            with self.lock:
                if c in self.clients:
                    self.clients.remove(c)
            c.close()
            if used_stdin and self.stdin_once and self.master is None:
                self._close_stdin()

    def send(self, ch: int, data: bytes) -> None:
        frame = struct.pack(">BI", ch, len(data)) + data
        with self.lock:
            for c in list(self.clients):
                try:
                    c.sendall(frame)
                except OSError:
                    self.clients.remove(c)

    def close(self, exit_code: int) -> None:
        self.send(3, struct.pack(">i", exit_code))
        with self.lock:
            for c in self.clients:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.clients = []
        self.sock.close()


def receive_console(sock: socket.socket, runc_pid: int) -> tuple[int | None, int | None]:
    """Accept runc's console-socket connection and take the pty master it sends.

    Returns (master fd or None, runc's wait status if it exited first)."""
    while True:
        r, _, _ = select.select([sock], [], [], 0.05)
        if r:
            conn, _ = sock.accept()
            with conn:
                _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
            return (fds[0] if fds else None), None
        wpid, status = os.waitpid(runc_pid, os.WNOHANG)
        if wpid:
            return None, status


class Args:
    """The command line (a hand-written parser: argparse costs ~8 ms of startup per container)."""

    FLAGS = ("stdin", "stdin_once", "tty")
    VALUES = ("runc", "root", "id", "bundle", "state", "log", "cgroup_memory", "log_max_size", "log_max_files")
    REQUIRED = ("root", "id", "bundle", "state", "log")
    runc: str
    root: str
    id: str
    bundle: str
    state: str
    log: str
    cgroup_memory: str
    log_max_size: str  # bytes; 0: never rotate
    log_max_files: str
    stdin: bool
    stdin_once: bool
    tty: bool

    def __init__(self, argv: list[str]) -> None:
        self.runc = "runc"
        self.cgroup_memory = ""
        self.log_max_size, self.log_max_files = "0", "5"
        self.stdin = self.stdin_once = self.tty = False
        it = iter(argv)
        for arg in it:
            name, eq, value = arg.partition("=")
            key = name.removeprefix("--").replace("-", "_")
            if not name.startswith("--") or key not in self.FLAGS + self.VALUES:
                raise SystemExit(f"shim: unknown argument {arg!r}")
            if key in self.FLAGS:
                setattr(self, key, True)
                continue
            if not eq:
                following = next(it, None)
                if following is None:
                    raise SystemExit(f"shim: {name} needs a value")
                value = following
            setattr(self, key, value)
        missing = [k for k in self.REQUIRED if not hasattr(self, k)]
        if missing:
            raise SystemExit(f"shim: missing {', '.join('--' + k.replace('_', '-') for k in missing)}")


class Stdio:
    """The container's stdio as the shim sets it up for `runc create`.

    Without --tty: pipes for stdout and stderr (and stdin with --stdin), whose container
    ends are `child_fds` (0, 1, 2; /dev/null where unused) and are closed in the shim once
    runc is started (`to_close`). With --tty: a console socket on which runc sends the pty
    master (`console`, `runc_flags`); the pty then carries all output and stdin.
    """

    def __init__(self, a: Args, state: str, devnull: int) -> None:
        self.pipes: list[tuple[int, str]] = []  # (read end, stream) to copy into the log
        self.child_fds: list[int] = [devnull, devnull, devnull]
        self.to_close: list[int] = []
        self.stdin_w: int | None = None
        self.console: socket.socket | None = None
        self.runc_flags: list[str] = []
        if a.tty:
            console_path = os.path.join(state, "console.sock")
            self.console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.console.bind(console_path)
            self.console.listen(1)
            self.runc_flags = ["--console-socket", console_path]
            return
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self.pipes = [(out_r, "stdout"), (err_r, "stderr")]
        self.child_fds[1:] = [out_w, err_w]
        self.to_close += [out_w, err_w]
        if a.stdin:
            in_r, self.stdin_w = os.pipe()
            self.child_fds[0] = in_r
            self.to_close.append(in_r)


def start_runc_create(a: Args, stdio: Stdio, runc_log: str, pidfile: str) -> int:
    """Fork `runc create` with the container's stdio; its pid."""
    pid = os.fork()
    if pid == 0:
        for i, fd in enumerate(stdio.child_fds):
            os.dup2(fd, i)
        try:
            os.execvp(a.runc, [a.runc, "--root", a.root, "--log", runc_log, "--log-format", "json",
                               "create", "--bundle", a.bundle, "--pid-file", pidfile, *stdio.runc_flags, a.id])
        finally:
            os._exit(127)
    for fd in stdio.to_close:
        os.close(fd)
    return pid


def wait_created(stdio: Stdio, runc_pid: int) -> tuple[int, int | None]:
    """Wait for `runc create` to finish: (its wait status, the pty master with --tty)."""
    master: int | None = None
    status: int | None = None
    if stdio.console is not None:
        master, status = receive_console(stdio.console, runc_pid)
        stdio.console.close()
    if status is None:
        _, status = os.waitpid(runc_pid, 0)
    return status, master


def wait_exit(cpid: int) -> tuple[int, int]:
    """Reap children (as subreaper) until the container's init process exits: (exit code, signal)."""
    while True:
        try:
            wpid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return -1, 0
        except InterruptedError:
            continue
        if wpid == cpid:
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                return 128 + sig, sig
            return os.WEXITSTATUS(status), 0


def daemon(a: Args, report: int) -> int:
    """Create the container, report `ok <pid>` or `error <message>` on `report`, then log
    its output until it exits and write exit.json."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    runc_log = os.path.join(a.state, "runc.log")
    pidfile = os.path.join(a.state, "pid")
    devnull = os.open(os.devnull, os.O_RDWR)
    stdio = Stdio(a, a.state, devnull)
    pid = start_runc_create(a, stdio, runc_log, pidfile)
    # While runc creates the container (before reporting, as before).
    write_json(os.path.join(a.state, "shim.json"), {"pid": os.getpid()})
    status, master = wait_created(stdio, pid)
    if os.waitstatus_to_exitcode(status) != 0 or (a.tty and master is None):
        msg = runc_error(runc_log) or f"runc create exited with {os.waitstatus_to_exitcode(status)}"
        os.write(report, f"error {msg}\n".encode())
        return 1
    with open(pidfile) as f:
        cpid = int(f.read().strip())
    if master is not None:
        stdio.pipes = [(master, "stdout")]
        stdio.stdin_w = master if a.stdin else None
    log = LogWriter(a.log, int(a.log_max_size), int(a.log_max_files))
    attach = Attach(os.path.join(a.state, "attach.sock"), stdio.stdin_w, master, a.stdin_once)
    threads = [threading.Thread(target=copy_stream, args=(fd, name, log, attach), daemon=True)
               for fd, name in stdio.pipes]
    for t in threads:
        t.start()
    os.write(report, f"ok {cpid}\n".encode())
    os.close(report)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    exit_code, sig = wait_exit(cpid)
    finished = time.time()
    oom = oom_killed(a.cgroup_memory)
    for t in threads:
        t.join(timeout=2.0)
    log.finish(timeout=10.0)
    write_json(os.path.join(a.state, "exit.json"),
               {"exit_code": exit_code, "signal": sig, "finished_at": finished, "oom_killed": oom})
    attach.close(exit_code)
    return 0


def main(argv: list[str] | None = None) -> int:
    a = Args(sys.argv[1:] if argv is None else argv)
    report = os.dup(1)
    if os.fork() != 0:
        os._exit(0)  # the caller reaps this at once; the daemon is reparented
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    os.chdir("/")
    try:
        rc = daemon(a, report)
    except BaseException as e:  # noqa: BLE001 - report, never leave the caller hanging
        try:
            os.write(report, f"error shim: {e!r}\n".encode())
        except OSError:
            pass
        rc = 1
    os._exit(rc)


if __name__ == "__main__":
    sys.exit(main())
