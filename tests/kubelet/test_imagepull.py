"""A pod's image pulls: pull policy, events, and the pull back-off (ImagePullBackOff)."""

from __future__ import annotations

import pytest

from k8py.clock import FakeClock
from k8py.kubelet.backoff import Backoff
from k8py.kubelet.errors import ImagePullBackOff
from k8py.kubelet.imagepull import ImagePuller, fmt_secs, pull_policy
from k8py.runtime.errors import ImageNeverPullError, ImagePullError
from k8py.runtime.fake import FakeRuntime


@pytest.mark.parametrize("container,want", [
    ({"image": "nginx"}, "Always"),
    ({"image": "nginx:latest"}, "Always"),
    ({"image": "nginx:1.27"}, "IfNotPresent"),
    ({"image": "reg:5000/nginx"}, "Always"),
    ({"image": "nginx@sha256:abc"}, "IfNotPresent"),
    ({"image": "nginx", "imagePullPolicy": "Never"}, "Never"),
])
def test_pull_policy(container: dict, want: str) -> None:
    assert pull_policy(container) == want


def test_fmt_secs() -> None:
    assert (fmt_secs(0.85), fmt_secs(1.5), fmt_secs(10)) == ("850ms", "1.5s", "10s")


def _puller() -> tuple[ImagePuller, FakeRuntime, FakeClock, list[tuple[str, str, str]]]:
    clock = FakeClock()
    rt = FakeRuntime(now=clock.now)
    events: list[tuple[str, str, str]] = []
    return (ImagePuller(rt, Backoff(clock, 10, 300), clock, "uid-1", lambda *e: events.append(e)),
            rt, clock, events)


async def test_never_pulls_with_policy_never() -> None:
    p, rt, _, _ = _puller()
    with pytest.raises(ImageNeverPullError, match="is not present with pull policy of Never") as e:
        await p.ensure({"name": "c", "image": "nginx:1", "imagePullPolicy": "Never"}, None)
    assert e.value.reason == "ErrImageNeverPull"
    assert not [c for c in rt.calls if c[0] == "pull_image"]


async def test_a_failed_pull_backs_off_until_its_delay_passes() -> None:
    p, rt, clock, events = _puller()
    c = {"name": "c", "image": "nosuch:1"}
    rt.pull_errors["docker.io/library/nosuch:1"] = ImagePullError("nosuch:1", "not found", "not found")
    with pytest.raises(ImagePullError) as e:
        await p.ensure(c, None)
    assert ("Warning", "Failed", "Error: ErrImagePull") in events
    waiting = (e.value.reason, e.value.message)
    with pytest.raises(ImagePullBackOff) as b:
        await p.ensure(c, waiting)
    assert b.value.message == f'Back-off pulling image "nosuch:1": {e.value.message}'
    assert ("Normal", "BackOff", 'Back-off pulling image "nosuch:1"') in events
    assert len([c for c in rt.calls if c[0] == "pull_image"]) == 1
    del rt.pull_errors["docker.io/library/nosuch:1"]
    await clock.advance(11)
    assert (await p.ensure(c, ("ImagePullBackOff", b.value.message))).startswith("sha256:")
    assert events[-1][1] == "Pulled"
