"""`k8py image ls|pull|rm|load|inspect`: the node's image store from the command line.

Works on the same store the node agent uses (default /var/lib/k8py/images) with the same
registries.yaml (default /etc/k8py/registries.yaml), like `crictl images` / `ctr images`.
Runtime modules are imported only when a command runs, so the CLI parser stays cheap.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

DEFAULT_STORE = "/var/lib/k8py/images"
DEFAULT_REGISTRIES = "/etc/k8py/registries.yaml"


def add_image_commands(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("image", help="list, pull, remove and load container images")
    p.add_argument("--store", default=os.environ.get("K8PY_IMAGE_STORE", DEFAULT_STORE),
                   help=f"image store directory (default {DEFAULT_STORE})")
    p.add_argument("--registries", default=os.environ.get("K8PY_REGISTRIES", DEFAULT_REGISTRIES),
                   help=f"k3s-style registries.yaml with mirrors (default {DEFAULT_REGISTRIES})")
    sub = p.add_subparsers(dest="image_cmd", required=True)
    ls = sub.add_parser("ls", aliases=["list"], help="list images")
    ls.add_argument("-q", "--quiet", action="store_true", help="only image ids")
    ls.add_argument("--digests", action="store_true", help="show repo digests")
    pull = sub.add_parser("pull", help="pull an image")
    pull.add_argument("image")
    rm = sub.add_parser("rm", aliases=["rmi"], help="remove images")
    rm.add_argument("images", nargs="+")
    load = sub.add_parser("load", help="import a docker save or OCI archive (tar or directory)")
    load.add_argument("file")
    insp = sub.add_parser("inspect", help="print an image record as JSON")
    insp.add_argument("image")
    return p


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.3g}{unit}" if unit != "B" else f"{int(size)}B"
        size /= 1000
    return f"{n}B"


async def _run(args: argparse.Namespace) -> int:
    from k8py.runtime import reference
    from k8py.runtime.errors import RuntimeError_
    from k8py.runtime.images import ImageStore
    from k8py.runtime.mirrors import RegistriesConfig
    from k8py.runtime.registry import RegistryClient

    client = RegistryClient(RegistriesConfig.load(args.registries))
    store = ImageStore(args.store, client)
    try:
        cmd = args.image_cmd
        if cmd in ("ls", "list"):
            imgs = store.list()
            if args.quiet:
                for i in imgs:
                    print(i.id)
                return 0
            rows = [("IMAGE", "TAG", "DIGEST" if args.digests else "", "IMAGE ID", "SIZE")]
            for i in imgs:
                names = i.repo_tags or ["<none>:<none>"]
                for t in names:
                    if t == "<none>:<none>":
                        repo, tag = "<none>", "<none>"
                    else:
                        ref = reference.parse(t)
                        repo, tag = ref.name, ref.tag or "<none>"
                    dig = (i.repo_digests[0].split("@", 1)[1][:19] if i.repo_digests else "<none>") \
                        if args.digests else ""
                    rows.append((repo, tag, dig, i.id.split(":", 1)[1][:13], _human(i.size)))
            widths = [max(len(r[c]) for r in rows) for c in range(5)]
            for row in rows:
                print("   ".join(v.ljust(widths[c]) for c, v in enumerate(row) if widths[c]).rstrip())
            return 0
        if cmd == "pull":
            img = await store.pull(args.image)
            print(f"Image is up to date for {img.id}")
            return 0
        if cmd in ("rm", "rmi"):
            rc = 0
            for name in args.images:
                try:
                    img = store.remove(name)
                    print(f"Deleted: {name} ({img.id})")
                except RuntimeError_ as e:
                    print(f"k8py image rm: {name}: {e}", file=sys.stderr)
                    rc = 1
            return rc
        if cmd == "load":
            for loaded in await store.load_archive(args.file):
                for t in loaded.repo_tags or [loaded.id]:
                    print(f"Loaded image: {t}")
            return 0
        if cmd == "inspect":
            found = store.get(args.image, verified=False)  # as `ls` shows it, layers verified or not
            if found is None:
                print(f"k8py image inspect: {args.image}: not found", file=sys.stderr)
                return 1
            print(json.dumps(found.to_dict(), indent=2))
            return 0
        return 2
    except RuntimeError_ as e:
        print(f"k8py image {args.image_cmd}: {e.message}", file=sys.stderr)
        return 1
    finally:
        await client.close()


def run_image_command(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
