"""Local image store: blobs by digest, unpacked layers, image records and tags.

Layout under `root` (default /var/lib/k8py/images):
    blobs/sha256/<hex>          content store shared by every image (manifests, configs, layers)
    layers/<diffid-hex>/        one unpacked layer in overlayfs form (see unpack.py)
    verified/<diffid-hex>       marker: that layer directory was unpacked here and matched its diff_id
    images/<config-hex>.json    an image record (Image.to_dict)
    refs.json                   {"docker.io/library/nginx:latest": "sha256:<config>"}

Invariants: an image record exists only once all its layers are unpacked and their
diff_ids matched the config; the image id is the config digest (as containerd/CRI);
records and refs are written atomically under an flock (several processes may share a
root); layers are removed only when no remaining image uses them.

Safety (a crafted image or archive must not reach outside the store): every digest and
diff_id is checked against `sha256:[0-9a-f]{64}` before it names a path (blob_path,
layer_path, records, refs read back from disk, manifests and configs of pulls and
archives), and a bad one is refused before anything is written. A layer directory is used
(get() reports an image present, layer_dirs() names it) only once its `verified/` marker
exists, written atomically after its content matched the diff_id; an unverified directory
found on disk is moved aside and unpacked again. Archive members are confined to the
load directory (tarfile's "data" filter, and every path manifest.json names is resolved
inside it).
"""
from __future__ import annotations

import asyncio
import builtins
import fcntl
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from k8py.runtime import reference
from k8py.runtime.errors import ImageNotFound, ImagePullError, RuntimeError_
from k8py.runtime.mirrors import Credentials
from k8py.runtime.registry import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    InvalidDigest,
    RegistryClient,
    ResolvedManifest,
    check_digest,
    pick_platform,
    sha256_digest,
)
from k8py.runtime.unpack import unpack_layer

PARALLEL_DOWNLOADS = 3  # as containerd's max_concurrent_downloads


@dataclass
class Image:
    id: str  # config digest
    repo_tags: list[str]
    repo_digests: list[str]
    manifest_digest: str
    layers: list[str]  # layer blob digests, bottom first
    diff_ids: list[str]
    config: dict[str, Any] = field(default_factory=dict)  # the config's "config" section
    size: int = 0  # compressed bytes of the layers
    created: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Image:
        """An image record read back from disk: its digests are checked (InvalidDigest) before use."""
        img = cls(**d)
        check_digest(img.id, "image id")
        check_digest(img.manifest_digest, "manifest digest")
        for x in img.layers:
            check_digest(x, "layer digest")
        for x in img.diff_ids:
            check_digest(x, "diff_id")
        return img


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class ImageStore:
    def __init__(self, root: str | Path = "/var/lib/k8py/images", client: RegistryClient | None = None) -> None:
        self.root = Path(root)
        self.client = client or RegistryClient()
        for d in ("blobs/sha256", "layers", "images", "verified"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------ paths and locks

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / check_digest(digest, "blob digest")[7:]

    def layer_path(self, diff_id: str) -> Path:
        return self.root / "layers" / check_digest(diff_id, "diff_id")[7:]

    def _verified_path(self, diff_id: str) -> Path:
        return self.root / "verified" / check_digest(diff_id, "diff_id")[7:]

    def is_verified(self, diff_id: str) -> bool:
        """The layer's directory was unpacked by this store and matched `diff_id`."""
        return self._verified_path(diff_id).is_file() and self.layer_path(diff_id).is_dir() and \
            not self.layer_path(diff_id).is_symlink()

    @contextmanager
    def _flock(self, name: str = "store") -> Iterator[None]:
        with open(self.root / f".{name}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _refs(self) -> dict[str, str]:
        p = self.root / "refs.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def _write_refs(self, refs: dict[str, str]) -> None:
        _atomic_write(self.root / "refs.json", json.dumps(refs, indent=1, sort_keys=True).encode())

    def _record_path(self, image_id: str) -> Path:
        return self.root / "images" / (check_digest(image_id, "image id")[7:] + ".json")

    def _read_record(self, image_id: str) -> Image | None:
        """The record of `image_id`, or None (missing, malformed, or a bad digest anywhere in it)."""
        try:
            p = self._record_path(image_id)
            return Image.from_dict(json.loads(p.read_text())) if p.exists() else None
        except (OSError, ValueError, TypeError):
            return None

    # ------------------------------------------------------------ queries

    def list(self) -> builtins.list[Image]:
        out = []
        for p in sorted((self.root / "images").glob("*.json")):
            try:
                out.append(Image.from_dict(json.loads(p.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return out

    def get(self, image: str, verified: bool = True) -> Image | None:
        """Find by reference (normalized), image id, id prefix or repo digest. With `verified`
        (what the runtime asks before using an image), an image some layer of which is not
        verified is not present: the kubelet pulls it again, which unpacks and verifies it."""
        img = self._find(image)
        if img is not None and verified and not all(self.is_verified(d) for d in img.diff_ids):
            return None
        return img

    def _find(self, image: str) -> Image | None:
        refs = self._refs()
        candidates: list[str] = []
        try:
            r = reference.parse(image)
            by_ref = refs.get(str(r), "")
            if by_ref and (found := self._read_record(by_ref)):  # the common case: no scan of every record
                return found
            if r.digest:
                candidates += [i.id for i in self.list() if any(d.endswith("@" + r.digest) for d in i.repo_digests)]
        except RuntimeError_:
            pass
        ident = image if image.startswith("sha256:") else "sha256:" + image
        if len(ident) >= 7 + 6:
            candidates += [i.id for i in self.list() if i.id.startswith(ident)]
        for c in candidates:
            if found := self._read_record(c):
                return found
        return None

    def require(self, image: str) -> Image:
        img = self.get(image, verified=False)
        if img is None:
            raise ImageNotFound(f'image "{image}" not present locally')
        return img

    def layer_dirs(self, img: Image) -> builtins.list[Path]:
        """Unpacked layer directories, bottom first (reverse for overlay lowerdir)."""
        return [self.layer_path(d) for d in img.diff_ids]

    # ------------------------------------------------------------ pull

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def pull(self, image: str, credentials: Credentials | None = None) -> Image:
        """Pull (or refresh) `image`; returns the stored record. `credentials` (a pod's
        imagePullSecrets) override those of registries.yaml. Raises ImageRefError for an
        unparsable reference, else ImagePullError for every failure (disk ones included)."""
        ref = reference.parse(image)
        try:
            return await self._pull(ref, credentials)
        except (OSError, ValueError, KeyError) as e:
            raise ImagePullError(image, str(e)) from e

    async def _fetch_config(self, resolved: ResolvedManifest) -> dict[str, Any]:
        """The image config, stored under its digest only once its diff_ids are well-formed."""
        m = resolved.manifest
        cdigest = m["config"]["digest"]
        cpath = self.blob_path(cdigest)
        if cpath.exists():
            config = json.loads(cpath.read_bytes())
            _check_image(m, config)
            return config
        tmp = cpath.with_name(f".{cpath.name}.{os.getpid()}.{id(resolved)}.config")
        try:
            await self.client.fetch_blob(resolved, cdigest, tmp, m["config"].get("size"))
            config = json.loads(tmp.read_bytes())
            _check_image(m, config)
            os.replace(tmp, cpath)
        finally:
            tmp.unlink(missing_ok=True)
        return config

    async def _pull(self, ref: reference.ImageRef, credentials: Credentials | None) -> Image:
        async with self._lock(str(ref)):
            resolved = await self.client.resolve(ref, credentials)
            m = resolved.manifest
            try:
                _check_manifest(m)
                config = await self._fetch_config(resolved)
            except (InvalidDigest, TypeError) as e:
                raise ImagePullError(str(ref), f"manifest {resolved.digest}: {e}", "bad manifest") from None
            sem = asyncio.Semaphore(PARALLEL_DOWNLOADS)

            async def fetch(layer: dict[str, Any]) -> None:
                lp = self.blob_path(layer["digest"])
                async with sem, self._lock(layer["digest"]):
                    if not lp.exists():
                        await self.client.fetch_blob(resolved, layer["digest"], lp, layer.get("size"))

            await asyncio.gather(*(fetch(layer) for layer in m.get("layers", [])))
            mpath = self.blob_path(resolved.digest)
            if not mpath.exists():
                _atomic_write(mpath, resolved.body)
            try:
                img = await self._commit(resolved.manifest, config, resolved.digest, [str(ref)],
                                         [resolved.repo_digest])
            except ValueError as e:
                raise ImagePullError(str(ref), str(e), "bad layer") from e
            return img

    async def _commit(self, manifest: dict[str, Any], config: dict[str, Any], manifest_digest: str,
                      tags: builtins.list[str], repo_digests: builtins.list[str]) -> Image:
        layers, diff_ids = _check_image(manifest, config)
        check_digest(manifest_digest, "manifest digest")

        async def unpack(blob_digest: str, diff_id: str) -> None:
            async with self._lock("layer:" + diff_id):
                await asyncio.to_thread(self._ensure_layer, blob_digest, diff_id)

        await asyncio.gather(*(unpack(b, d) for b, d in zip(layers, diff_ids)))  # layers are independent dirs
        cfg_bytes = self.blob_path(manifest["config"]["digest"]).read_bytes()
        image_id = sha256_digest(cfg_bytes)
        size = sum(int(layer.get("size", 0)) for layer in manifest.get("layers", []))
        with self._flock():
            old = self._read_record(image_id)
            img = Image(
                id=image_id,
                repo_tags=sorted(set((old.repo_tags if old else []) + tags)),
                repo_digests=sorted(set((old.repo_digests if old else []) + repo_digests)),
                manifest_digest=manifest_digest, layers=layers, diff_ids=diff_ids,
                config=config.get("config") or {}, size=size, created=time.time(),
            )
            refs = self._refs()
            for t in tags:
                prev = refs.get(t)
                if prev and prev != image_id:  # the tag moved: untag the old image
                    self._untag(prev, t)
                refs[t] = image_id
            _atomic_write(self._record_path(image_id), json.dumps(img.to_dict(), indent=1).encode())
            self._write_refs(refs)
        return img

    def _untag(self, image_id: str, tag: str) -> None:
        p = self._record_path(image_id)
        if p.exists():
            d = json.loads(p.read_text())
            d["repo_tags"] = [t for t in d["repo_tags"] if t != tag]
            _atomic_write(p, json.dumps(d, indent=1).encode())

    def _ensure_layer(self, blob_digest: str, diff_id: str) -> None:
        """Unpack the layer unless its directory is recorded as verified; the marker is written
        (atomically) only after the content matched `diff_id`."""
        dest = self.layer_path(diff_id)
        marker = self._verified_path(diff_id)
        with self._flock("layer-" + diff_id[7:23]):
            if self.is_verified(diff_id):
                return
            marker.unlink(missing_ok=True)
            self._discard(dest)
            unpack_layer(self.blob_path(blob_digest), dest, diff_id)
            _atomic_write(marker, json.dumps({"diff_id": diff_id, "blob": blob_digest,
                                              "verified_at": time.time()}).encode())

    def _discard(self, dest: Path) -> None:
        """Remove whatever is at a layer's path (a planted directory, file or symlink) without
        following a symlink: it is first renamed aside, so the path is free at once."""
        if not os.path.lexists(dest):
            return
        aside = dest.with_name(f".discard-{dest.name[:16]}-{os.getpid()}-{time.monotonic_ns()}")
        os.rename(dest, aside)
        if aside.is_symlink() or not aside.is_dir():
            aside.unlink()
        else:
            shutil.rmtree(aside)

    # ------------------------------------------------------------ remove

    def remove(self, image: str, in_use: Callable[[str], bool] = lambda _id: False) -> Image:
        """Remove an image (all its tags); blobs and layers no other image uses go too.

        Removing by tag when the image has other tags only untags it (as `crictl rmi`
        does for a tag). Raises ImageNotFound, or RuntimeError_ if a container uses it.
        """
        img = self.require(image)
        with self._flock():
            refs = self._refs()
            try:
                named = str(reference.parse(image))
            except RuntimeError_:
                named = ""
            if named in img.repo_tags and len(img.repo_tags) > 1:
                refs.pop(named, None)
                self._untag(img.id, named)
                self._write_refs(refs)
                return img
            if in_use(img.id):
                raise RuntimeError_(f"image {img.id} is in use by a container")
            for t in list(refs):
                if refs[t] == img.id:
                    del refs[t]
            self._write_refs(refs)
            self._record_path(img.id).unlink(missing_ok=True)
            keep_blobs: set[str] = set()
            keep_layers: set[str] = set()
            for other in self.list():
                keep_blobs.update(other.layers + [other.id, other.manifest_digest])
                keep_layers.update(other.diff_ids)
            for d in img.layers + [img.id, img.manifest_digest]:
                if d not in keep_blobs:
                    self.blob_path(d).unlink(missing_ok=True)
            for d in img.diff_ids:
                if d not in keep_layers:
                    self._verified_path(d).unlink(missing_ok=True)
                    shutil.rmtree(self.layer_path(d), ignore_errors=True)
        return img

    # ------------------------------------------------------------ load archives

    async def load_archive(self, path: str | Path) -> builtins.list[Image]:
        """Import a `docker save` tarball or an OCI image-layout archive (tar or directory).

        Raises RuntimeError_ for every refusal: a member or a manifest path outside the
        archive, a malformed digest or diff_id, a corrupt blob, an unsafe layer."""
        p = Path(path)
        try:
            if p.is_dir():
                return await self._load_dir(p)
            with tempfile.TemporaryDirectory(dir=self.root, prefix=".load-") as tmp:
                await asyncio.to_thread(self._extract, p, Path(tmp))
                return await self._load_dir(Path(tmp))
        except RuntimeError_:
            raise
        except (ValueError, KeyError, TypeError, OSError, tarfile.TarError) as e:
            raise RuntimeError_(f"cannot load {p}: {e}") from e

    @staticmethod
    def _extract(archive: Path, dest: Path) -> None:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter=_archive_filter)

    def _import_blob(self, src: Path, digest: str) -> None:
        """Copy an archive's blob into the store once its content matched `digest`."""
        got = sha256_digest(src.read_bytes()) if src.stat().st_size < (64 << 20) else _file_digest(src)
        if got != digest:
            raise RuntimeError_(f"archive blob {digest} is corrupt")
        dst = self.blob_path(digest)
        if not dst.exists():
            tmp = dst.with_name(f".{dst.name}.{os.getpid()}.import")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)

    async def _load_dir(self, d: Path) -> builtins.list[Image]:
        if (d / "index.json").exists() and (d / "oci-layout").exists():
            return await self._load_oci(d)
        if (d / "manifest.json").exists():
            return await self._load_docker(d)
        raise RuntimeError_(f"{d}: neither an OCI image layout nor a docker save archive")

    async def _load_oci(self, d: Path) -> builtins.list[Image]:
        out: list[Image] = []
        index = json.loads(_inside(d, "index.json").read_text())
        for desc in index.get("manifests", []):
            mdigest = check_digest(desc["digest"], "manifest digest")
            mbytes = _archive_blob(d, mdigest)
            mdoc = json.loads(mbytes)
            if "manifests" in mdoc:  # nested index: pick our platform
                entry = pick_platform(mdoc, self.client.platform)
                if entry is None:
                    continue
                mdigest = check_digest(entry["digest"], "manifest digest")
                mbytes = _archive_blob(d, mdigest)
                mdoc = json.loads(mbytes)
            _check_manifest(mdoc)
            config = json.loads(_archive_blob(d, mdoc["config"]["digest"]))
            _check_image(mdoc, config)  # every digest well-formed before anything is written
            name = (desc.get("annotations") or {}).get("io.containerd.image.name") or \
                (desc.get("annotations") or {}).get("org.opencontainers.image.ref.name", "")
            tags = [str(reference.parse(name))] if name and ("/" in name or ":" in name) else []
            for bd in [mdoc["config"]["digest"]] + [layer["digest"] for layer in mdoc.get("layers", [])]:
                await asyncio.to_thread(self._import_blob, _inside(d, "blobs/sha256/" + bd[7:]), bd)
            _atomic_write(self.blob_path(mdigest), mbytes)
            out.append(await self._commit(mdoc, config, mdigest, tags, []))
        return out

    async def _load_docker(self, d: Path) -> builtins.list[Image]:
        out: list[Image] = []
        entries = json.loads(_inside(d, "manifest.json").read_text())
        if not isinstance(entries, list):
            raise RuntimeError_("docker save manifest.json is not a list")
        for entry in entries:
            cpath = _inside(d, entry["Config"], "Config")
            cbytes = cpath.read_bytes()
            cdigest = sha256_digest(cbytes)
            lpaths = [_inside(d, lp, "Layers entry") for lp in entry["Layers"]]
            layers: list[dict[str, Any]] = [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                 "digest": await asyncio.to_thread(_file_digest, lp), "size": lp.stat().st_size} for lp in lpaths]
            mdoc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                    "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                               "digest": cdigest, "size": len(cbytes)}, "layers": layers}
            config = json.loads(cbytes)
            _check_image(mdoc, config)  # every digest well-formed before anything is written
            tags = [str(reference.parse(t)) for t in entry.get("RepoTags") or []]
            await asyncio.to_thread(self._import_blob, cpath, cdigest)
            for lp, desc in zip(lpaths, layers):
                await asyncio.to_thread(self._import_blob, lp, desc["digest"])
            mbytes = json.dumps(mdoc).encode()
            mdigest = sha256_digest(mbytes)
            _atomic_write(self.blob_path(mdigest), mbytes)
            out.append(await self._commit(mdoc, config, mdigest, tags, []))
        return out


def _archive_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's "data" filter (refuses `..`, links out of `dest`, device files), refusing
    absolute names too instead of stripping their leading slash."""
    if member.name.startswith("/"):
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, dest)


def _inside(d: Path, rel: object, what: str = "path") -> Path:
    """`rel`, a path an archive names, resolved (symlinks included) inside the archive's directory `d`."""
    if not isinstance(rel, str) or not rel or rel.startswith("/") or ".." in rel.split("/"):
        raise RuntimeError_(f"archive {what} {rel!r} names a path outside the archive")
    base = os.path.realpath(d)
    real = os.path.realpath(os.path.join(base, rel))
    if os.path.commonpath([base, real]) != base:
        raise RuntimeError_(f"archive {what} {rel!r} resolves outside the archive")
    return Path(real)


def _archive_blob(d: Path, digest: str) -> bytes:
    """The content of an OCI layout's blob once the digest is well-formed and matched."""
    data = _inside(d, "blobs/sha256/" + check_digest(digest, "blob digest")[7:]).read_bytes()
    if sha256_digest(data) != digest:
        raise RuntimeError_(f"archive blob {digest} is corrupt")
    return data


def _check_manifest(manifest: dict[str, Any]) -> None:
    """The digests a manifest names (config and layers) are well-formed (InvalidDigest)."""
    check_digest(manifest["config"]["digest"], "config digest")
    for layer in manifest.get("layers") or []:
        check_digest(layer["digest"], "layer digest")


def _check_image(manifest: dict[str, Any], config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(layer digests, diff_ids) of an image once every one is well-formed and they pair up."""
    _check_manifest(manifest)
    layers = [layer["digest"] for layer in manifest.get("layers") or []]
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if not isinstance(diff_ids, list):
        raise InvalidDigest(diff_ids, "rootfs.diff_ids")
    for d in diff_ids:
        check_digest(d, "diff_id")
    if len(diff_ids) != len(layers):
        raise ValueError(f"image config has {len(diff_ids)} diff_ids for {len(layers)} layers")
    return layers, list(diff_ids)


def _file_digest(p: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


__all__ = ["Image", "ImageStore", "OCI_INDEX", "OCI_MANIFEST", "ResolvedManifest"]
