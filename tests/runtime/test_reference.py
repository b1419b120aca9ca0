"""Image reference normalization, as Docker does it."""
from __future__ import annotations

import pytest

from k8py.runtime.errors import ImageRefError
from k8py.runtime.reference import parse

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("image, full, familiar", [
    ("nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("nginx:1.14.2", "docker.io/library/nginx:1.14.2", "nginx:1.14.2"),
    ("library/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("docker.io/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
    ("index.docker.io/library/nginx:1", "docker.io/library/nginx:1", "nginx:1"),
    ("polinux/stress", "docker.io/polinux/stress:latest", "polinux/stress:latest"),
    ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
    ("gcr.io/google-samples/hello-app:1.0", "gcr.io/google-samples/hello-app:1.0",
     "gcr.io/google-samples/hello-app:1.0"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("127.0.0.1:5000/app:v2", "127.0.0.1:5000/app:v2", "127.0.0.1:5000/app:v2"),
    ("localhost:5000/a/b/c", "localhost:5000/a/b/c:latest", "localhost:5000/a/b/c:latest"),
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
    (f"busybox:1.28@{DIGEST}", f"docker.io/library/busybox:1.28@{DIGEST}", f"busybox:1.28@{DIGEST}"),
    ("my-registry.example.com:443/team/app_x:1.0-rc.1", "my-registry.example.com:443/team/app_x:1.0-rc.1",
     "my-registry.example.com:443/team/app_x:1.0-rc.1"),
])
def test_normalize(image: str, full: str, familiar: str) -> None:
    ref = parse(image)
    assert str(ref) == full
    assert ref.familiar() == familiar
    assert parse(full) == ref


def test_reference_prefers_digest() -> None:
    ref = parse(f"nginx:1.14.2@{DIGEST}")
    assert (ref.repository, ref.tag, ref.digest, ref.reference) == ("library/nginx", "1.14.2", DIGEST, DIGEST)


@pytest.mark.parametrize("image", ["", "Nginx", "nginx:", "nginx:bad tag", " nginx", "nginx@sha256:short",
                                   "a//b", "nginx:-x", "UPPER/case:1"])
def test_invalid(image: str) -> None:
    with pytest.raises(ImageRefError):
        parse(image)
