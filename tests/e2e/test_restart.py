"""Durability: a restart keeps objects and resourceVersions; kill -9 loses no acknowledged write."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8py.client.client import Client
from k8py.client.rest import RestTransport

from e2e_harness import K8pyServer, wait_for

pytestmark = pytest.mark.e2e


def test_sigterm_exits_zero_and_restart_keeps_objects(tmp_path: Path) -> None:
    s = K8pyServer(tmp_path / "data").start()
    try:
        assert s.ready_line.startswith("k8py: ready at https://127.0.0.1:") and "store sqlite" in s.ready_line
        assert f"export KUBECONFIG={s.kubeconfig}" in s.ready_line
        s.kubectl("create", "configmap", "keep", "--from-literal=a=1")
        before = s.kubectl_json("get", "configmap", "keep")
        ca = (s.data_dir / "pki" / "ca.crt").read_bytes()
        assert s.stop() == 0
        s.start()
        after = s.kubectl_json("get", "configmap", "keep")
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert after["metadata"]["uid"] == before["metadata"]["uid"] and after["data"] == {"a": "1"}
        assert (s.data_dir / "pki" / "ca.crt").read_bytes() == ca
        s.kubectl("create", "configmap", "later")
        later = s.kubectl_json("get", "configmap", "later")
        assert int(later["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    finally:
        s.stop()


def test_sigterm_with_an_open_watch_still_exits_zero(tmp_path: Path) -> None:
    s = K8pyServer(tmp_path / "data").start()
    w = subprocess.Popen([s.kubectl_bin, "get", "configmaps", "-w", "--output-watch-events"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=s.env())
    try:
        s.kubectl("create", "configmap", "seen")
        assert w.stdout is not None
        wait_for(lambda: b"seen" in w.stdout.readline(), 30, "the watch to deliver the new configmap")
        # the harness SIGKILLs (exit -9) if the server does not stop within its grace period
        assert s.stop() == 0
    finally:
        w.kill()
        w.wait()


@pytest.fixture
def private_etcd() -> Iterator[str]:
    """An etcd of this test's own (the session's is shared with tests that count its revisions)."""
    import shutil as _shutil
    if _shutil.which("etcd") is None:
        pytest.skip("no etcd (apt install etcd-server)")
    import importlib.util
    spec = importlib.util.spec_from_file_location("k8py_tests_root_conftest", Path(__file__).parents[1] / "conftest.py")
    assert spec and spec.loader
    import sys
    root = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(root)  # tests/conftest.py: its EtcdProcess helper
    etcd = root.EtcdProcess()
    try:
        yield "etcd://" + etcd.start().split("://", 1)[-1].rstrip("/")
    finally:
        etcd.stop()


@pytest.mark.parametrize("store", ["sqlite", "etcd"])
def test_kill_9_loses_no_acknowledged_create(tmp_path: Path, store: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("private_etcd") if store == "etcd" else None
    s = K8pyServer(tmp_path / "data", store=url).start()
    acked: list[str] = []
    stop = threading.Event()

    async def writer() -> None:
        c = Client(RestTransport.from_kubeconfig(s.kubeconfig))
        try:
            i = 0
            while not stop.is_set():
                names = [f"cm-{i + j}" for j in range(4)]
                i += 4
                res = await asyncio.gather(*(c.create("configmaps", {"metadata": {"name": n}, "data": {"i": n}},
                                                      "default") for n in names), return_exceptions=True)
                for n, r in zip(names, res):
                    if isinstance(r, BaseException):
                        return  # the server is gone
                    acked.append(n)
        finally:
            await c.close()

    t = threading.Thread(target=lambda: asyncio.run(writer()))
    try:
        t.start()
        wait_for(lambda: len(acked) >= 60, 60, "60 acknowledged creates")
        s.kill()
        stop.set()
        t.join(30)
        s.start()
        names = set(s.kubectl("get", "configmaps", "-n", "default", "-o", "name").stdout.split())
        missing = [n for n in acked if f"configmap/{n}" not in names]
        assert not missing and len(acked) >= 60
    finally:
        stop.set()
        s.stop()
