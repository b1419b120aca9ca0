"""OCI distribution (registry v2) client over aiohttp.

Resolves a reference to a single-platform image manifest (OCI index / Docker manifest
list -> the entry for this machine's linux/<arch>), fetches blobs by digest and verifies
their sha256 while streaming to disk, and speaks Docker Hub's bearer-token auth
(401 + `WWW-Authenticate: Bearer realm=...,service=...,scope=...` -> GET realm for a
token, cached per endpoint and scope) as well as basic auth.

Invariants: nothing is written under its final name unless its digest matched; every
failure surfaces as ImagePullError with a containerd-like message; endpoints come from
RegistriesConfig (mirrors first) and the last endpoint's error is reported; every digest
taken from a registry is checked against `sha256:[0-9a-f]{64}` (check_digest) before it
names a URL or a path.
"""
from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from k8py.runtime.errors import ImagePullError
from k8py.runtime.mirrors import Credentials, RegistriesConfig
from k8py.runtime.reference import ImageRef

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])
MAX_MANIFEST = 4 << 20


def host_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) of this machine in OCI terms."""
    m = platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)
    return "linux", arch, "v8" if arch == "arm64" else ""


DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


class InvalidDigest(ValueError):
    """A digest or diff_id that is not `sha256:` and 64 lowercase hex digits: it never names a path."""

    def __init__(self, value: object, what: str = "digest") -> None:
        super().__init__(f"invalid {what} {value!r}: must match sha256:[0-9a-f]{{64}}")
        self.value = value


def check_digest(value: object, what: str = "digest") -> str:
    """`value` if it is a well-formed sha256 digest, else InvalidDigest (before it names a path or URL)."""
    if not isinstance(value, str) or not DIGEST_RE.fullmatch(value):
        raise InvalidDigest(value, what)
    return value


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class ResolvedManifest:
    ref: ImageRef
    endpoint: str  # base URL that served it
    digest: str  # digest of the single-platform manifest
    media_type: str
    body: bytes
    index_digest: str = ""  # digest of the index/list the reference named, if any
    credentials: Credentials | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def repo_digest(self) -> str:
        """name@digest as `crictl images --digests` shows: the digest the tag named."""
        return f"{self.ref.name}@{self.index_digest or self.digest}"


class _HTTPFail(Exception):
    def __init__(self, status: int, body: str, url: str) -> None:
        super().__init__(f"{status} {body[:200]}")
        self.status, self.body, self.url = status, body, url


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


def pick_platform(index: dict[str, Any], plat: tuple[str, str, str] | None = None) -> dict[str, Any] | None:
    """The index entry matching the platform (an exact variant preferred), or None."""
    os_, arch, variant = plat or host_platform()
    best: dict[str, Any] | None = None
    for m in index.get("manifests", []):
        p = m.get("platform") or {}
        if p.get("os") != os_ or p.get("architecture") != arch:
            continue
        if (m.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        if p.get("variant", "") == variant:
            return m
        best = best or m
    return best


def _basic(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


class RegistryClient:
    """Pulls manifests and blobs; one instance per runtime, reusing its aiohttp session."""

    def __init__(self, config: RegistriesConfig | None = None,
                 platform_: tuple[str, str, str] | None = None, timeout: float = 300.0) -> None:
        self.config = config or RegistriesConfig()
        self.platform = platform_ or host_platform()
        self._tokens: dict[tuple[str, str, str], str] = {}
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=10)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    # ------------------------------------------------------------ auth + requests

    async def _token(self, endpoint: str, challenge: dict[str, str], scope: str,
                     creds: Credentials | None) -> str:
        key = (endpoint, scope, creds.username if creds else "")
        if key in self._tokens:
            return self._tokens[key]
        params = {k: v for k, v in (("service", challenge.get("service", "")), ("scope", scope)) if v}
        hdrs = {"Authorization": _basic(creds)} if creds and creds.username else {}
        async with self._sess().get(challenge["realm"], params=params, headers=hdrs) as r:
            if r.status != 200:
                raise _HTTPFail(r.status, await r.text(), str(r.url))
            body = await r.json(content_type=None)
        token = body.get("token") or body.get("access_token") or ""
        self._tokens[key] = token
        return token

    async def _open(self, endpoint: str, repo: str, method: str, path: str,
                    headers: dict[str, str] | None = None,
                    credentials: Credentials | None = None) -> aiohttp.ClientResponse:
        """A response with status < 400 (caller must release it); raises _HTTPFail."""
        url = f"{endpoint}/v2/{repo}/{path}"
        scope = f"repository:{repo}:pull"
        hdrs = dict(headers or {})
        creds: Credentials | None = credentials or self.config.credentials(endpoint)
        tkey = (endpoint, scope, creds.username if creds else "")
        tok = self._tokens.get(tkey)
        if tok:
            hdrs["Authorization"] = f"Bearer {tok}"
        elif creds and creds.username:
            hdrs["Authorization"] = _basic(creds)
        for attempt in range(2):
            r = await self._sess().request(method, url, headers=hdrs)
            if r.status == 401 and attempt == 0 and "WWW-Authenticate" in r.headers:
                scheme, ch = _parse_challenge(r.headers["WWW-Authenticate"])
                r.release()
                if scheme == "bearer" and "realm" in ch:
                    self._tokens.pop(tkey, None)
                    tok = await self._token(endpoint, ch, ch.get("scope", scope), creds)
                    self._tokens[tkey] = tok
                    hdrs["Authorization"] = f"Bearer {tok}"
                    continue
                if scheme == "basic" and creds and creds.username:
                    hdrs["Authorization"] = _basic(creds)
                    continue
                raise _HTTPFail(401, "", url)
            if r.status >= 400:
                text = "" if method == "HEAD" else await r.text()
                r.release()
                raise _HTTPFail(r.status, text, url)
            return r
        raise _HTTPFail(401, "", url)

    # ------------------------------------------------------------ error messages

    @staticmethod
    def _pull_error(ref: ImageRef, exc: BaseException, what: str = "resolve reference") -> ImagePullError:
        image = str(ref)
        prefix = f'failed to {what} "{image}": '
        if isinstance(exc, ImagePullError):
            return exc
        if isinstance(exc, _HTTPFail):
            code = ""
            try:
                code = (json.loads(exc.body).get("errors") or [{}])[0].get("code", "")
            except (ValueError, AttributeError, IndexError):
                pass
            if exc.status == 404 or code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"):
                return ImagePullError(image, prefix + f"{image}: not found", "not found")
            if exc.status in (401, 403) or code in ("UNAUTHORIZED", "DENIED"):
                return ImagePullError(image, prefix + "pull access denied, repository does not exist or may "
                                      "require authorization: server message: insufficient_scope: "
                                      "authorization failed", "unauthorized")
            return ImagePullError(image, prefix + f"unexpected status from {exc.url}: {exc.status} "
                                  f"{exc.body[:200].strip()}", "http")
        if isinstance(exc, aiohttp.ClientConnectorError):
            h = f"{exc.host}:{exc.port}"
            why = "connection refused" if exc.os_error.errno == errno.ECONNREFUSED else \
                (exc.strerror or str(exc)).lower()
            return ImagePullError(image, prefix + f"failed to do request: dial tcp {h}: connect: {why}",
                                  "connection")
        if isinstance(exc, (aiohttp.ClientError, OSError, TimeoutError)):
            return ImagePullError(image, prefix + f"failed to do request: {exc!r}", "connection")
        return ImagePullError(image, prefix + str(exc), "error")

    # ------------------------------------------------------------ manifests

    async def _get_manifest(self, endpoint: str, ref: ImageRef, reference: str,
                            creds: Credentials | None = None) -> tuple[str, bytes, str]:
        r = await self._open(endpoint, ref.repository, "GET", f"manifests/{reference}", {"Accept": ACCEPT}, creds)
        try:
            body = await r.content.read(MAX_MANIFEST + 1)
            if len(body) > MAX_MANIFEST:
                raise ImagePullError(str(ref), "manifest too large", "bad manifest")
            mt = r.headers.get("Content-Type", "").split(";")[0].strip()
        finally:
            r.release()
        try:
            doc = json.loads(body)
        except ValueError:
            raise ImagePullError(str(ref), f"invalid manifest JSON for {ref}", "bad manifest") from None
        mt = doc.get("mediaType") or mt
        if not mt or mt == "application/json":
            mt = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
        digest = sha256_digest(body)
        if reference.startswith("sha256:") and digest != reference:
            raise ImagePullError(str(ref), f"manifest digest mismatch: expected {reference}, got {digest}",
                                 "digest mismatch")
        return mt, body, digest

    async def resolve(self, ref: ImageRef, credentials: Credentials | None = None) -> ResolvedManifest:
        """The single-platform manifest for `ref`, trying each endpoint in order.

        `credentials` (from a pod's imagePullSecrets) override registries.yaml's."""
        endpoints = self.config.endpoints(ref.registry)
        last: BaseException = ImagePullError(str(ref), "no registry endpoint configured", "connection")
        for ep in endpoints:
            try:
                mt, body, digest = await self._get_manifest(ep, ref, ref.reference, credentials)
                index_digest = ""
                if mt in INDEX_TYPES:
                    index_digest = digest
                    entry = pick_platform(json.loads(body), self.platform)
                    if entry is None:
                        os_, arch, _ = self.platform
                        raise ImagePullError(str(ref), f"no match for platform in manifest {digest}: "
                                             f"{os_}/{arch}: not found", "no matching platform")
                    try:
                        check_digest(entry.get("digest"), "manifest digest")
                    except InvalidDigest as e:
                        raise ImagePullError(str(ref), f"index {digest}: {e}", "bad manifest") from None
                    mt, body, digest = await self._get_manifest(ep, ref, entry["digest"], credentials)
                if mt not in MANIFEST_TYPES:
                    raise ImagePullError(str(ref), f"unsupported manifest media type {mt!r}", "bad manifest")
                return ResolvedManifest(ref, ep, digest, mt, body, index_digest, credentials)
            except ImagePullError as e:
                if e.cause in ("digest mismatch", "no matching platform", "bad manifest"):
                    raise
                last = e
            except Exception as e:  # noqa: BLE001 - every failure becomes ErrImagePull
                last = self._pull_error(ref, e)
        raise self._pull_error(ref, last)

    # ------------------------------------------------------------ blobs

    async def fetch_blob(self, resolved: ResolvedManifest, digest: str, dest: Path,
                         size: int | None = None) -> None:
        """Stream a blob to `dest`, verifying its digest (and size); atomic rename."""
        try:
            check_digest(digest, "blob digest")
        except InvalidDigest as e:
            raise ImagePullError(str(resolved.ref), str(e), "bad manifest") from None
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{id(self)}.partial")
        h = hashlib.sha256()
        n = 0
        try:
            r = await self._open(resolved.endpoint, resolved.ref.repository, "GET", f"blobs/{digest}",
                                 credentials=resolved.credentials)
            try:
                with open(tmp, "wb") as f:
                    async for chunk in r.content.iter_chunked(1 << 20):
                        h.update(chunk)
                        n += len(chunk)
                        f.write(chunk)
            finally:
                r.release()
        except Exception as e:  # noqa: BLE001
            tmp.unlink(missing_ok=True)
            raise self._pull_error(resolved.ref, e, "pull and unpack image") from e
        got = "sha256:" + h.hexdigest()
        if got != digest or (size is not None and n != size):
            tmp.unlink(missing_ok=True)
            raise ImagePullError(str(resolved.ref), f"failed commit on ref \"layer-{digest}\": unexpected "
                                 f"commit digest {got}, expected {digest}: failed precondition",
                                 "digest mismatch")
        os.replace(tmp, dest)
