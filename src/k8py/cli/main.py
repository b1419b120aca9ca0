"""`k8py` command line: server, agent, node, image, secrets, reset, version (and the
processes `k8py server --components processes` starts: kube-apiserver, kube-scheduler,
kube-controller-manager, kubelet).

Every command lives in `k8py.cli` (`server.py`, `agent.py`, `node.py`, `image.py`, `secrets.py`, `reset.py`).
Subcommand modules import their components only when chosen, so `k8py version` and
the server's startup do not pay for what they do not use.
"""

from __future__ import annotations

import argparse
import sys

from k8py import KUBERNETES_VERSION, __version__


def build_parser() -> argparse.ArgumentParser:
    from k8py.cli import agent, image, node, reset, secrets, server

    parser = argparse.ArgumentParser(prog="k8py", description="A small Kubernetes in Python")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version", help="print versions")
    server.add_arguments(sub.add_parser("server", help="run the control plane (and the embedded node agent)"))
    reset.add_arguments(sub.add_parser("reset", help="remove everything k8py created on this machine"))
    agent.add_arguments(sub.add_parser("agent", help="run a node agent that joins a k8py server"))
    node.add_arguments(sub.add_parser("node", help="add, stop, start or remove a node host of `server --nodes`"))
    image.add_image_commands(sub)
    secrets.add_arguments(sub.add_parser("secrets", help="Secrets at rest: rotate the encryption key"))
    for component in ("kube-apiserver", "kube-scheduler", "kube-controller-manager", "kubelet"):
        p = sub.add_parser(component, help=f"{component} in a process of its own (started by "
                                           "`k8py server --components processes`)")
        p.add_argument("--data-dir", default="", help="the server's data dir (shown in ps; the settings come "
                                                      "from the supervisor)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "version":
        print(f"k8py {__version__} (Kubernetes API {KUBERNETES_VERSION})")
        return 0
    if args.cmd == "server" and args.components == "processes":
        from k8py.cli import supervisor
        return supervisor.main(args)
    if args.cmd == "server":
        from k8py.cli import server
        return server.main(args)
    if args.cmd == "agent":
        from k8py.cli import agent
        return agent.main(args)
    if args.cmd == "node":
        from k8py.cli import node
        return node.main(args)
    if args.cmd == "reset":
        from k8py.cli import reset
        return reset.main(args)
    if args.cmd == "secrets":
        from k8py.cli import secrets
        return secrets.main(args)
    if args.cmd in ("kube-apiserver", "kube-scheduler", "kube-controller-manager", "kubelet"):
        from k8py.cli.proctitle import name_process
        name_process(args.cmd)
    if args.cmd == "kube-apiserver":
        from k8py.cli import server
        return server.main_apiserver()
    if args.cmd in ("kube-scheduler", "kube-controller-manager"):
        from k8py.cli import controlplane
        return controlplane.main(args.cmd)
    if args.cmd == "kubelet":
        from k8py.cli import nodeprocess
        return nodeprocess.main()
    if args.cmd == "image":
        from k8py.cli import image
        return image.run_image_command(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
