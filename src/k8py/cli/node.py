"""`k8py node add|stop|start|rm NAME [--data-dir DIR]`, `k8py node ls`: the node hosts of a
running `k8py server --nodes N` (same --data-dir), as a lab switches machines on and off.

`add` boots a new node host (it joins and goes Ready by itself); `stop` is a power cut
(agent and containers killed, cable pulled); `start` boots a stopped node again; `rm`
removes the node host and its Node object; `rm --all` every node host of the data dir
(what test teardowns call). Errors are one line on stderr, exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("add", "stop", "start", "rm", "ls"))
    p.add_argument("name", nargs="?", default="", help="the node's name (e.g. node-4)")
    p.add_argument("--data-dir", default="~/.k8py", help="the cluster's data dir (default ~/.k8py)")
    p.add_argument("--all", action="store_true", help="rm: every node host of the cluster")


def main(ns: argparse.Namespace) -> int:
    from k8py.nodehost import NodeHostError

    if ns.action not in ("ls",) and not ns.all and not ns.name:
        print(f"k8py node {ns.action}: a node name is needed", file=sys.stderr)
        return 2
    if os.geteuid() != 0 and ns.action != "ls":
        print(f"k8py node {ns.action}: needs root (network namespaces, runc)", file=sys.stderr)
        return 1
    try:
        asyncio.run(_run(ns))
    except NodeHostError as e:
        print(f"k8py node {ns.action}: {e}", file=sys.stderr)
        return 1
    return 0


async def _run(ns: argparse.Namespace) -> None:
    from k8py.nodehost import NodeHosts

    data_dir = os.path.realpath(os.path.expanduser(ns.data_dir))
    hosts = NodeHosts.of(data_dir)
    if ns.action == "ls":
        for name, rec in sorted(hosts.records().items()):
            print(f"{name}\t{rec.get('ip')}\t{rec.get('state')}")
    elif ns.action == "add":
        node = await hosts.add(ns.name)
        print(f"node {node.name} booting at {node.ip}")
    elif ns.action == "stop":
        await hosts.stop(ns.name)
        print(f"node {ns.name} powered off")
    elif ns.action == "start":
        await hosts.start(ns.name)
        print(f"node {ns.name} booting")
    elif ns.all:
        for name in await hosts.remove_all():
            print(f"node host {name} removed")
    else:
        await hosts.remove(ns.name)
        await _delete_node_object(data_dir, ns.name)
        print(f"node {ns.name} removed")


async def _delete_node_object(data_dir: str, name: str) -> None:
    """Delete the Node from the API (the node host is gone; its pods go with the Node)."""
    from k8py.client.client import Client
    from k8py.client.errors import ApiError
    from k8py.client.rest import RestTransport

    client = Client(RestTransport.from_kubeconfig(os.path.join(data_dir, "kubeconfig")))
    try:
        await client.delete("nodes", name)
    except (ApiError, OSError) as e:
        if not getattr(e, "not_found", False):
            print(f"k8py node rm: the Node object stays: {e}", file=sys.stderr)
    finally:
        await client.close()
