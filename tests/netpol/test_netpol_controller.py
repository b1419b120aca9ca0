"""NetpolController.sync: the whole table first, nothing when nothing changed, the diff after a
change, the whole table again when a diff is refused."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.netpol import controller
from k8py.netpol.errors import NftError
from k8py.netpol.rules import PodInfo, State

WEB = PodInfo("default", "web", {"app": "web"}, "10.42.0.5", "n1")


def world(*names: str) -> State:
    pols = [{"metadata": {"namespace": "default", "name": n}, "spec": {"podSelector": {}}} for n in names]
    return State(pols, [WEB], {"default": {}})


async def test_sync_applies_only_what_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[str] = []
    refuse = [False]

    async def fake_apply(script: str) -> None:
        if refuse[0] and "delete table" not in script:
            refuse[0] = False
            raise NftError("refused")
        applied.append(script)

    monkeypatch.setattr(controller, "nft_apply", fake_apply)
    ctl = controller.NetpolController(object(), "n1", "k8py-netpol-t")  # type: ignore[arg-type]
    current: dict[str, Any] = {"state": world("a")}
    monkeypatch.setattr(ctl, "state", lambda: current["state"])
    assert await ctl.sync() and "delete table inet k8py-netpol-t" in applied[-1]
    assert not await ctl.sync() and len(applied) == 1  # unchanged: nothing applied
    current["state"] = world("a", "b")
    assert await ctl.sync() and "delete table" not in applied[-1] and "add chain" in applied[-1]
    current["state"] = world("b")
    refuse[0] = True
    assert await ctl.sync() and "delete table inet k8py-netpol-t" in applied[-1]  # the diff refused: whole table
    assert len(applied) == 3
