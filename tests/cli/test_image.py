"""`k8py image` (cli/image.py): pull, list and remove through the node's image store."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import yaml

from k8py.cli.main import main as k8py_main
from tests.runtime.oci_helpers import FakeRegistry, image, layer


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("unpacking layers with ownership needs root")


async def test_cli_pull_ls_rm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_root()
    reg = FakeRegistry()
    await reg.start()
    try:
        img = image([layer({"x": b"y"})])
        reg.add("library/cli", "v1", img)
        conf = tmp_path / "registries.yaml"
        conf.write_text(yaml.safe_dump({"mirrors": {"docker.io": {"endpoint": [f"http://{reg.addr}"]}},
                                        "disable_default_endpoint": True}))
        base = ["image", "--store", str(tmp_path / "store"), "--registries", str(conf)]
        # the CLI runs its own event loop: run it in a thread so the fake registry keeps serving

        async def cli(*args: str) -> int:
            return await asyncio.to_thread(k8py_main, base + list(args))

        assert await cli("pull", "cli:v1") == 0
        assert await cli("ls") == 0
        out = capsys.readouterr().out
        assert "docker.io/library/cli" in out and "v1" in out and img.config_digest[7:20] in out
        assert await cli("pull", "cli:nope") == 1
        assert "not found" in capsys.readouterr().err
        assert await cli("rm", "cli:v1") == 0
        assert await cli("ls", "-q") == 0
        assert capsys.readouterr().out.strip().endswith(f"Deleted: cli:v1 ({img.config_digest})")
    finally:
        await reg.stop()


def test_cli_load_refuses_a_crafted_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`k8py image load` of an archive with a member out of the archive and one whose
    manifest.json names a path out of it: exit 1 with the reason, nothing written outside."""
    import io
    import json
    import tarfile

    outside = tmp_path / "outside"
    outside.mkdir()
    base = ["image", "--store", str(tmp_path / "store"), "--registries", str(tmp_path / "none.yaml")]
    cases = {"member": [("../outside/pwned", b"x"), ("manifest.json", b"[]")],
             "manifest": [("manifest.json", json.dumps([{"Config": "../../outside/c.json", "RepoTags": ["a:1"],
                                                         "Layers": []}]).encode())]}
    for name, members in cases.items():
        archive = tmp_path / f"{name}.tar"
        with tarfile.open(archive, "w") as tf:
            for path, data in members:
                ti = tarfile.TarInfo(path)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
        assert k8py_main(base + ["load", str(archive)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("k8py image load: ") and "outside" in err, err
    assert list(outside.iterdir()) == []
    assert list((tmp_path / "store" / "layers").iterdir()) == []
