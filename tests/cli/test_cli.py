"""The k8py command line: argument parsing, version, reset's cleanup hooks and data-dir safety."""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import pytest

from k8py.cli import main as cli
from k8py.cli import reset, server


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version"]) == 0
    assert "Kubernetes API v1.37" in capsys.readouterr().out


def test_server_flags() -> None:
    ns = cli.build_parser().parse_args(["server", "--data-dir", "/tmp/x", "--port", "0", "--bind", "127.0.0.2",
                                        "--store", "etcd://127.0.0.1:2379", "--no-agent", "--simulated-nodes", "3",
                                        "--node-capacity", "cpu=2,memory=1Gi", "--pod-eviction-timeout", "5",
                                        "--node-monitor-grace-period", "10"])
    a = server.args_from(ns)
    assert (a.data_dir, a.port, a.bind, a.store, a.no_agent, a.simulated_nodes, a.pod_eviction_timeout) == \
        ("/tmp/x", 0, "127.0.0.2", "etcd://127.0.0.1:2379", True, 3, 5.0)
    assert a.node_monitor_grace_period == 10.0
    assert a.node_capacity == {"cpu": "2", "memory": "1Gi"}
    d = server.args_from(cli.build_parser().parse_args(["server"]))
    assert (d.port, d.bind, d.store, d.no_agent) == (6443, "127.0.0.1", None, False)
    assert (d.pod_eviction_timeout, d.node_monitor_grace_period) == (300.0, 40.0)  # Kubernetes' defaults
    assert d.node_capacity == {"cpu": "4", "memory": "8Gi", "pods": "110"}


@pytest.mark.parametrize("bad", ["cpu", "=4", "cpu="])
def test_bad_capacity(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        server.parse_capacity(bad)


@pytest.mark.parametrize("url,kind", [(None, "sqlite"), ("sqlite:///x.db", "sqlite"),
                                      ("etcd://127.0.0.1:2379", "etcd")])
def test_store_kind(url: str | None, kind: str) -> None:
    assert server._store_kind(url) == kind


def test_reset_calls_every_cleanup_and_survives_failures(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []

    def ok() -> None:
        calls.append("ok")

    async def aok() -> None:
        calls.append("async")

    def boom() -> None:
        calls.append("boom")
        raise RuntimeError("nope")

    pkg = types.ModuleType("k8py_fake_pkg")
    pkg.cleanup = ok  # type: ignore[attr-defined]
    mod = types.ModuleType("k8py_fake_pkg2.cleanup")
    mod.cleanup = aok  # type: ignore[attr-defined]
    bad = types.ModuleType("k8py_fake_bad")
    bad.cleanup = boom  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "k8py_fake_pkg", pkg)
    monkeypatch.setitem(sys.modules, "k8py_fake_pkg2.cleanup", mod)
    monkeypatch.setitem(sys.modules, "k8py_fake_bad", bad)
    monkeypatch.setattr(reset, "CLEANUPS", ("k8py_fake_bad.cleanup", "k8py_fake_pkg.cleanup",
                                            "k8py_fake_pkg2.cleanup", "k8py_absent.cleanup"))
    assert cli.main(["reset", "--quiet"]) == 1
    assert calls == ["boom", "ok", "async"]
    out = capsys.readouterr()
    assert out.out == "" and "k8py_fake_bad.cleanup failed: nope" in out.err


def test_reset_removes_only_k8py_data_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reset, "CLEANUPS", ())
    mine = tmp_path / "k8py"
    (mine / "pki").mkdir(parents=True)
    (mine / "kubeconfig").write_text("x")
    other = tmp_path / "home"
    other.mkdir()
    (other / "precious").write_text("keep")
    assert cli.main(["reset", "--quiet", "--data-dir", str(other)]) == 1
    assert (other / "precious").exists()
    assert cli.main(["reset", "--quiet", "--data-dir", str(mine)]) == 0
    assert not mine.exists()
    assert cli.main(["reset", "--quiet", "--data-dir", str(mine)]) == 0  # already gone: fine
