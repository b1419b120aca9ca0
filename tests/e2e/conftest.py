"""Fixtures of whole-cluster tests: `cluster` (one k8py server per test module, SQLite),
`fresh_cluster` (one per test), `etcd_cluster` (one per module on the `etcd_url`
fixture from tests/conftest.py). The harness itself is in e2e_harness.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest
from e2e_harness import K8pyServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if shutil.which("kubectl") is None:
        skip = pytest.mark.skip(reason="kubectl not on PATH")
        for it in items:
            if "tests/e2e/" in str(it.fspath):
                it.add_marker(skip)


def _server(tmp: Path, store: str | None = None) -> Iterator[K8pyServer]:
    s = K8pyServer(tmp / "data", store=store)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8pyServer]:
    yield from _server(tmp_path_factory.mktemp("k8py"))


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[K8pyServer]:
    yield from _server(tmp_path)


@pytest.fixture(scope="module")
def etcd_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8pyServer]:
    try:
        url = request.getfixturevalue("etcd_url")
    except pytest.FixtureLookupError:
        pytest.skip("no etcd_url fixture")
    store = "etcd://" + url.split("://", 1)[-1].rstrip("/")  # the fixture gives http://host:port
    yield from _server(tmp_path_factory.mktemp("k8py-etcd"), store=store)


