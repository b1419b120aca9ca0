"""The nftables dataplane on the real kernel: two pods on a test bridge behind a
ClusterIP, a NodePort on 127.0.0.1 and a LoadBalancer address on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from k8py.network.bridge import BridgeNetwork, cleanup_links
from k8py.proxy import nft
from k8py.proxy.model import Endpoint, ServicePort
from k8py.proxy.rules import build, diff, full
from k8py.runtime.protocol import PodSandboxConfig

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")

BR, TABLE = "k8pyt1", "k8pyt"
POD_CIDR, CLUSTER, SERVICES = "10.246.1.0/24", "10.246.0.0/16", "10.247.0.0/16"
NS = ("k8py-proxytest-a", "k8py-proxytest-b")


def wait_port(ns: str, ip: str, port: int) -> None:
    code = f"import socket;socket.create_connection(('{ip}',{port}),0.5)"
    for _ in range(100):
        if subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.05)  # polling a condition, not a fixed wait
    raise AssertionError(f"{ip}:{port} never answered")


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    import asyncio
    tmp = tmp_path_factory.mktemp("proxy")
    net = BridgeNetwork(POD_CIDR, CLUSTER, SERVICES, tmp / "net", bridge=BR)
    procs, ips = [], {}
    try:
        asyncio.run(net.ensure_node())
        for ns in NS:
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            ip = asyncio.run(net.setup(f"/run/netns/{ns}", PodSandboxConfig(name=ns, namespace="t", uid=ns)))
            d = tmp / ns
            d.mkdir()
            (d / "index.html").write_text(ns)
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server",
                                           "8080", "--bind", "0.0.0.0", "--directory", str(d)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ips[ns] = ip
        for ns, ip in ips.items():
            wait_port(ns, ip, 8080)
        yield ips
    finally:
        for p in procs:
            p.kill()
            p.wait()
        nft.delete_table(TABLE)
        for ns in NS:
            asyncio.run(net.teardown(f"/run/netns/{ns}", PodSandboxConfig(name=ns, namespace="t", uid=ns)))
            subprocess.run(["ip", "netns", "del", ns], check=False)
        asyncio.run(cleanup_links(BR))


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as r:
        return r.read().decode()


def ports(ips: dict[str, str], **kw: object) -> list[ServicePort]:
    eps = tuple(Endpoint(ip, 8080, "n1") for ip in sorted(ips.values()))
    return [ServicePort("default", "web", "http", "tcp", 80, "10.247.0.20", node_port=30999,
                        load_balancer_ips=("127.0.100.77",), endpoints=eps, **kw),  # type: ignore[arg-type]
            ServicePort("default", "empty", "", "tcp", 80, "10.247.0.21", node_port=30998)]


async def test_round_robin_nodeport_loadbalancer_and_reject(pods: dict[str, str]) -> None:
    rs = build(ports(pods), "n1", CLUSTER)
    await nft.apply(full(rs, TABLE))
    seen = [get("http://10.247.0.20/") for _ in range(6)]
    assert seen[0] != seen[1] and seen[::2] == [seen[0]] * 3 and seen[1::2] == [seen[1]] * 3  # strict alternation
    assert {get("http://127.0.0.1:30999/") for _ in range(4)} == set(NS)
    assert {get("http://127.0.100.77/") for _ in range(4)} == set(NS)
    # a service without endpoints refuses at once rather than hanging (a hang would be a timeout)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("10.247.0.21", 80), timeout=5)
    # hairpin: a pod reaching itself through the service
    a = NS[0]
    code = ("import urllib.request as u;print(''.join(sorted(set("
            "u.urlopen('http://10.247.0.20/',timeout=3).read().decode() for _ in range(4)))))")
    out = subprocess.run(["ip", "netns", "exec", a, sys.executable, "-c", code],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "".join(sorted(NS))


async def test_incremental_update_drops_a_removed_endpoint(pods: dict[str, str]) -> None:
    old = build(ports(pods), "n1", CLUSTER)
    await nft.apply(full(old, TABLE))
    only_a = {NS[0]: pods[NS[0]]}
    new = build(ports(only_a), "n1", CLUSTER)
    await nft.apply(diff(old, new, TABLE))
    assert {get("http://10.247.0.20/") for _ in range(4)} == {NS[0]}
    await nft.apply(diff(new, old, TABLE))
    assert {get("http://10.247.0.20/") for _ in range(4)} == set(NS)


async def test_session_affinity_keeps_a_client_on_one_endpoint(pods: dict[str, str]) -> None:
    rs = build(ports(pods, affinity_timeout=60), "n1", CLUSTER)
    await nft.apply(full(rs, TABLE))
    assert len({get("http://10.247.0.20/") for _ in range(4)}) == 1
    assert len({get("http://127.0.0.1:30999/") for _ in range(4)}) == 1
