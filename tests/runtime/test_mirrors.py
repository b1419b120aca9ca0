"""registries.yaml: mirrors, endpoint URLs, credentials."""
from __future__ import annotations

from pathlib import Path

import pytest

from k8py.runtime.mirrors import RegistriesConfig, endpoint_url

CONFIG = {
    "mirrors": {
        "docker.io": {"endpoint": ["http://127.0.0.1:5000", "mirror.example.com/v2"]},
        "registry.k8s.io": {"endpoint": ["localhost:5001"]},
        "*": {"endpoint": ["127.0.0.1:5002"]},
    },
    "configs": {
        "mirror.example.com": {"auth": {"username": "u", "password": "p"}},
        "127.0.0.1:5002": {"auth": {"auth": "YWxpY2U6czNjcjN0"}},  # alice:s3cr3t
    },
}


@pytest.mark.parametrize("endpoint, url", [
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("localhost:5000/", "http://localhost:5000"),
    ("[::1]:5000", "http://[::1]:5000"),
    ("mirror.example.com/v2", "https://mirror.example.com"),
    ("https://mirror.example.com/v2/", "https://mirror.example.com"),
    ("10.0.0.1:5000", "https://10.0.0.1:5000"),
])
def test_endpoint_url(endpoint: str, url: str) -> None:
    assert endpoint_url(endpoint) == url


@pytest.mark.parametrize("registry, disable_default, endpoints", [
    ("docker.io", False, ["http://127.0.0.1:5000", "https://mirror.example.com", "https://registry-1.docker.io"]),
    ("docker.io", True, ["http://127.0.0.1:5000", "https://mirror.example.com"]),
    ("registry.k8s.io", False, ["http://localhost:5001", "https://registry.k8s.io"]),
    ("gcr.io", True, ["http://127.0.0.1:5002"]),
    ("gcr.io", False, ["http://127.0.0.1:5002", "https://gcr.io"]),
    ("localhost:5003", False, ["http://127.0.0.1:5002", "http://localhost:5003"]),
])
def test_endpoints(registry: str, disable_default: bool, endpoints: list[str]) -> None:
    cfg = RegistriesConfig.from_dict(dict(CONFIG, disable_default_endpoint=disable_default))
    assert cfg.endpoints(registry) == endpoints


def test_no_mirrors_means_upstream() -> None:
    assert RegistriesConfig().endpoints("docker.io") == ["https://registry-1.docker.io"]
    assert RegistriesConfig().endpoints("quay.io") == ["https://quay.io"]


def test_credentials_and_load(tmp_path: Path) -> None:
    import yaml

    p = tmp_path / "registries.yaml"
    p.write_text(yaml.safe_dump(CONFIG))
    cfg = RegistriesConfig.load(p)
    c = cfg.credentials("https://mirror.example.com")
    assert c is not None and (c.username, c.password) == ("u", "p")
    c = cfg.credentials("http://127.0.0.1:5002")
    assert c is not None and (c.username, c.password) == ("alice", "s3cr3t")
    assert cfg.credentials("http://127.0.0.1:5000") is None
    assert RegistriesConfig.load(tmp_path / "missing.yaml").endpoints("docker.io") == [
        "https://registry-1.docker.io"]
