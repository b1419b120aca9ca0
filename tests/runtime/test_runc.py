"""The runc runtime with real containers (root, runc, the local registry's images)."""
from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from k8py.runtime import cgroups
from k8py.runtime.errors import CreateContainerError
from k8py.runtime.logs import read_log
from k8py.runtime.protocol import ContainerConfig, ContainerState, ContainerStatus, DNSConfig, Mount, PodSandboxConfig
from k8py.runtime.runc import RuncRuntime

pytestmark = pytest.mark.root

CRI_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] (.*)$")


async def wait_for(pred: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def sandbox(rt: RuncRuntime, name: str = "pod", **kw: object) -> str:
    return await rt.run_pod_sandbox(PodSandboxConfig(name=name, namespace="default", uid=str(uuid.uuid4()),
                                                     **kw))  # type: ignore[arg-type]


async def run(rt: RuncRuntime, sid: str, config: ContainerConfig) -> str:
    cid = await rt.create_container(sid, config)
    await rt.start_container(cid)
    return cid


async def wait_exit(rt: RuncRuntime, cid: str, timeout: float = 30.0) -> ContainerStatus:
    async def exited() -> bool:
        return (await rt.container_status(cid)).state == ContainerState.EXITED

    await wait_for(exited, timeout, f"container {cid} to exit")
    return await rt.container_status(cid)


def log_lines(rt: RuncRuntime, cid: str, stream: str | None = None) -> list[str]:
    out = []
    for line in Path(rt.log_path(cid)).read_bytes().decode().split("\n")[:-1]:  # a tty's \r stays
        m = CRI_LINE.match(line)
        assert m, f"not a CRI log line: {line!r}"
        if stream is None or m.group(1) == stream:
            out.append(m.group(2))
    return out


async def test_echo_hi_logs_in_cri_format(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="hello", image="busybox",
                                                  command=["sh", "-c", "echo hi; echo oops >&2"]))
    st = await wait_exit(runtime, cid)
    assert (st.state, st.exit_code, st.reason) == (ContainerState.EXITED, 0, "Completed")
    assert st.started_at and st.finished_at and st.finished_at >= st.started_at
    assert log_lines(runtime, cid, "stdout") == ["hi"]
    assert log_lines(runtime, cid, "stderr") == ["oops"]


@pytest.mark.parametrize("config, expected", [
    (dict(command=["sh", "-c", 'echo "$GREETING $0 $1"', "a"], args=["b"], env=[("GREETING", "hello")]),
     "hello a b"),
    (dict(command=["/bin/echo"], args=["only", "args"]), "only args"),
    (dict(args=["-c", "pwd"], command=["sh"], working_dir="/tmp"), "/tmp"),
    (dict(command=["sh", "-c", "id -u; id -g"], run_as_user=33, run_as_group=34), "33\n34"),
    (dict(command=["sh", "-c", "echo $PATH"]), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    (dict(command=["hostname"]), "web-0"),
    (dict(command=["cat", "/etc/resolv.conf"]), "nameserver 10.43.0.10\nsearch default.svc.cluster.local"),
])
async def test_process_spec(runtime: RuncRuntime, config: dict, expected: str) -> None:
    sid = await sandbox(runtime, "web-0", dns=DNSConfig(servers=["10.43.0.10"],
                                                        searches=["default.svc.cluster.local"]))
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox", **config))
    st = await wait_exit(runtime, cid)
    assert st.exit_code == 0, log_lines(runtime, cid)
    assert "\n".join(log_lines(runtime, cid, "stdout")) == expected


async def test_long_lines_are_split_and_joined(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox", command=[
        "sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo; echo end"]))
    await wait_exit(runtime, cid)
    raw = Path(runtime.log_path(cid)).read_text().splitlines()
    assert [line.split(" ")[2] for line in raw] == ["P", "P", "F", "F"]
    got = [x async for x in read_log(runtime.log_path(cid))]
    assert got == [b"x" * 40000 + b"\n", b"end\n"]


async def test_image_entrypoint_and_cmd(runtime: RuncRuntime) -> None:
    """stress has ENTRYPOINT [stress]: args alone keep it, as Kubernetes does."""
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="s", image="stress", args=["--cpu", "1", "--timeout", "1"]))
    st = await wait_exit(runtime, cid)
    assert st.exit_code == 0
    assert "dispatching hogs: 1 cpu" in " ".join(log_lines(runtime, cid))


async def test_volume_mounts_and_read_only(runtime: RuncRuntime, tmp_path: Path) -> None:
    (tmp_path / "rw").mkdir()
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "f").write_text("data\n")
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(
        name="v", image="busybox",
        command=["sh", "-c", "cat /in/f; echo out > /out/g; echo x > /in/h || echo denied"],
        mounts=[Mount("/in", str(tmp_path / "ro"), read_only=True), Mount("/out", str(tmp_path / "rw"))]))
    await wait_exit(runtime, cid)
    assert log_lines(runtime, cid, "stdout") == ["data", "denied"]
    assert (tmp_path / "rw" / "g").read_text() == "out\n"
    assert not (tmp_path / "ro" / "h").exists()


async def test_missing_command_is_create_error(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    with pytest.raises(CreateContainerError, match="no-such-binary"):
        await runtime.create_container(sid, ContainerConfig(name="x", image="busybox", command=["no-such-binary"]))
    assert await runtime.list_containers(sid) == []


async def test_containers_in_a_pod_share_localhost(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    server = await run(runtime, sid, ContainerConfig(
        name="server", image="busybox",
        command=["sh", "-c", "mkdir /www && echo pod-local > /www/index.html && exec httpd -f -p 8080 -h /www"]))

    async def served() -> bool:
        r = await runtime.exec_sync(server, ["wget", "-qO-", "http://127.0.0.1:8080/"], timeout=5)
        return r.exit_code == 0

    await wait_for(served, what="httpd in the server container")
    client = await run(runtime, sid, ContainerConfig(
        name="client", image="busybox", command=["wget", "-qO-", "http://localhost:8080/"]))
    st = await wait_exit(runtime, client)
    assert st.exit_code == 0
    assert log_lines(runtime, client, "stdout") == ["pod-local"]
    # another pod has its own network namespace: nothing listens on its 8080
    other = await sandbox(runtime, "other")
    cid = await run(runtime, other, ContainerConfig(name="c", image="busybox",
                                                    command=["wget", "-T", "2", "-qO-", "http://127.0.0.1:8080/"]))
    assert (await wait_exit(runtime, cid)).exit_code != 0


async def test_memory_limit_oom_killed(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(
        name="hog", image="stress", args=["--vm", "1", "--vm-bytes", "64M", "--vm-hang", "1"],
        memory_limit_bytes=24 << 20))
    st = await wait_exit(runtime, cid)
    assert (st.exit_code, st.reason) == (137, "OOMKilled")


async def test_under_the_memory_limit_runs(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(
        name="hog", image="stress", args=["--vm", "1", "--vm-bytes", "8M", "--vm-hang", "1"],
        memory_limit_bytes=32 << 20))

    async def allocated() -> bool:
        return any("allocated" in line for line in log_lines(runtime, cid))

    await wait_for(allocated, what="the allocation")
    assert (await runtime.container_status(cid)).state == ContainerState.RUNNING
    await runtime.stop_container(cid, 0)
    st = await runtime.container_status(cid)
    assert (st.exit_code, st.reason) == (137, "Error")


async def test_cpu_and_memory_cgroup_files(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox", command=["sleep", "1000"],
                                                  cpu_limit_millis=250, cpu_request_millis=100,
                                                  memory_limit_bytes=64 << 20, pids_limit=50))
    cg = runtime._load(cid)["cgroups_path"]
    cpu = Path(cgroups.cpu_dir(cg))
    mem = Path(cgroups.memory_dir(cg))
    assert int((cpu / "cpu.cfs_quota_us").read_text()) == 25000
    assert int((cpu / "cpu.cfs_period_us").read_text()) == 100000
    assert int((cpu / "cpu.shares").read_text()) == 102
    assert int((mem / "memory.limit_in_bytes").read_text()) == 64 << 20
    pids = Path("/sys/fs/cgroup/pids") / cg.strip("/")
    if pids.exists():
        assert (pids / "pids.max").read_text().strip() == "50"
    await runtime.stop_container(cid, 0)


async def test_container_stats(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(
        name="hog", image="stress", args=["--vm", "1", "--vm-bytes", "20M", "--vm-hang", "1"],
        memory_limit_bytes=64 << 20))

    async def allocated() -> bool:
        return any("allocated" in line for line in log_lines(runtime, cid))

    await wait_for(allocated, what="the allocation")
    st = await runtime.container_stats(cid)
    assert st is not None
    assert 20 << 20 <= st.memory_working_set_bytes <= st.memory_usage_bytes <= 64 << 20
    assert st.cpu_usage_ns > 0
    await runtime.stop_container(cid, 0)
    assert await runtime.container_stats(cid) is None


async def test_stop_sigterm_then_sigkill(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    polite = await run(runtime, sid, ContainerConfig(
        name="polite", image="busybox",
        command=["sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.1; done"]))
    stubborn = await run(runtime, sid, ContainerConfig(
        name="stubborn", image="busybox",
        command=["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"]))
    for cid in (polite, stubborn):
        async def ready(cid: str = cid) -> bool:
            return "ready" in log_lines(runtime, cid)
        await wait_for(ready, what="the trap to be installed")
    await runtime.stop_container(polite, 30)
    st = await runtime.container_status(polite)
    assert (st.exit_code, st.reason) == (3, "Error")
    assert "got TERM" in log_lines(runtime, polite)
    await runtime.stop_container(stubborn, 0.3)
    st = await runtime.container_status(stubborn)
    assert st.exit_code == 137


async def test_exec_sync(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox", command=["sleep", "1000"],
                                                  env=[("FOO", "bar")]))
    for cmd, code, out in [(["sh", "-c", "echo $FOO"], 0, b"bar\n"), (["sh", "-c", "exit 7"], 7, b""),
                           (["true"], 0, b""), (["false"], 1, b"")]:
        r = await runtime.exec_sync(cid, cmd, timeout=10)
        assert (r.exit_code, r.stdout) == (code, out), cmd
    r = await runtime.exec_sync(cid, ["sleep", "100"], timeout=0.3)
    assert r.timed_out
    r = await runtime.exec_sync(cid, ["sh", "-c", "echo err >&2; exit 2"], timeout=10)
    assert (r.exit_code, r.stderr) == (2, b"err\n")


async def test_streaming_exec_with_stdin(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox", command=["sleep", "1000"]))
    s = await runtime.exec(cid, ["tr", "a-z", "A-Z"], stdin=True)
    await s.write(b"shout\n")
    await s.close_stdin()
    assert await s.stdout.read() == b"SHOUT\n"
    assert await s.wait() == 0
    assert s.stderr is not None and await s.stderr.read() == b""


async def test_streaming_exec_with_tty(runtime: RuncRuntime) -> None:
    """A tty exec: one terminal (no stderr), the size we set reaches the container's pty, the
    exit code comes back. runc forwards a resize (SIGWINCH) asynchronously, and one sent before
    it has the container's console is not replayed, so the test resizes once the shell has
    prompted and asks `stty size` until the size shows (a condition, not a fixed wait)."""
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox", command=["sleep", "1000"]))
    s = await runtime.exec(cid, ["sh"], tty=True, stdin=True)
    assert s.stderr is None
    out = b""

    async def read_more() -> None:
        nonlocal out
        chunk = await asyncio.wait_for(s.stdout.read(4096), 60)
        assert chunk, f"the session ended early: {out!r}"
        out += chunk

    async def read_until(marker: bytes) -> None:
        while marker not in out:
            await read_more()

    await read_until(b"# ")  # the shell's prompt: runc holds the container's console
    sizes: list[bytes] = []
    while b"45 123" not in sizes and len(sizes) < 50:
        s.resize(123, 45)
        await s.write(b"echo size=$(stty size)\n")
        before = len(re.findall(rb"size=(\d+ \d+)", out))
        while len(re.findall(rb"size=(\d+ \d+)", out)) == before:
            await read_more()
        sizes = re.findall(rb"size=(\d+ \d+)", out)
    assert b"45 123" in sizes, sizes
    await s.write(b"tty; exit 5\n")
    while not s.stdout.at_eof():
        chunk = await asyncio.wait_for(s.stdout.read(4096), 60)
        if not chunk:
            break
        out += chunk
    assert await s.wait() == 5
    assert b"/dev/pts/" in out


async def test_status_survives_a_new_runtime_instance(runtime: RuncRuntime) -> None:
    """Restarting the agent: a new RuncRuntime over the same dirs sees the running container."""
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox",
                                                  command=["sleep", "1000"]))
    again = RuncRuntime(runtime.state_dir, runtime.data_dir, images=runtime.images,
                        cgroup_parent=runtime.cgroup_parent, netns_prefix=runtime.sandboxes.netns_prefix)
    assert [c.id for c in await again.list_containers()] == [cid]
    assert (await again.container_status(cid)).state == ContainerState.RUNNING
    await again.stop_container(cid, 5)
    assert (await runtime.container_status(cid)).state == ContainerState.EXITED


async def test_nginx_serves_welcome_page_and_logs_requests(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    web = await run(runtime, sid, ContainerConfig(name="nginx", image="nginx:1.14.2"))

    async def up() -> bool:
        if (await runtime.container_status(web)).state != ContainerState.RUNNING:
            raise AssertionError(f"nginx exited: {log_lines(runtime, web)}")
        client = await run(runtime, sid, ContainerConfig(name="probe", image="busybox",
                                                         command=["wget", "-qO-", "http://127.0.0.1/"]))
        st = await wait_exit(runtime, client)
        ok = st.exit_code == 0 and any("Welcome to nginx!" in line for line in log_lines(runtime, client))
        await runtime.remove_container(client)
        return ok

    await wait_for(up, what="nginx to serve")
    assert any('"GET / HTTP/1.1" 200' in line for line in log_lines(runtime, web, "stdout"))
    await runtime.stop_container(web, 10)  # SIGQUIT (the image's StopSignal): graceful exit
    assert (await runtime.container_status(web)).exit_code == 0


async def test_remove_sandbox_removes_everything(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    st = await runtime.pod_sandbox_status(sid)
    assert Path(st.netns_path).exists() and st.netns_path.startswith("/run/netns/k8py-")
    await run(runtime, sid, ContainerConfig(name="c", image="busybox", command=["sleep", "1000"]))
    await runtime.stop_pod_sandbox(sid)
    assert not Path(st.netns_path).exists()
    assert all(c.state == ContainerState.EXITED for c in await runtime.list_containers(sid))
    await runtime.remove_pod_sandbox(sid)
    assert await runtime.list_containers() == []
    assert await runtime.list_pod_sandboxes() == []
    assert cgroups.existing(f"{runtime.cgroup_parent}/{st.uid}") == []


@pytest.mark.parametrize("limit_mib, survives", [(128, False), (256, True)])
async def test_mysql_memory_needs(runtime: RuncRuntime, limit_mib: int, survives: bool) -> None:
    """The mysql image needs realistic memory: 128Mi is OOM-killed during init, 256Mi serves."""
    sid = await sandbox(runtime, "db")
    cid = await run(runtime, sid, ContainerConfig(
        name="mysql", image="mysql:5.6", memory_limit_bytes=limit_mib << 20,
        env=[("MYSQL_ROOT_PASSWORD", "rootpw"), ("MYSQL_DATABASE", "shop"), ("MYSQL_USER", "app"),
             ("MYSQL_PASSWORD", "apppw")]))

    async def settled() -> bool:
        st = await runtime.container_status(cid)
        if st.state == ContainerState.EXITED:
            return True
        r = await runtime.exec_sync(cid, ["mariadb", "-uapp", "-papppw", "-h127.0.0.1", "shop", "-Nse",
                                          "SELECT CURRENT_USER()"], timeout=10)
        return r.exit_code == 0 and r.stdout.strip() == b"app@%"

    await wait_for(settled, 90, "mysql to serve or die")
    st = await runtime.container_status(cid)
    if survives:
        assert st.state == ContainerState.RUNNING, log_lines(runtime, cid)[-20:]
    else:
        assert (st.state, st.reason) == (ContainerState.EXITED, "OOMKilled")


async def test_host_network_pod(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime, "hostnet", host_network=True)
    st = await runtime.pod_sandbox_status(sid)
    assert st.netns_path == ""
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox",
                                                  command=["sh", "-c", "hostname; ls /sys/class/net"]))
    assert (await wait_exit(runtime, cid)).exit_code == 0, log_lines(runtime, cid)
    import os
    assert log_lines(runtime, cid)[0] == os.uname().nodename
    assert "lo" in log_lines(runtime, cid)[1:]


async def test_termination_message(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(
        name="c", image="busybox", termination_message_path="/dev/termination-log",
        command=["sh", "-c", "echo -n 'bye now' > /dev/termination-log; exit 4"]))
    st = await wait_exit(runtime, cid)
    assert (st.exit_code, st.message) == (4, "bye now")


async def test_pod_containers_share_ipc_and_uts(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime, "shared")
    first = await run(runtime, sid, ContainerConfig(name="a", image="busybox", command=["sleep", "1000"]))
    second = await run(runtime, sid, ContainerConfig(name="b", image="busybox", command=["sleep", "1000"]))
    other = await run(runtime, await sandbox(runtime, "other"),
                      ContainerConfig(name="c", image="busybox", command=["sleep", "1000"]))

    async def ns(cid: str, kind: str) -> bytes:
        r = await runtime.exec_sync(cid, ["readlink", f"/proc/self/ns/{kind}"], timeout=10)
        assert r.exit_code == 0, r.stderr
        return r.stdout

    for kind in ("ipc", "uts", "net"):
        assert await ns(first, kind) == await ns(second, kind), kind
        assert await ns(first, kind) != await ns(other, kind), kind
    assert await ns(first, "pid") != await ns(second, "pid")
    assert (await runtime.exec_sync(second, ["hostname"], timeout=10)).stdout == b"shared\n"


async def test_attach_with_stdin(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox", stdin=True,
                                                  command=["sh", "-c", "read line; echo got $line; echo bye >&2"]))
    a = await runtime.attach(cid)
    assert a.stderr is not None
    await a.write(b"hello\n")
    assert await asyncio.wait_for(a.stdout.read(), 10) == b"got hello\n"
    assert await a.stderr.read() == b"bye\n"
    assert await a.wait() == 0
    assert (log_lines(runtime, cid, "stdout"), log_lines(runtime, cid, "stderr")) == (["got hello"], ["bye"])


async def test_attach_stdin_once_closes_stdin_on_detach(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox", stdin=True, stdin_once=True,
                                                  command=["sh", "-c", "cat; echo eof"]))
    a = await runtime.attach(cid)
    await a.write(b"one\n")
    assert await asyncio.wait_for(a.stdout.readline(), 10) == b"one\n"
    a.kill()  # detach: stdin closes, cat ends
    st = await wait_exit(runtime, cid)
    assert st.exit_code == 0 and log_lines(runtime, cid) == ["one", "eof"]


async def test_attach_with_tty(runtime: RuncRuntime) -> None:
    """What `kubectl run -it busybox -- sh` needs: a terminal, stdin, resize."""
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox", stdin=True, stdin_once=True,
                                                  tty=True, command=["sh"]))
    a = await runtime.attach(cid)
    assert a.stderr is None
    a.resize(123, 45)
    await a.write(b"tty; stty size; echo $TERM; exit 3\n")
    out = await asyncio.wait_for(a.stdout.read(), 10)
    assert await a.wait() == 3
    assert b"/dev/pts/0" in out and b"45 123" in out and b"xterm" in out
    assert (await wait_exit(runtime, cid)).exit_code == 3
    assert any("45 123" in line for line in log_lines(runtime, cid, "stdout"))


async def test_attach_to_output_only(runtime: RuncRuntime) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox",
                                                  command=["sh", "-c", "while true; do echo tick; sleep 0.05; done"]))
    a = await runtime.attach(cid)
    assert await asyncio.wait_for(a.stdout.readline(), 10) == b"tick\n"
    with pytest.raises(RuntimeError):
        await a.write(b"x")
    a.kill()
    assert await a.wait() == -1
    assert (await runtime.container_status(cid)).state == ContainerState.RUNNING


@pytest.mark.parametrize("config, ok", [
    (dict(command=["ip", "link", "set", "lo", "mtu", "1400"]), False),
    (dict(command=["ip", "link", "set", "lo", "mtu", "1400"], cap_add=["NET_ADMIN"]), True),
    (dict(command=["ip", "link", "set", "lo", "mtu", "1400"], privileged=True), True),
    (dict(command=["ping", "-c", "1", "-W", "2", "127.0.0.1"]), True),  # NET_RAW is a default capability
    (dict(command=["ping", "-c", "1", "-W", "2", "127.0.0.1"], cap_drop=["NET_RAW"], run_as_user=0), False),
    (dict(command=["touch", "/written"]), True),
    (dict(command=["touch", "/written"], read_only_rootfs=True), False),
    (dict(command=["sh", "-c", "touch /tmp/x"], run_as_user=65534), True),
    (dict(command=["sh", "-c", "touch /etc/x"], run_as_user=65534), False),
])
async def test_security_context(runtime: RuncRuntime, config: dict, ok: bool) -> None:
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox", **config))
    st = await wait_exit(runtime, cid)
    assert (st.exit_code == 0) == ok, log_lines(runtime, cid)


async def test_busybox_image_tools(runtime: RuncRuntime) -> None:
    """The course's busybox commands exist in every tag (nslookup is DNS-only: not run here)."""
    image_id = await runtime.pull_image("busybox:1.28")
    assert (await runtime.image_status("docker.io/library/busybox:1.28")).id == image_id  # type: ignore[union-attr]
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="c", image="busybox:1.28", command=[
        "sh", "-c", "for c in sh wget nslookup sleep nc httpd ping ps top vi; do "
                    "command -v $c >/dev/null || echo missing $c; done; echo checked"]))
    st = await wait_exit(runtime, cid)
    assert (st.exit_code, log_lines(runtime, cid)) == (0, ["checked"])


async def test_pod_pids_limit_holds_a_fork_bomb(runtime: RuncRuntime) -> None:
    runtime.pod_pids_limit = 20
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="bomb", image="busybox", command=[
        "sh", "-c",
        "for i in $(seq 1 60); do (sleep 1000 &) 2>/dev/null || echo refused >&2; done; echo forked; sleep 1000"]))
    pod_cg = cgroups.pids_dir("/".join(runtime._load(cid)["cgroups_path"].strip("/").split("/")[:2]))
    assert (pod_cg / "pids.max").read_text().strip() == "20"

    async def forked() -> bool:
        return "forked" in log_lines(runtime, cid)

    await wait_for(forked, what="the fork loop to end")
    assert "refused" in log_lines(runtime, cid, "stderr")  # fork failed (EAGAIN) inside the container
    current, limit = cgroups.pids("/".join(pod_cg.parts[-2:])) or (0, 0)
    assert 0 < current <= limit == 20
    await runtime.stop_container(cid, 0)


async def test_the_shim_rotates_the_log(runtime: RuncRuntime) -> None:
    runtime.log_max_size, runtime.log_max_files = 4000, 3
    sid = await sandbox(runtime)
    cid = await run(runtime, sid, ContainerConfig(name="chatty", image="busybox", command=[
        "sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done"]))
    assert (await wait_exit(runtime, cid)).exit_code == 0
    log = Path(runtime.log_path(cid))

    async def settled() -> bool:
        # oldest first, as the shim orders them: two rotations within one second are named
        # <ts> and <ts>-<ns>, and "<ts>.gz" would sort after "<ts>-<ns>" by plain name
        files = sorted((p.name for p in log.parent.iterdir() if p.name.startswith(log.name)),
                       key=lambda n: n.removesuffix(".gz"))
        return len(files) == 3 and files[1].endswith(".gz") and not files[2].endswith(".gz")

    listing = lambda: sorted(p.name for p in log.parent.iterdir())  # noqa: E731
    try:
        await wait_for(settled, what="the rotated files compressed")
    except AssertionError:
        raise AssertionError(f"the rotated files compressed: {listing()}") from None
    assert all(p.stat().st_size <= 4000 for p in log.parent.iterdir() if p.name.startswith(log.name))
    assert log_lines(runtime, cid)[-1] == "line 1999"
