"""Pod sandboxes: a named network namespace plus the pod's hosts/hostname/resolv.conf.

A sandbox is a directory `<state>/sandboxes/<id>/` holding `sandbox.json` (the
PodSandboxConfig, netns name, IP, state, times) and the three files bind-mounted into
every container of the pod. The network namespace is `<prefix><pod-uid[:8]>-<id[:6]>`
(prefix `k8py-` by default) under /run/netns, created with `ip netns add` and with
loopback brought up; wiring beyond loopback is the PodNetwork seam's job.

The pod's containers also share IPC and UTS namespaces, kept alive as nsfs bind mounts
under `<dir>/ns/` (what a pause container does in containerd).

Invariants: a sandbox directory exists iff the sandbox exists; `stop` deletes the netns
(after PodNetwork.teardown) and is idempotent; `remove` also deletes the directory.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from k8py.host import proc
from k8py.runtime.errors import SandboxError, SandboxNotFound
from k8py.runtime.jsoncache import JsonFileCache
from k8py.runtime.protocol import DNSConfig, PodNetwork, PodSandboxConfig, PodSandboxStatus, SandboxState

NETNS_DIR = Path("/run/netns")


async def run(*args: str, check: bool = True) -> tuple[int, str]:
    rc, out, _ = await proc.run(*args, merge_stderr=True)
    text = out.decode(errors="replace").strip()
    if check and rc != 0:
        raise SandboxError(f"{' '.join(args)}: {text}")
    return rc, text


async def create_netns(name: str) -> str:
    """Add the named netns; its loopback is brought up by create_pod_namespaces."""
    await run("ip", "netns", "add", name)
    return str(NETNS_DIR / name)


async def delete_netns(name: str) -> None:
    if (NETNS_DIR / name).exists():
        await run("ip", "netns", "delete", name, check=False)


POD_NAMESPACES = ("ipc", "uts")  # shared by a pod's containers, as its pause container's are


async def create_pod_namespaces(d: Path, netns: str = "") -> dict[str, str]:
    """Persistent IPC and UTS namespaces (bind mounts of nsfs files) for a pod's containers;
    with `netns`, the same process also brings that namespace's loopback up (one process
    instead of two on the pod start path)."""
    d.mkdir(parents=True, exist_ok=True)
    paths = {kind: str(d / kind) for kind in POD_NAMESPACES}
    for p in paths.values():
        Path(p).touch()
    then = ["ip", "-n", netns, "link", "set", "lo", "up"] if netns else ["true"]
    try:
        await run("unshare", *(f"--{kind}={p}" for kind, p in paths.items()), *then)
    except SandboxError:
        release_pod_namespaces(d)
        raise
    return paths


def release_pod_namespaces(d: Path) -> None:
    for kind in POD_NAMESPACES:
        p = d / kind
        if os.path.ismount(p):
            subprocess.run(["umount", "-l", str(p)], capture_output=True)


def config_from_dict(d: dict[str, Any]) -> PodSandboxConfig:
    d = dict(d)
    if d.get("dns") is not None:
        d["dns"] = DNSConfig(**d["dns"])
    d["extra_hosts"] = [tuple(x) for x in d.get("extra_hosts", [])]
    return PodSandboxConfig(**d)


def resolv_conf(dns: DNSConfig | None) -> str:
    if dns is None:
        try:
            return Path("/etc/resolv.conf").read_text()
        except OSError:
            return ""
    lines = [f"nameserver {s}" for s in dns.servers]
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return "\n".join(lines) + "\n"


def hosts_file(hostname: str, ip: str, extra: list[tuple[str, str]]) -> str:
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if ip:
        lines.append(f"{ip}\t{hostname}")
    lines += [f"{a}\t{b}" for a, b in extra]
    return "\n".join(lines) + "\n"


class Sandboxes:
    """Sandbox records on disk and their network namespaces."""

    def __init__(self, state_dir: Path, network: PodNetwork, netns_prefix: str = "k8py-") -> None:
        self.dir = state_dir / "sandboxes"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.network = network
        self.netns_prefix = netns_prefix
        self._json = JsonFileCache()

    def path(self, sid: str) -> Path:
        return self.dir / sid

    def load(self, sid: str) -> dict[str, Any]:
        try:
            return json.loads((self.path(sid) / "sandbox.json").read_text())
        except (OSError, ValueError):
            raise SandboxNotFound(f"pod sandbox {sid} not found") from None

    def save(self, sid: str, rec: dict[str, Any]) -> None:
        p = self.path(sid) / "sandbox.json"
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec))
        os.replace(tmp, p)

    def ids(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir() if (p / "sandbox.json").exists())

    async def create(self, sid: str, config: PodSandboxConfig) -> dict[str, Any]:
        d = self.path(sid)
        d.mkdir(parents=True)
        hostname = (config.hostname or config.name)[:63]
        rec: dict[str, Any] = {"id": sid, "config": asdict(config), "netns": "", "netns_path": "", "ip": "",
                               "state": SandboxState.READY.value, "created_at": time.time(), "hostname": hostname}
        self.save(sid, rec)
        try:
            if not config.host_network:
                name = f"{self.netns_prefix}{config.uid.replace('-', '')[:8]}-{sid[:6]}"
                rec["netns"] = name
                self.save(sid, rec)
                rec["netns_path"] = await create_netns(name)
                self.save(sid, rec)
                # The pod's network and its IPC/UTS namespaces (+ loopback up) concurrently.
                # Both finish before a failure is raised, so the cleanup below sees no half-done step.
                addr, ns = await asyncio.gather(self.network.setup(rec["netns_path"], config),
                                                create_pod_namespaces(d / "ns", name), return_exceptions=True)
                for r in (addr, ns):
                    if isinstance(r, BaseException):
                        raise r
                rec["ip"], rec["ns"] = addr or "", ns
            else:
                hostname = os.uname().nodename
                rec["hostname"] = hostname
                rec["ns"] = await create_pod_namespaces(d / "ns")
            self.save(sid, rec)
            (d / "hostname").write_text(hostname + "\n")
            (d / "hosts").write_text(hosts_file(hostname, rec["ip"], config.extra_hosts))
            (d / "resolv.conf").write_text(resolv_conf(config.dns))
            self.save(sid, rec)
        except BaseException:
            await self.stop(sid)
            shutil.rmtree(d, ignore_errors=True)
            raise
        return rec

    async def stop(self, sid: str) -> None:
        rec = self.load(sid)
        if rec.get("netns"):
            config = config_from_dict(rec["config"])
            try:
                await self.network.teardown(rec["netns_path"] or str(NETNS_DIR / rec["netns"]), config)
            finally:
                await delete_netns(rec["netns"])
        release_pod_namespaces(self.path(sid) / "ns")
        rec["state"] = SandboxState.NOTREADY.value
        rec["ns"] = {}
        self.save(sid, rec)

    def remove(self, sid: str) -> None:
        release_pod_namespaces(self.path(sid) / "ns")
        shutil.rmtree(self.path(sid), ignore_errors=True)

    def status(self, sid: str) -> PodSandboxStatus:
        try:
            rec = self._json.read(self.path(sid) / "sandbox.json")  # read-only, see jsoncache.py
        except (OSError, ValueError):
            raise SandboxNotFound(f"pod sandbox {sid} not found") from None
        c = rec["config"]
        return PodSandboxStatus(id=sid, name=c["name"], namespace=c["namespace"], uid=c["uid"],
                                state=SandboxState(rec["state"]), created_at=rec["created_at"],
                                netns_path=rec["netns_path"], ip=rec["ip"], labels=dict(c.get("labels", {})),
                                annotations=dict(c.get("annotations", {})))
