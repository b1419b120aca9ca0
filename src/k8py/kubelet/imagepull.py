"""A pod's image pulls, as the kubelet's image manager: the pull policy, the events
(Pulling, Pulled, Failed, BackOff) and Kubernetes' pull back-off.

`pull_policy(container)` is the container's imagePullPolicy, or what Kubernetes
defaults it to (Always for `:latest` or no tag, else IfNotPresent). `ensure` makes the
image present per that policy and returns its id.
Invariants: after a failed pull, no pull of that image for that pod is tried until its
back-off (the node's Backoff, key `image/<uid>/<image>`) expires; a successful pull
forgets the back-off.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from k8py.api.types import Obj
from k8py.clock import Clock
from k8py.kubelet.backoff import Backoff
from k8py.kubelet.errors import ImagePullBackOff
from k8py.runtime.errors import ImageNeverPullError, ImagePullError, ImageRefError
from k8py.runtime.protocol import ContainerRuntime

EventFn = Callable[[str, str, str], None]  # (type, reason, message)


def pull_policy(c: Obj) -> str:
    p = c.get("imagePullPolicy")
    if p:
        return str(p)
    image = c.get("image", "")
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def fmt_secs(s: float) -> str:
    """A duration as Kubernetes' events print it: 850ms, 1.5s, 10s."""
    if s < 1:
        return f"{s * 1000:.0f}ms"
    return f"{s:.3g}s"


class ImagePuller:
    """The image pulls of one pod (uid), reporting through `event`."""

    def __init__(self, runtime: ContainerRuntime, backoff: Backoff, clock: Clock, uid: str,
                 event: EventFn) -> None:
        self.runtime = runtime
        self.backoff = backoff
        self.clock = clock
        self.uid = uid
        self.event = event
        self._failed_at: dict[str, float] = {}  # back-off key -> time of the last failed pull

    async def ensure(self, c: Obj, waiting: tuple[str, str] | None) -> str:
        """The id of container `c`'s image, pulled if its policy says so; `waiting` is the
        container's current (reason, message). Raises ImageNeverPullError, ImagePullBackOff,
        or the runtime's ImagePullError / ImageRefError of a failed pull."""
        image = c.get("image", "")
        policy = pull_policy(c)
        present = await self.runtime.image_status(image)
        if policy == "Never":
            if present is None:
                raise ImageNeverPullError(f'Container image "{image}" is not present with pull policy of Never')
            return present.id
        if present is not None and policy == "IfNotPresent":
            self.event("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return present.id
        key = f"image/{self.uid}/{image}"
        self._check_backoff(key, image, waiting)
        return await self._pull(key, image)

    def _check_backoff(self, key: str, image: str, waiting: tuple[str, str] | None) -> None:
        """Raises ImagePullBackOff while the back-off of the last failed pull runs."""
        if not waiting or waiting[0] not in ("ErrImagePull", "ImagePullBackOff"):
            return
        if not self.backoff.in_backoff_since(key, self._failed_at.get(key, 0.0)):
            return
        reason, message = waiting
        if reason != "ImagePullBackOff":
            self.event("Normal", "BackOff", f'Back-off pulling image "{image}"')
        self.event("Warning", "Failed", "Error: ImagePullBackOff")
        raise ImagePullBackOff(message if message.startswith("Back-off")
                               else f'Back-off pulling image "{image}": {message}')

    async def _pull(self, key: str, image: str) -> str:
        self.event("Normal", "Pulling", f'Pulling image "{image}"')
        t0 = time.monotonic()
        try:
            image_id = await self.runtime.pull_image(image)
        except (ImagePullError, ImageRefError) as e:  # the registry's message goes to the user
            self.event("Warning", "Failed", f'Failed to pull image "{image}": {e.message}')
            self.event("Warning", "Failed", "Error: ErrImagePull")
            self._failed_at[key] = self.clock.now()
            self.backoff.next(key, self.clock.now())
            raise
        dt = time.monotonic() - t0
        ist = await self.runtime.image_status(image)
        size = f" Image size: {ist.size} bytes." if ist else ""
        self.event("Normal", "Pulled", f'Successfully pulled image "{image}" in {fmt_secs(dt)} '
                                       f"({fmt_secs(dt)} including waiting).{size}")
        self.backoff.forget_prefix(key)
        return image_id
