"""Image references, normalized as Docker does.

`nginx` -> docker.io/library/nginx:latest; `user/app:1` -> docker.io/user/app:1;
`registry.k8s.io/pause:3.9` stays; `name@sha256:...` keeps the digest (a tag next to a
digest is kept for display but the digest wins). The first path component is a
registry host only if it contains "." or ":" or is "localhost" (Docker's rule).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from k8py.runtime.errors import ImageRefError

DEFAULT_REGISTRY = "docker.io"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_HOST = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True)
class ImageRef:
    registry: str  # e.g. "docker.io", "127.0.0.1:5000"
    repository: str  # e.g. "library/nginx"
    tag: str = ""  # "" when only a digest was given
    digest: str = ""  # "sha256:..." or ""

    @property
    def name(self) -> str:
        """registry/repository, e.g. docker.io/library/nginx."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest if known, else the tag."""
        return self.digest or self.tag

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    def familiar(self) -> str:
        """Docker's short form: `nginx:latest`, `user/app:1`, `quay.io/x/y:z`."""
        name = self.name
        if self.registry == DEFAULT_REGISTRY:
            name = self.repository.removeprefix("library/")
        s = name + (f":{self.tag}" if self.tag else "")
        return s + (f"@{self.digest}" if self.digest else "")


def parse(image: str) -> ImageRef:
    """Normalize an image reference; raises ImageRefError for invalid names."""
    s = image.strip()
    if not s or s != image or any(c.isspace() for c in s):
        raise ImageRefError(f'invalid reference format: "{image}"')
    digest = ""
    if "@" in s:
        s, digest = s.split("@", 1)
        if not _DIGEST.match(digest):
            raise ImageRefError(f'invalid reference format: bad digest in "{image}"')
    tag = ""
    slash = s.rfind("/")
    colon = s.rfind(":")
    if colon > slash:
        s, tag = s[:colon], s[colon + 1:]
        if not _TAG.match(tag):
            raise ImageRefError(f'invalid reference format: bad tag in "{image}"')
    parts = s.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, path = parts[0], parts[1:]
        if not _HOST.match(registry):
            raise ImageRefError(f'invalid reference format: bad registry in "{image}"')
    else:
        registry, path = DEFAULT_REGISTRY, parts
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and len(path) == 1:
        path = ["library"] + path
    for comp in path:
        if not _COMPONENT.match(comp):
            raise ImageRefError(
                f'invalid reference format: repository name (in "{image}") must be lowercase')
    if not tag and not digest:
        tag = "latest"
    return ImageRef(registry, "/".join(path), tag, digest)
