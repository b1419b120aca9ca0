"""A container whose shim exits between two reads of its status is `exited`, never `unknown`.

The shim writes exit.json and then exits. Reading the exit record first and liveness second
could see neither (the record not yet written, the shim already gone): the kubelet then took
the container for lost and ran it again (an init container's output appeared twice in CI).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from k8py.runtime import runc
from k8py.runtime.protocol import ContainerState
from k8py.runtime.runc import RuncRuntime


def _record(rt: RuncRuntime, cid: str) -> Path:
    d = rt.cdir / cid
    d.mkdir(parents=True)
    (d / "container.json").write_text(json.dumps({
        "config": {"name": "second", "image": "busybox", "attempt": 0}, "sandbox_id": "sb", "image_id": "sha256:x",
        "created_at": 1.0, "started_at": 2.0, "log_path": str(d / "log"), "pid": 4242}))
    (d / "shim.json").write_text(json.dumps({"pid": 4243}))
    return d


@pytest.mark.parametrize(("shim_finishes", "state"), [
    (True, ContainerState.EXITED),     # the record appears as the shim exits: exited
    (False, ContainerState.UNKNOWN),   # the shim died without a record: unknown, as before
])
async def test_shim_exiting_during_status_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               shim_finishes: bool, state: ContainerState) -> None:
    rt = RuncRuntime(state_dir=tmp_path / "run", data_dir=tmp_path / "data")
    d = _record(rt, "c1")

    def dead_after_writing(pid: int) -> bool:  # the shim finishes while its liveness is checked
        if shim_finishes:
            (d / "exit.json").write_text(json.dumps({"exit_code": 0, "finished_at": 3.0}))
        return False

    monkeypatch.setattr(runc, "_alive", dead_after_writing)
    st = await rt.container_status("c1")
    assert st.state == state
    if state == ContainerState.EXITED:
        assert (st.exit_code, st.reason) == (0, "Completed")
    await rt.close()
