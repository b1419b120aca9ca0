"""`k8py` command line: server, agent, image, reset, version."""

from __future__ import annotations

import argparse
import sys

from k8py import KUBERNETES_VERSION, __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="k8py", description="A small Kubernetes in Python")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version", help="print versions")
    args, rest = parser.parse_known_args(argv)
    if args.cmd == "version":
        print(f"k8py {__version__} (Kubernetes API {KUBERNETES_VERSION})")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
