"""NetworkPolicy enforcement benchmark: prints numbers, asserts nothing.

1. Rule sync: build + `nft -f` of the node's table for 1, 100 and 1,000 policies (over 400
   pods in 10 namespaces, 200 of them on this node; each policy with label, namespace and
   ipBlock-with-except peers, a port range, a named port and an egress rule): the whole
   table (the first sync), a sync where nothing changed (nothing applied), and a sync after
   one policy changed (its diff applied). Into a scratch network namespace.
2. Through the kernel: two pods (network namespaces on a test bridge of this host, the same
   node path as a cluster's: bridged, seen through br_netfilter), one TCP stream of 512 MiB
   from one to the other, with no table, then with 100 policies selecting the receiver (the
   last one allows the sender), interleaved; median, best and worst MB/s, and the ratio of
   the medians (on a shared machine single runs swing 2-3x).

    sudo .venv/bin/python bench/netpol.py [--rounds 7]
Needs root and nft. Everything is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from k8py.netpol.controller import nft_apply
from k8py.netpol.rules import PodInfo, State, build, diff, full, render
from k8py.netpol.run import delete_table, ensure_bridge_netfilter
from k8py.network.bridge import BridgeNetwork, cleanup_links
from k8py.runtime.protocol import PodSandboxConfig

SCRATCH_NS, TABLE = "k8py-npbench-rules", "k8py-netpol-bench"
# outside the e2e clusters' random ranges (pods 10.200-254, services 10.100-199)
BR, POD_CIDR, CLUSTER, SERVICES = "k8pynpb", "10.92.1.0/24", "10.92.0.0/16", "10.93.0.0/16"
PODS_NS = ("k8py-npbench-src", "k8py-npbench-dst")
SINK = ("import socket,sys\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "s.bind(('0.0.0.0',9000));s.listen(8)\nwhile True:\n c,_=s.accept()\n n=0\n"
        " while (b:=c.recv(1<<20)):\n  n+=len(b)\n c.sendall(str(n).encode());c.close()\n")
SOURCE = ("import socket,sys,time\nc=socket.create_connection((sys.argv[1],9000));buf=b'x'*(1<<20)\n"
          "t=time.perf_counter()\nfor _ in range(int(sys.argv[2])):c.sendall(buf)\n"
          "c.shutdown(socket.SHUT_WR);n=int(c.recv(64));print(n/(time.perf_counter()-t)/1e6)\n")


def world(n_policies: int, salt: str = "") -> State:
    pods = [PodInfo(f"ns{i % 10}", f"p{i}", {"app": f"a{i % 20}", "tier": "web" if i % 2 else "db"},
                    f"10.42.{i // 200}.{i % 200 + 2}", "n1" if i < 200 else "n2", (("http", "TCP", 8080),))
            for i in range(400)]
    namespaces = {f"ns{i}": {"kubernetes.io/metadata.name": f"ns{i}", "env": "prod" if i % 2 else "dev"}
                  for i in range(10)}
    policies = []
    for i in range(n_policies):
        spec: dict[str, Any] = {
            "podSelector": {"matchLabels": {"app": f"a{i % 20}"}}, "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"tier": "web"}}},
                                  {"namespaceSelector": {"matchLabels": {"env": "prod"}}},
                                  {"ipBlock": {"cidr": f"172.{16 + i % 16}.0.0/16",
                                               "except": [f"172.{16 + i % 16}.{i % 256}.0/24"]}}],
                         "ports": [{"protocol": "TCP", "port": 8000 + i % 100, "endPort": 8100 + i % 100},
                                   {"protocol": "TCP", "port": "http"}]}],
            "egress": [{"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": f"a{(i + 1) % 20}"}}}],
                        "ports": [{"protocol": "UDP", "port": 53}]}]}
        policies.append({"metadata": {"namespace": f"ns{i % 10}", "name": f"p{i}{salt}"}, "spec": spec})
    return State(policies, pods, namespaces)


def in_scratch(script: str) -> None:
    r = subprocess.run(["ip", "netns", "exec", SCRATCH_NS, "nft", "-f", "-"], input=script.encode(),
                       capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode()[:2000])


def rule_sync() -> None:
    print("== NetworkPolicy rule sync, 400 pods (200 on this node): build + nft -f")
    subprocess.run(["ip", "netns", "add", SCRATCH_NS], check=True)
    try:
        for n in (1, 100, 1000):
            first, again, changed = world(n), world(n), world(n)
            changed.policies[0]["spec"]["ingress"][0]["ports"][0]["port"] = 7000
            t0 = time.perf_counter()
            table = build(first, "n1")
            t1 = time.perf_counter()
            script = full(table, TABLE)
            in_scratch(script)
            t2 = time.perf_counter()
            same = build(again, "n1") == table  # a sync with nothing changed applies nothing
            t3 = time.perf_counter()
            new = build(changed, "n1")
            t4 = time.perf_counter()
            in_scratch(diff(table, new, TABLE))
            t5 = time.perf_counter()
            print(f"  {n:5d} policies: whole table {1e3 * (t2 - t0):7.1f} ms (build {1e3 * (t1 - t0):6.1f}, "
                  f"{len(script) // 1024} KiB)   no change {1e3 * (t3 - t2):6.1f} ms (nothing applied: {same})   "
                  f"one policy changed {1e3 * (t5 - t3):7.1f} ms (build {1e3 * (t4 - t3):6.1f}, "
                  f"apply the diff {1e3 * (t5 - t4):5.1f})")
    finally:
        subprocess.run(["ip", "netns", "del", SCRATCH_NS], check=False)


def stream(src_ns: str, dst_ip: str, mib: int) -> float:
    out = subprocess.run(["ip", "netns", "exec", src_ns, sys.executable, "-c", SOURCE, dst_ip, str(mib)],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    return float(out.strip())


def policies_for(dst: PodInfo, src: PodInfo, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        peer = {"podSelector": {"matchLabels": {"role": "src" if i == n - 1 else f"nobody{i}"}}}
        out.append({"metadata": {"namespace": "bench", "name": f"p{i}"},
                    "spec": {"podSelector": {"matchLabels": {"role": "dst"}},
                             "ingress": [{"from": [peer], "ports": [{"protocol": "TCP", "port": 9000}]}]}})
    return out


def throughput(rounds: int, mib: int = 512) -> None:
    print(f"== pod-to-pod TCP throughput on one node ({mib} MiB stream, {rounds} interleaved rounds)")
    tmp = Path(tempfile.mkdtemp(prefix="k8py-npbench-"))
    net = BridgeNetwork(POD_CIDR, CLUSTER, SERVICES, tmp / "net", bridge=BR)
    sink = None
    try:
        ensure_bridge_netfilter()
        asyncio.run(net.ensure_node())
        ips = []
        for ns in PODS_NS:
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            ips.append(asyncio.run(net.setup(f"/run/netns/{ns}", PodSandboxConfig(name=ns, namespace="b", uid=ns))))
        src = PodInfo("bench", "src", {"role": "src"}, ips[0], "n1")
        dst = PodInfo("bench", "dst", {"role": "dst"}, ips[1], "n1")
        sink = subprocess.Popen(["ip", "netns", "exec", PODS_NS[1], sys.executable, "-c", SINK])
        time.sleep(0.5)  # the sink's listen(); a bench, not a test
        state = State(policies_for(dst, src, 100), [src, dst], {"bench": {"kubernetes.io/metadata.name": "bench"}})
        runs: dict[str, list[float]] = {"none": [], "100 policies": []}
        for _ in range(rounds):
            delete_table(TABLE)
            runs["none"].append(stream(PODS_NS[0], ips[1], mib))
            asyncio.run(nft_apply(render(state, "n1", TABLE)))
            runs["100 policies"].append(stream(PODS_NS[0], ips[1], mib))
        for k, v in runs.items():
            print(f"  {k:13s} median {statistics.median(v):7.1f} MB/s  best {max(v):7.1f}  worst {min(v):7.1f}")
        ratio = statistics.median(runs["100 policies"]) / statistics.median(runs["none"])
        print(f"  ratio of the medians (100 policies / none): {100 * ratio:.1f}%")
    finally:
        if sink is not None:
            sink.kill()
            sink.wait()
        delete_table(TABLE)
        for ns in PODS_NS:
            asyncio.run(net.teardown(f"/run/netns/{ns}", PodSandboxConfig(name=ns, namespace="b", uid=ns)))
            subprocess.run(["ip", "netns", "del", ns], check=False)
        asyncio.run(cleanup_links(BR))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    rule_sync()
    if not args.skip_throughput:
        throughput(args.rounds)


if __name__ == "__main__":
    main()
