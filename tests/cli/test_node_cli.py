"""`k8py node ...` on bad input: one line on stderr, exit code 1 (2 for usage), nothing made."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from k8py.cli import main as cli
from k8py.nodehost.layout import HostNetwork

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="k8py node needs root")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    HostNetwork(str(tmp_path.resolve()), node_network="10.41.250.0/24").save()
    return tmp_path


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["add"], 2, "a node name is needed"),
    (["add", "Bad_Name"], 1, "invalid node name 'Bad_Name'"),
    (["stop", "node-9"], 1, "no node host named 'node-9'"),
    (["start", "node-9"], 1, "no node host named 'node-9'"),
    (["rm", "node-9"], 1, "no node host named 'node-9'"),
])
def test_bad_input_is_one_line(argv: list[str], code: int, message: str, data_dir: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["node", *argv, "--data-dir", str(data_dir)]) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not Path(f"/sys/class/net/{HostNetwork(str(data_dir.resolve())).bridge}").exists()


def test_a_data_dir_without_node_hosts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["node", "add", "node-4", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no cluster of node hosts at" in err and err.count("\n") == 1, err


def test_a_node_network_that_clashes_with_a_route_of_the_machine(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show"], capture_output=True, text=True).stdout)
    taken = next((r for r in routes if "/" in r.get("dst", "") and not r.get("dev", "").startswith("k8py")), None)
    if taken is None:
        pytest.skip("no route on this machine to clash with")
    assert cli.main(["server", "--data-dir", str(tmp_path / "d"), "--port", "0", "--nodes", "1",
                     "--node-network", taken["dst"]]) == 1
    err = capsys.readouterr().err
    assert f"clashes with the route to {taken['dst']}" in err and err.count("\n") == 1, err
    assert not Path(f"/sys/class/net/{HostNetwork(str((tmp_path / 'd').resolve())).bridge}").exists()
