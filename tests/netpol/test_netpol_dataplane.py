"""The NetworkPolicy table on the real kernel: three pods on a test bridge of this host (same
node: bridged frames, seen through br_netfilter), a default deny, an allow by label, an
egress deny. Each check is a TCP connection from one pod's namespace to another."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from k8py.netpol.controller import nft_apply
from k8py.netpol.rules import PodInfo, State, build, diff, full, render
from k8py.netpol.run import delete_table, ensure_bridge_netfilter
from k8py.network.bridge import BridgeNetwork, cleanup_links
from k8py.runtime.protocol import PodSandboxConfig

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")

BR, TABLE = "k8pynp1", "k8py-netpol-dptest"
# outside the e2e clusters' random ranges (pods 10.200-254, services 10.100-199)
POD_CIDR, CLUSTER, SERVICES = "10.90.1.0/24", "10.90.0.0/16", "10.91.0.0/16"
NS = {"web": "k8py-nptest-web", "client": "k8py-nptest-client", "other": "k8py-nptest-other"}
LABELS = {"web": {"app": "web"}, "client": {"role": "client"}, "other": {}}


def connects(src: str, ip: str, port: int = 8080, timeout: float = 1.5) -> bool:
    code = f"import socket;socket.create_connection(('{ip}',{port}),{timeout}).recv(0)"
    return subprocess.run(["ip", "netns", "exec", NS[src], sys.executable, "-c", code],
                          capture_output=True).returncode == 0


def wait_port(src: str, ip: str) -> None:
    for _ in range(100):
        if connects(src, ip, timeout=0.5):
            return
        time.sleep(0.05)  # polling a condition, not a fixed wait
    raise AssertionError(f"{ip} never answered")


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PodInfo]]:
    tmp = tmp_path_factory.mktemp("netpol")
    net = BridgeNetwork(POD_CIDR, CLUSTER, SERVICES, tmp / "net", bridge=BR)
    procs, infos = [], {}
    try:
        assert ensure_bridge_netfilter()
        asyncio.run(net.ensure_node())
        for name, ns in NS.items():
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            ip = asyncio.run(net.setup(f"/run/netns/{ns}", PodSandboxConfig(name=ns, namespace="t", uid=ns)))
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server", "8080",
                                           "--bind", "0.0.0.0", "--directory", str(tmp)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            infos[name] = PodInfo("default", name, LABELS[name], ip, "n1")
        wait_port("client", infos["web"].ip)
        yield infos
    finally:
        for p in procs:
            p.kill()
            p.wait()
        delete_table(TABLE)
        for ns in NS.values():
            asyncio.run(net.teardown(f"/run/netns/{ns}", PodSandboxConfig(name=ns, namespace="t", uid=ns)))
            subprocess.run(["ip", "netns", "del", ns], check=False)
        asyncio.run(cleanup_links(BR))


def apply(pods: dict[str, PodInfo], *policies: dict[str, Any]) -> None:
    state = State(list(policies), list(pods.values()), {"default": {"kubernetes.io/metadata.name": "default"}})
    asyncio.run(nft_apply(render(state, "n1", TABLE)))


def pol(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name}, "spec": spec}


DENY = pol("deny", podSelector={"matchLabels": {"app": "web"}})
ALLOW = pol("allow", podSelector={"matchLabels": {"app": "web"}},
            ingress=[{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                      "ports": [{"protocol": "TCP", "port": 8080}]}])
NO_EGRESS = pol("no-egress", podSelector={"matchLabels": {"role": "client"}}, policyTypes=["Egress"])


def test_same_node_pod_to_pod_is_filtered(pods: dict[str, PodInfo]) -> None:
    web = pods["web"].ip
    apply(pods)
    assert connects("client", web) and connects("other", web)
    apply(pods, DENY)
    assert not connects("client", web) and not connects("other", web)
    apply(pods, DENY, ALLOW)
    assert connects("client", web) and not connects("other", web)
    apply(pods, DENY, ALLOW, NO_EGRESS)
    assert not connects("client", web)
    assert connects("web", pods["other"].ip)  # a pod no policy selects for ingress, from an ingress-only one


def _listing(table: str) -> list[str]:
    """The table's objects as nft's JSON, without handles (so order and handles do not count)."""
    out = json.loads(subprocess.run(["nft", "-j", "list", "table", "inet", table], capture_output=True, text=True,
                                    check=True).stdout)["nftables"]
    objs = []
    for o in out:
        for body in o.values():
            if isinstance(body, dict):
                body.pop("handle", None)
        objs.append(json.dumps(o, sort_keys=True))
    return sorted(objs)


def test_a_diff_gives_the_table_a_full_rewrite_gives(pods: dict[str, PodInfo]) -> None:
    ns = {"default": {"kubernetes.io/metadata.name": "default"}}
    worlds = [State([DENY, ALLOW], list(pods.values()), ns), State([ALLOW, NO_EGRESS], list(pods.values()), ns),
              State([], list(pods.values()), ns), State([DENY, NO_EGRESS], list(pods.values()), ns)]
    tables = [build(w, "n1") for w in worlds]
    asyncio.run(nft_apply(full(tables[0], TABLE)))
    for old, new in zip(tables, tables[1:]):
        script = diff(old, new, TABLE)
        assert "delete table" not in script
        asyncio.run(nft_apply(script))
        by_diff = _listing(TABLE)
        asyncio.run(nft_apply(full(new, TABLE)))
        assert by_diff == _listing(TABLE)
    assert diff(tables[0], tables[0], TABLE) == ""
