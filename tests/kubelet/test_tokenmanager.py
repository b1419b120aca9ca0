"""The kubelet's token manager: TokenRequests bound to the pod, cached, refreshed at 80% of the
lifetime or after 24 h (less the jitter), the old token kept while a refresh fails."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from k8py.clock import FakeClock
from k8py.kubelet.errors import VolumeError
from k8py.kubelet.tokenmanager import CachedToken, TokenManager, requires_refresh

from agent_helpers import Harness, harness_fixture
from helpers.api import start_api


@pytest.mark.parametrize("ttl, age, jitter, refresh", [
    (3607, 0, 0, False),
    (3607, 2885, 0, False),  # 80% of 3607 s is 2885.6 s
    (3607, 2886, 0, True),
    (3607, 2880, 10, True),  # the jitter brings it forward
    (3600 * 48, 24 * 3600 - 1, 0, False),
    (3600 * 48, 24 * 3600 + 1, 0, True),  # a long-lived token: refreshed daily
])
def test_refresh_timing(ttl: int, age: float, jitter: float, refresh: bool) -> None:
    t = CachedToken("t", ttl, 1000.0 + ttl)
    assert requires_refresh(t, 1000.0 + age, jitter) == refresh


def claims(token: bytes) -> dict[str, Any]:
    part = token.decode().split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


async def test_tokens_are_bound_to_the_pod_cached_and_refreshed() -> None:
    clock = FakeClock()
    api, client = await start_api(clock)
    try:
        pod = await client.create("pods", {"metadata": {"name": "p", "namespace": "default"},
                                           "spec": {"containers": [{"name": "c", "image": "x"}]}})
        tm = TokenManager(client, clock, jitter=lambda: 0.0)
        src = {"path": "token", "expirationSeconds": 3607}
        first = await tm.token(pod, src)
        c = claims(first)
        assert c["kubernetes.io"]["pod"] == {"name": "p", "uid": pod["metadata"]["uid"]}
        assert c["exp"] - c["iat"] == 3607 and c["aud"] == ["https://kubernetes.default.svc.cluster.local"]
        assert claims(await tm.token(pod, {"path": "t", "expirationSeconds": 3607, "audience": "vault"}))["aud"] == \
            ["vault"]
        await clock.advance(2885)
        assert await tm.token(pod, src) == first  # cached until 80% of its lifetime
        await clock.advance(1)
        second = await tm.token(pod, src)
        assert second != first and claims(second)["iat"] == c["iat"] + 2886
        await client.delete("pods", "p", "default", grace_period_seconds=0)
        await clock.advance(2886)
        assert await tm.token(pod, src) == second  # the refresh fails: the old one while it is valid
        await clock.advance(800)
        with pytest.raises(VolumeError, match='pods "p" not found'):
            await tm.token(pod, src)
        tm.forget(pod["metadata"]["uid"])
        assert not tm._cache
    finally:
        await api.close()


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async for x in harness_fixture(tmp_path):
        yield x


async def test_the_pod_volume_gets_a_real_token_refreshed_in_place(h: Harness) -> None:
    h.agent.tokens.jitter = lambda: 0.0
    pod = await h.create_pod("web", [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}])
    vol = next(v["name"] for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
    d = h.agent.volumes.pod_dir(pod["metadata"]["uid"]) / "volumes" / "kubernetes.io~projected" / vol

    def token_file() -> bytes | None:
        p = d / "token"
        return p.read_bytes() if p.exists() else None
    first = await h.until(token_file)
    assert claims(first)["kubernetes.io"]["pod"]["uid"] == pod["metadata"]["uid"]
    assert (d / "namespace").read_text() == "default" and (d / "ca.crt").read_text().startswith("-----BEGIN")
    assert os.readlink(d / "token") == "..data/token"
    (cfg, _), = list(h.runtime.containers.values())
    env = dict(cfg.env)
    assert env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    await h.tick(2000)
    assert token_file() == first  # not yet 80% of 3607 s
    second = await h.until(lambda: (t := token_file()) != first and t, step=100)
    assert claims(second)["iat"] - claims(first)["iat"] >= 2886
