"""Pod volumes on the node: `<root>/pods/<uid>/volumes/<plugin>/<name>`.

Plugins: emptyDir (a directory; medium Memory -> a tmpfs sized by sizeLimit),
hostPath (type checks and DirectoryOrCreate/FileOrCreate), configMap, secret,
downwardAPI and projected (files written by an atomic writer: payload in a
timestamped directory, `..data` symlink swapped with rename, each top-level name a
symlink through `..data`, as Kubernetes' AtomicWriter, so updates are seen whole),
persistentVolumeClaim (the bound PV's hostPath/local path; created if missing).
A projected serviceAccountToken source writes a token that the node's `TokenSource`
(`tokenmanager.TokenManager`: a TokenRequest bound to the pod) gives; the periodic
re-projection (`setup` again) writes the refreshed token when the manager renews it.

Invariants: `setup` is idempotent and re-projects changed configMap/secret data;
`teardown(uid)` unmounts every tmpfs and subPath bind under the pod dir before removing
it; nothing outside `<root>/pods/<uid>` is removed (hostPath and PV directories stay).
Nothing is written outside a volume (`safepath`: payload paths checked as Kubernetes'
atomic writer, files created beneath the volume's fd without following symlinks); API
data volumes are mounted read-only; a subPath resolves inside its volume or the container
fails with CreateContainerConfigError, and is pinned by a bind mount of its opened fd.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import Protocol

from k8py.api.quantity import to_int
from k8py.api.types import Obj
from k8py.api.wellknown import NAMESPACE_DEFAULT
from k8py.kubelet.envvars import Lookup, field_ref, resource_field
from k8py.kubelet.errors import ContainerConfigError, VolumeError
from k8py.kubelet.safepath import DIR_FLAGS, bind_subpath, check_path, lstat_at, open_subpath, read_tree, write_file
from k8py.runtime.protocol import Mount

DATA = "..data"


class TokenSource(Protocol):
    """Service-account tokens for pods' projected volumes (`tokenmanager.TokenManager`)."""

    async def token(self, pod: Obj, source: Obj) -> bytes:
        """The token for the pod's serviceAccountToken projection `source`; raises VolumeError."""
        ...

    def forget(self, pod_uid: str) -> None:
        """Drop what is kept for the pod's tokens."""
        ...


def _mounted(path: Path) -> bool:
    p = str(path)
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == p for line in f)
    except OSError:
        return False


def _mount_tmpfs(path: Path, size: int) -> None:
    opts = "mode=0777" + (f",size={size}" if size else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "k8py-tmpfs", str(path)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise VolumeError(f"mount tmpfs on {path}: {r.stderr.strip()}")


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def write_atomic(target: Path, payload: dict[str, tuple[bytes, int]]) -> bool:
    """Project `payload` (relative path -> (content, mode)) into target; True if it changed.

    Every path is checked as Kubernetes' atomic writer does and every file is created beneath
    an fd of `target` without following a symlink, so nothing is written outside the volume."""
    clean = {check_path(rel): v for rel, v in payload.items()}
    target.mkdir(parents=True, exist_ok=True)
    try:
        tfd = os.open(target, DIR_FLAGS)
    except OSError as e:
        raise VolumeError(f"open volume directory {target}: {e.strerror}") from e
    try:
        return _write_atomic_at(tfd, clean)
    except OSError as e:
        raise VolumeError(f"write volume {target}: {e.strerror}: {e.filename}") from e
    finally:
        os.close(tfd)


def _current(tfd: int) -> str | None:
    """The timestamped directory `..data` names, if it is one of ours (a plain `..` name)."""
    try:
        cur = os.readlink(DATA, dir_fd=tfd)
    except OSError:
        return None
    return cur if cur.startswith("..") and "/" not in cur and cur not in ("..", DATA) else None


def _same(tfd: int, cur: str, payload: dict[str, tuple[bytes, int]]) -> bool:
    try:
        cfd = os.open(cur, DIR_FLAGS, dir_fd=tfd)
    except OSError:
        return False
    try:
        return read_tree(cfd) == payload
    finally:
        os.close(cfd)


def _write_atomic_at(tfd: int, payload: dict[str, tuple[bytes, int]]) -> bool:
    cur = _current(tfd)
    if cur is not None and _same(tfd, cur, payload):
        return False
    ts = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns() % 10**9}"
    os.mkdir(ts, 0o755, dir_fd=tfd)
    tsfd = os.open(ts, DIR_FLAGS, dir_fd=tfd)
    try:
        for rel in sorted(payload):
            content, mode = payload[rel]
            write_file(tsfd, rel, content, mode)
    finally:
        os.close(tsfd)
    if lstat_at(tfd, "..data_tmp") is not None:
        os.unlink("..data_tmp", dir_fd=tfd)
    os.symlink(ts, "..data_tmp", dir_fd=tfd)
    os.rename("..data_tmp", DATA, src_dir_fd=tfd, dst_dir_fd=tfd)
    tops = {rel.split("/", 1)[0] for rel in payload}
    for top in tops:
        st = lstat_at(tfd, top)
        if st is not None and stat.S_ISLNK(st.st_mode):
            continue
        if st is not None and stat.S_ISDIR(st.st_mode):
            shutil.rmtree(top, dir_fd=tfd)
        elif st is not None:
            os.unlink(top, dir_fd=tfd)
        os.symlink(f"{DATA}/{top}", top, dir_fd=tfd)
    for name in os.listdir(tfd):  # names no longer in the payload
        st = lstat_at(tfd, name)
        if not name.startswith("..") and name not in tops and st is not None and stat.S_ISLNK(st.st_mode):
            os.unlink(name, dir_fd=tfd)
    if cur is not None and cur != ts:
        shutil.rmtree(cur, dir_fd=tfd, ignore_errors=True)
    return True


def _items(data: dict[str, bytes], items: list[Obj] | None, default_mode: int, what: str,
           optional: bool) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out = {}
    for it in items:
        key = it.get("key", "")
        if key not in data:
            if optional:
                continue
            raise VolumeError(f"configmap references non-existent config key: {key}" if what == "configmap"
                              else f"references non-existent secret key: {key}")
        out[it.get("path") or key] = (data[key], int(it["mode"]) if it.get("mode") is not None else default_mode)
    return out


def _obj_data(obj: Obj, kind: str) -> dict[str, bytes]:
    if kind == "secrets":
        out = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        out.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        return out
    out = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


class VolumeManager:
    def __init__(self, root: str | Path, lookup: Lookup, *, tokens: TokenSource | None = None,
                 storage_base: str = "/var/lib/k8py/storage") -> None:
        self.root = Path(root)
        self.pods_dir = self.root / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.lookup = lookup
        self.tokens = tokens
        self.storage_base = storage_base
        self.api_data: set[str] = set()  # configMap/secret/downwardAPI/projected dirs: mounted read-only

    def pod_dir(self, uid: str) -> Path:
        return self.pods_dir / uid

    def known_uids(self) -> list[str]:
        return [p.name for p in self.pods_dir.iterdir() if p.is_dir()]

    async def _source(self, kind: str, ns: str, src: Obj, default_mode: int, pod: Obj,
                      ) -> dict[str, tuple[bytes, int]] | None:
        name = src.get("name") or src.get("secretName") or ""
        optional = bool(src.get("optional"))
        obj = await self.lookup(kind, ns, name)
        what = "secret" if kind == "secrets" else "configmap"
        if obj is None:
            if optional:
                return {}
            raise VolumeError(f'{what} "{name}" not found')
        mode = int(src["defaultMode"]) if src.get("defaultMode") is not None else default_mode
        return _items(_obj_data(obj, kind), src.get("items"), mode, what, optional)

    def _downward(self, pod: Obj, items: list[Obj], mode: int) -> dict[str, tuple[bytes, int]]:
        out = {}
        status = pod.get("status") or {}
        for it in items:
            m = int(it["mode"]) if it.get("mode") is not None else mode
            if it.get("fieldRef"):
                v = field_ref(pod, it["fieldRef"].get("fieldPath", ""), status.get("podIP", ""),
                              status.get("hostIP", ""))
            elif it.get("resourceFieldRef"):
                ref = it["resourceFieldRef"]
                c: Obj = next((c for c in (pod.get("spec") or {}).get("containers") or []
                               if c.get("name") == ref.get("containerName")), {})
                v = resource_field(c, ref)
            else:
                continue
            out[it.get("path", "")] = (v.encode(), m)
        return out

    async def _projected(self, pod: Obj, vol: Obj) -> dict[str, tuple[bytes, int]]:
        ns = pod["metadata"].get("namespace") or NAMESPACE_DEFAULT
        mode = int(vol["defaultMode"]) if vol.get("defaultMode") is not None else 0o644
        out: dict[str, tuple[bytes, int]] = {}
        for src in vol.get("sources") or []:
            if src.get("configMap"):
                out.update(await self._source("configmaps", ns, src["configMap"], mode, pod) or {})
            elif src.get("secret"):
                out.update(await self._source("secrets", ns, src["secret"], mode, pod) or {})
            elif src.get("downwardAPI"):
                out.update(self._downward(pod, src["downwardAPI"].get("items") or [], mode))
            elif src.get("serviceAccountToken"):
                sat = src["serviceAccountToken"]
                if self.tokens is None:
                    raise VolumeError("no service-account token source on this node")
                out[sat.get("path", "token")] = (await self.tokens.token(pod, sat), mode)
            elif src.get("clusterTrustBundle"):
                continue
        return out

    async def setup(self, pod: Obj) -> dict[str, str]:
        """Make every volume of the pod; returns volume name -> host path."""
        uid = str(pod["metadata"]["uid"])
        ns = pod["metadata"].get("namespace") or NAMESPACE_DEFAULT
        base = self.pod_dir(uid) / "volumes"
        out: dict[str, str] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            name = vol.get("name", "")
            if "emptyDir" in vol:
                ed = vol.get("emptyDir") or {}
                p = base / "kubernetes.io~empty-dir" / name
                p.mkdir(parents=True, exist_ok=True)
                os.chmod(p, 0o777)
                if ed.get("medium") == "Memory" and not _mounted(p):
                    size = to_int(ed["sizeLimit"]) if ed.get("sizeLimit") else 0
                    await asyncio.to_thread(_mount_tmpfs, p, size)
                out[name] = str(p)
            elif "hostPath" in vol:
                hp = vol["hostPath"] or {}
                p = Path(hp.get("path", ""))
                t = hp.get("type") or ""
                if t == "DirectoryOrCreate":
                    p.mkdir(parents=True, exist_ok=True)
                elif t == "FileOrCreate":
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.touch(exist_ok=True)
                elif t == "Directory" and not p.is_dir():
                    raise VolumeError(f"hostPath type check failed: {p} is not a directory")
                elif t == "File" and not p.is_file():
                    raise VolumeError(f"hostPath type check failed: {p} is not a file")
                elif t == "Socket" and not p.is_socket():
                    raise VolumeError(f"hostPath type check failed: {p} is not a socket file")
                out[name] = str(p)
            elif "configMap" in vol or "secret" in vol:
                kind, key, plugin = (("configmaps", "configMap", "configmap") if "configMap" in vol
                                     else ("secrets", "secret", "secret"))
                src = vol.get(key) or {}
                payload = await self._source(kind, ns, src, 0o644, pod)
                p = base / f"kubernetes.io~{plugin}" / name
                await asyncio.to_thread(write_atomic, p, payload or {})
                out[name] = str(p)
                self.api_data.add(str(p))
            elif "downwardAPI" in vol:
                dv = vol.get("downwardAPI") or {}
                mode = int(dv["defaultMode"]) if dv.get("defaultMode") is not None else 0o644
                p = base / "kubernetes.io~downward-api" / name
                await asyncio.to_thread(write_atomic, p, self._downward(pod, dv.get("items") or [], mode))
                out[name] = str(p)
                self.api_data.add(str(p))
            elif "projected" in vol:
                payload = await self._projected(pod, vol.get("projected") or {})
                p = base / "kubernetes.io~projected" / name
                await asyncio.to_thread(write_atomic, p, payload)
                out[name] = str(p)
                self.api_data.add(str(p))
            elif "persistentVolumeClaim" in vol:
                out[name] = await self._pvc(ns, vol["persistentVolumeClaim"] or {})
            else:
                raise VolumeError(f"volume {name!r}: unsupported volume type")
        return out

    async def _pvc(self, ns: str, src: Obj) -> str:
        claim = src.get("claimName", "")
        pvc = await self.lookup("persistentvolumeclaims", ns, claim)
        if pvc is None:
            raise VolumeError(f'persistentvolumeclaim "{claim}" not found')
        pv_name = (pvc.get("spec") or {}).get("volumeName")
        if not pv_name:  # pre-bound claims (spec.volumeName) count as bound
            raise VolumeError(f'persistentvolumeclaim "{claim}" is not bound')
        pv = await self.lookup("persistentvolumes", "", pv_name)
        if pv is None:
            raise VolumeError(f'persistentvolume "{pv_name}" not found')
        spec = pv.get("spec") or {}
        path = (spec.get("hostPath") or {}).get("path") or (spec.get("local") or {}).get("path")
        if not path:
            raise VolumeError(f'persistentvolume "{pv_name}": only hostPath and local volumes are supported')
        p = Path(path)
        if not p.exists():
            p.mkdir(parents=True, exist_ok=True)
            os.chmod(p, 0o777)
        return str(p)

    def mounts(self, container: Obj, paths: dict[str, str], pod_uid: str = "") -> list[Mount]:
        """The container's mounts; a subPath is resolved inside its volume and, given the pod's uid,
        pinned by a bind mount under `<pod dir>/volume-subpaths/<volume>/<container>/<index>`."""
        out = []
        for i, vm in enumerate(container.get("volumeMounts") or []):
            host = paths.get(vm.get("name", ""))
            if host is None:
                raise VolumeError(f"volume {vm.get('name')!r} not found in the pod's volumes")
            # API data volumes are always mounted read-only, as Kubernetes does (CVE-2017-1002102)
            ro = bool(vm.get("readOnly")) or host in self.api_data
            sub = vm.get("subPath") or ""
            if sub:  # resolved inside the volume, never through a symlink out of it (CVE-2017-1002101)
                host = self._subpath(host, sub, vm.get("name", ""), container.get("name", ""), pod_uid, i)
            out.append(Mount(vm.get("mountPath", ""), host, ro))
        return out

    def _subpath(self, volume: str, sub: str, vol_name: str, container: str, pod_uid: str, index: int) -> str:
        fd, full = open_subpath(volume, sub, vol_name, container)
        try:
            if not pod_uid:
                return full
            target = self.pod_dir(pod_uid) / "volume-subpaths" / vol_name / container / str(index)
            try:
                bind_subpath(fd, target)
            except OSError as e:
                raise ContainerConfigError(f'failed to prepare subPath for volumeMount "{vol_name}" of '
                                           f'container "{container}"') from e
            return str(target)
        finally:
            os.close(fd)

    def usage_bytes(self, uid: str) -> int:
        """Bytes used by the pod's emptyDirs (for ephemeral-storage limits)."""
        total = 0
        d = self.pod_dir(uid) / "volumes" / "kubernetes.io~empty-dir"
        if d.exists():
            total += dir_size(d)
        return total

    def teardown(self, uid: str) -> None:
        if self.tokens is not None:
            self.tokens.forget(uid)
        d = self.pod_dir(uid)
        if not d.exists():
            return
        try:
            with open("/proc/self/mountinfo") as f:
                mps = [line.split()[4] for line in f]
        except OSError:
            mps = []
        for mp in sorted((m for m in mps if m.startswith(str(d) + "/")), key=len, reverse=True):
            _unmount(Path(mp))
        if any(_mounted(Path(m)) for m in mps if m.startswith(str(d) + "/")):
            return  # never remove through a mount (a subPath of a hostPath): the next teardown retries
        shutil.rmtree(d, ignore_errors=True)
        self.api_data = {p for p in self.api_data if not p.startswith(str(d) + "/")}


def dir_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total
