"""Local image store: blobs by digest, unpacked layers, image records and tags.

Layout under `root` (default /var/lib/k8py/images):
    blobs/sha256/<hex>          content store shared by every image (manifests, configs, layers)
    layers/<diffid-hex>/        one unpacked layer in overlayfs form (see unpack.py)
    images/<config-hex>.json    an image record (Image.to_dict)
    refs.json                   {"docker.io/library/nginx:latest": "sha256:<config>"}

Invariants: an image record exists only once all its layers are unpacked and their
diff_ids matched the config; the image id is the config digest (as containerd/CRI);
records and refs are written atomically under an flock (several processes may share a
root); layers are removed only when no remaining image uses them.
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
    RegistryClient,
    ResolvedManifest,
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
        return cls(**d)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class ImageStore:
    def __init__(self, root: str | Path = "/var/lib/k8py/images", client: RegistryClient | None = None) -> None:
        self.root = Path(root)
        self.client = client or RegistryClient()
        for d in ("blobs/sha256", "layers", "images"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------ paths and locks

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.split(":", 1)[1]

    def layer_path(self, diff_id: str) -> Path:
        return self.root / "layers" / diff_id.split(":", 1)[1]

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
        return self.root / "images" / (image_id.split(":", 1)[1] + ".json")

    # ------------------------------------------------------------ queries

    def list(self) -> builtins.list[Image]:
        out = []
        for p in sorted((self.root / "images").glob("*.json")):
            try:
                out.append(Image.from_dict(json.loads(p.read_text())))
            except (OSError, ValueError):
                continue
        return out

    def get(self, image: str) -> Image | None:
        """Find by reference (normalized), image id, id prefix or repo digest."""
        refs = self._refs()
        candidates: list[str] = []
        try:
            r = reference.parse(image)
            by_ref = refs.get(str(r), "")
            if by_ref and self._record_path(by_ref).exists():  # the common case: no scan of every record
                return Image.from_dict(json.loads(self._record_path(by_ref).read_text()))
            candidates.append(by_ref)
            if r.digest:
                candidates += [i.id for i in self.list() if any(d.endswith("@" + r.digest) for d in i.repo_digests)]
        except RuntimeError_:
            pass
        ident = image if image.startswith("sha256:") else "sha256:" + image
        if len(ident) >= 7 + 6:
            candidates += [i.id for i in self.list() if i.id.startswith(ident)]
        for c in candidates:
            if c and self._record_path(c).exists():
                return Image.from_dict(json.loads(self._record_path(c).read_text()))
        return None

    def require(self, image: str) -> Image:
        img = self.get(image)
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

    async def _pull(self, ref: reference.ImageRef, credentials: Credentials | None) -> Image:
        async with self._lock(str(ref)):
            resolved = await self.client.resolve(ref, credentials)
            m = resolved.manifest
            cfg_desc = m["config"]
            cpath = self.blob_path(cfg_desc["digest"])
            if not cpath.exists():
                await self.client.fetch_blob(resolved, cfg_desc["digest"], cpath, cfg_desc.get("size"))
            config = json.loads(cpath.read_bytes())
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
        layers = [layer["digest"] for layer in manifest.get("layers", [])]
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(layers):
            raise ValueError(f"image config has {len(diff_ids)} diff_ids for {len(layers)} layers")
        async def unpack(blob_digest: str, diff_id: str) -> None:
            async with self._lock("layer:" + diff_id):
                await asyncio.to_thread(self._ensure_layer, blob_digest, diff_id)

        await asyncio.gather(*(unpack(b, d) for b, d in zip(layers, diff_ids)))  # layers are independent dirs
        cfg_bytes = self.blob_path(manifest["config"]["digest"]).read_bytes()
        image_id = sha256_digest(cfg_bytes)
        size = sum(int(layer.get("size", 0)) for layer in manifest.get("layers", []))
        with self._flock():
            old = self.get(image_id)
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
        dest = self.layer_path(diff_id)
        with self._flock("layer-" + diff_id.split(":", 1)[1][:16]):
            if dest.exists():
                return
            got = unpack_layer(self.blob_path(blob_digest), dest)
            if got != diff_id:
                shutil.rmtree(dest, ignore_errors=True)
                raise ValueError(f"layer {blob_digest}: diff_id mismatch: config says {diff_id}, content is {got}")

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
                    shutil.rmtree(self.layer_path(d), ignore_errors=True)
        return img

    # ------------------------------------------------------------ load archives

    async def load_archive(self, path: str | Path) -> builtins.list[Image]:
        """Import a `docker save` tarball or an OCI image-layout archive (tar or directory)."""
        p = Path(path)
        if p.is_dir():
            return await self._load_dir(p)
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".load-") as tmp:
            await asyncio.to_thread(self._extract, p, Path(tmp))
            return await self._load_dir(Path(tmp))

    @staticmethod
    def _extract(archive: Path, dest: Path) -> None:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")

    def _import_blob(self, src: Path) -> str:
        digest = sha256_digest(src.read_bytes()) if src.stat().st_size < (64 << 20) else _file_digest(src)
        dst = self.blob_path(digest)
        if not dst.exists():
            shutil.copyfile(src, dst.with_suffix(".tmp"))
            os.replace(dst.with_suffix(".tmp"), dst)
        return digest

    async def _load_dir(self, d: Path) -> builtins.list[Image]:
        out: list[Image] = []
        if (d / "index.json").exists() and (d / "oci-layout").exists():
            index = json.loads((d / "index.json").read_text())
            for desc in index.get("manifests", []):
                mdigest = desc["digest"]
                mbytes = (d / "blobs" / "sha256" / mdigest.split(":", 1)[1]).read_bytes()
                if sha256_digest(mbytes) != mdigest:
                    raise RuntimeError_(f"archive blob {mdigest} is corrupt")
                mdoc = json.loads(mbytes)
                if "manifests" in mdoc:  # nested index: pick our platform
                    entry = pick_platform(mdoc, self.client.platform)
                    if entry is None:
                        continue
                    mdigest = entry["digest"]
                    mbytes = (d / "blobs" / "sha256" / mdigest.split(":", 1)[1]).read_bytes()
                    mdoc = json.loads(mbytes)
                for bd in [mdoc["config"]["digest"]] + [layer["digest"] for layer in mdoc.get("layers", [])]:
                    got = await asyncio.to_thread(self._import_blob, d / "blobs" / "sha256" / bd.split(":", 1)[1])
                    if got != bd:
                        raise RuntimeError_(f"archive blob {bd} is corrupt")
                _atomic_write(self.blob_path(mdigest), mbytes)
                name = (desc.get("annotations") or {}).get("io.containerd.image.name") or \
                    (desc.get("annotations") or {}).get("org.opencontainers.image.ref.name", "")
                tags = [str(reference.parse(name))] if name and ("/" in name or ":" in name) else []
                config = json.loads(self.blob_path(mdoc["config"]["digest"]).read_bytes())
                out.append(await self._commit(mdoc, config, mdigest, tags, []))
            return out
        if (d / "manifest.json").exists():  # docker save
            for entry in json.loads((d / "manifest.json").read_text()):
                cdigest = await asyncio.to_thread(self._import_blob, d / entry["Config"])
                layers = []
                for lp in entry["Layers"]:
                    ld = await asyncio.to_thread(self._import_blob, d / lp)
                    layers.append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                                   "digest": ld, "size": self.blob_path(ld).stat().st_size})
                cbytes = self.blob_path(cdigest).read_bytes()
                mdoc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                   "digest": cdigest, "size": len(cbytes)}, "layers": layers}
                mbytes = json.dumps(mdoc).encode()
                mdigest = sha256_digest(mbytes)
                _atomic_write(self.blob_path(mdigest), mbytes)
                tags = [str(reference.parse(t)) for t in entry.get("RepoTags") or []]
                out.append(await self._commit(mdoc, json.loads(cbytes), mdigest, tags, []))
            return out
        raise RuntimeError_(f"{d}: neither an OCI image layout nor a docker save archive")


def _file_digest(p: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


__all__ = ["Image", "ImageStore", "OCI_INDEX", "OCI_MANIFEST", "ResolvedManifest"]
