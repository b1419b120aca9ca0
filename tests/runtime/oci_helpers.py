"""Helpers for registry tests: tiny OCI images built in memory, a pusher, a fake registry."""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import zstandard
from aiohttp import web

from k8py.runtime.registry import host_platform


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(entries: dict[str, bytes | None]) -> bytes:
    """A tar of `path: content` (None = directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, content in entries.items():
            ti = tarfile.TarInfo(path)
            if content is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(content), 0o644
                tf.addfile(ti, io.BytesIO(content))
    return buf.getvalue()


@dataclass
class Layer:
    blob: bytes
    diff_id: str
    media_type: str


def layer(entries: dict[str, bytes | None], compression: str = "gzip") -> Layer:
    raw = tar_bytes(entries)
    if compression == "gzip":
        return Layer(gzip.compress(raw, mtime=0), digest_of(raw), "application/vnd.oci.image.layer.v1.tar+gzip")
    if compression == "zstd":
        return Layer(zstandard.ZstdCompressor().compress(raw), digest_of(raw),
                     "application/vnd.oci.image.layer.v1.tar+zstd")
    return Layer(raw, digest_of(raw), "application/vnd.oci.image.layer.v1.tar")


@dataclass
class TestImage:
    __test__ = False
    manifest: bytes
    config: bytes
    layers: list[Layer]
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)

    @property
    def config_digest(self) -> str:
        return digest_of(self.config)


DOCKER_TYPES = {
    "manifest": "application/vnd.docker.distribution.manifest.v2+json",
    "config": "application/vnd.docker.container.image.v1+json",
    "list": "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.layer.v1.tar+gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar": "application/vnd.docker.image.rootfs.diff.tar",
}


def image(layers: list[Layer], cfg: dict[str, Any] | None = None, arch: str | None = None,
          docker: bool = False) -> TestImage:
    """An image manifest in OCI form, or in Docker's v2 schema 2 form (as Docker Hub serves)."""
    config = json.dumps({
        "architecture": arch or host_platform()[1], "os": "linux", "config": cfg or {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [lay.diff_id for lay in layers]},
    }).encode()
    mt = DOCKER_TYPES["manifest"] if docker else "application/vnd.oci.image.manifest.v1+json"
    ct = DOCKER_TYPES["config"] if docker else "application/vnd.oci.image.config.v1+json"
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt,
        "config": {"mediaType": ct, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": DOCKER_TYPES.get(lay.media_type, lay.media_type) if docker else lay.media_type,
                    "digest": digest_of(lay.blob), "size": len(lay.blob)} for lay in layers],
    }).encode()
    blobs = {digest_of(config): config, **{digest_of(lay.blob): lay.blob for lay in layers}}
    return TestImage(manifest, config, layers, blobs)


def index(entries: list[tuple[TestImage | str, str, str]], docker: bool = False) -> bytes:
    """An OCI index (or a Docker manifest list) of (image or digest, os, arch)."""
    manifests = []
    for img, os_, arch in entries:
        d = img.digest if isinstance(img, TestImage) else img
        size = len(img.manifest) if isinstance(img, TestImage) else 100
        manifests.append({"mediaType": DOCKER_TYPES["manifest"] if docker else
                          "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": size,
                          "platform": {"os": os_, "architecture": arch}})
    return json.dumps({"schemaVersion": 2, "mediaType": DOCKER_TYPES["list"] if docker else
                       "application/vnd.oci.image.index.v1+json", "manifests": manifests}).encode()


async def push(addr: str, repo: str, tag: str, img: TestImage) -> None:
    base = f"http://{addr}/v2/{repo}"
    async with aiohttp.ClientSession() as s:
        for d, data in img.blobs.items():
            async with s.post(f"{base}/blobs/uploads/") as r:
                assert r.status == 202, await r.text()
                loc = r.headers["Location"]
            loc = loc if loc.startswith("http") else f"http://{addr}{loc}"
            sep = "&" if "?" in loc else "?"
            async with s.put(f"{loc}{sep}digest={d}", data=data,
                             headers={"Content-Type": "application/octet-stream"}) as r:
                assert r.status == 201, await r.text()
        await put_manifest(addr, repo, tag, img.manifest, "application/vnd.oci.image.manifest.v1+json")


async def put_manifest(addr: str, repo: str, ref: str, body: bytes, media_type: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.put(f"http://{addr}/v2/{repo}/manifests/{ref}", data=body,
                         headers={"Content-Type": media_type}) as r:
            assert r.status == 201, await r.text()


class FakeRegistry:
    """A registry v2 in aiohttp: manifests by tag/digest, blobs, optional bearer auth."""

    def __init__(self, token: str = "", user: str = "", password: str = "") -> None:
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.token, self.user, self.password = token, user, password
        self.token_requests: list[dict[str, str]] = []
        self.accept_token = token
        self.runner: web.AppRunner | None = None
        self.addr = ""

    def add(self, repo: str, tag: str, img: TestImage) -> None:
        self.blobs.update(img.blobs)
        mt = json.loads(img.manifest)["mediaType"]
        self.manifests[(repo, tag)] = (img.manifest, mt)
        self.manifests[(repo, img.digest)] = (img.manifest, mt)

    def add_index(self, repo: str, tag: str, body: bytes) -> None:
        mt = json.loads(body)["mediaType"]
        self.manifests[(repo, tag)] = (body, mt)
        self.manifests[(repo, digest_of(body))] = (body, mt)

    def _authorized(self, request: web.Request) -> bool:
        return not self.token or request.headers.get("Authorization") == f"Bearer {self.accept_token}"

    def _challenge(self, repo: str) -> web.Response:
        return web.json_response(
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}, status=401,
            headers={"WWW-Authenticate": f'Bearer realm="http://{self.addr}/token",service="fake-registry",'
                                         f'scope="repository:{repo}:pull"'})

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests.append(dict(request.query))
        if self.user:
            auth = request.headers.get("Authorization", "")
            if auth != "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode():
                return web.json_response({"details": "bad credentials"}, status=401)
        return web.json_response({"token": self.token})

    async def _v2(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        repo, kind, ref = path.rsplit("/", 2)
        if not self._authorized(request):
            return self._challenge(repo)
        if kind == "manifests" and (repo, ref) in self.manifests:
            body, mt = self.manifests[(repo, ref)]
            return web.Response(body=body, content_type=mt.split(";")[0],
                                headers={"Docker-Content-Digest": digest_of(body)})
        if kind == "blobs" and ref in self.blobs:
            return web.Response(body=self.blobs[ref], content_type="application/octet-stream")
        code = "MANIFEST_UNKNOWN" if kind == "manifests" else "BLOB_UNKNOWN"
        return web.json_response({"errors": [{"code": code, "message": "unknown"}]}, status=404)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/token", self._token)
        app.router.add_route("*", "/v2/{path:.+}", self._v2)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.addr = f"127.0.0.1:{port}"
        return self.addr

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
