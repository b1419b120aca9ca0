"""Per-container shim: owns one runc container's process, logs and exit status.

Run as `python3 -I shim.py --runc R --root ROOT --id ID --bundle B --state DIR --log PATH
[--cgroup-memory DIR]` (standard library only, so it starts fast and survives restarts of
the k8py process). It double-forks into its own session, so restarting the agent never
touches a running container; then, as a child subreaper, it runs `runc create` with the
container's stdout/stderr on pipes, reports `ok <pid>` (or `error <message>`) on its
original stdout and detaches from it. It copies both pipes into the log file in CRI
format (`<RFC3339Nano> stdout|stderr F|P <line>`), reaps the container's init process
(reparented to the shim because it is a subreaper) and finally writes `exit.json`:
{"exit_code", "signal", "finished_at", "oom_killed"}.

Invariants: exit.json appears exactly once, atomically, after the log pipes drained (or a
short grace period); oom_killed is read from the memory cgroup before anyone deletes it.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
MAX_LINE = 16 * 1024


def rfc3339nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class LogWriter:
    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self.lock = threading.Lock()

    def write(self, stream: str, line: bytes, partial: bool) -> None:
        rec = f"{rfc3339nano(time.time_ns())} {stream} {'P' if partial else 'F'} ".encode() + line + b"\n"
        with self.lock:
            os.write(self.fd, rec)


def copy_stream(fd: int, stream: str, log: LogWriter) -> None:
    buf = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
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
    if not memcg:
        return False
    try:
        with open(os.path.join(memcg, "memory.oom_control")) as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == "oom_kill" and int(v) > 0:
                    return True
    except OSError:
        pass
    try:  # cgroup v2
        with open(os.path.join(memcg, "memory.events")) as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == "oom_kill" and int(v) > 0:
                    return True
    except OSError:
        pass
    return False


def runc_error(logfile: str) -> str:
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
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def daemon(a: argparse.Namespace, report: int) -> int:
    write_json(os.path.join(a.state, "shim.json"), {"pid": os.getpid()})
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    runc_log = os.path.join(a.state, "runc.log")
    pidfile = os.path.join(a.state, "pid")
    devnull = os.open(os.devnull, os.O_RDWR)
    pid = os.fork()
    if pid == 0:
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (out_r, err_r, out_w, err_w, report):
            os.close(fd)
        try:
            os.execvp(a.runc, [a.runc, "--root", a.root, "--log", runc_log, "--log-format", "json",
                               "create", "--bundle", a.bundle, "--pid-file", pidfile, a.id])
        finally:
            os._exit(127)
    os.close(out_w)
    os.close(err_w)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        msg = runc_error(runc_log) or f"runc create exited with {os.waitstatus_to_exitcode(status)}"
        os.write(report, f"error {msg}\n".encode())
        return 1
    with open(pidfile) as f:
        cpid = int(f.read().strip())
    log = LogWriter(a.log)
    threads = [threading.Thread(target=copy_stream, args=(fd, name, log), daemon=True)
               for fd, name in ((out_r, "stdout"), (err_r, "stderr"))]
    for t in threads:
        t.start()
    os.write(report, f"ok {cpid}\n".encode())
    os.close(report)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    exit_code, sig = -1, 0
    while True:
        try:
            wpid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if wpid == cpid:
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                exit_code = 128 + sig
            else:
                exit_code = os.WEXITSTATUS(status)
            break
    finished = time.time()
    oom = oom_killed(a.cgroup_memory)
    for t in threads:
        t.join(timeout=2.0)
    write_json(os.path.join(a.state, "exit.json"),
               {"exit_code": exit_code, "signal": sig, "finished_at": finished, "oom_killed": oom})
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runc", default="runc")
    ap.add_argument("--root", required=True)
    ap.add_argument("--id", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--cgroup-memory", default="")
    a = ap.parse_args(argv)
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
