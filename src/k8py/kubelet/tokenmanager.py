"""The kubelet's service-account token manager: tokens for projected serviceAccountToken
sources, requested through the API (TokenRequest bound to the pod) and cached.

`token(pod, source)` returns the cached token of (namespace, account, audience,
expirationSeconds, pod uid) until it needs a refresh, as the kubelet's token manager:
once 80% of its lifetime has passed, or 24 hours after it was issued (each less a jitter
of up to 10 s); then it asks for a new one. A failed refresh keeps serving the old token
while it is still valid; with no valid token it raises `VolumeError` (the mount fails
and is retried). The clock is injected, so the timing is testable.

Invariants: a token is only ever bound to the pod (uid) it is for; `forget(uid)` drops a
pod's tokens when its volumes are torn down.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from k8py.api import resources
from k8py.api.types import Obj
from k8py.api.wellknown import NAMESPACE_DEFAULT
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.clock import Clock, parse_rfc3339
from k8py.kubelet.errors import VolumeError

MAX_TTL = 24 * 3600.0  # refresh at least daily
MAX_JITTER = 10.0
DEFAULT_EXPIRATION = 3600  # a serviceAccountToken source's expirationSeconds when unset


@dataclass(frozen=True)
class CachedToken:
    token: str
    expiration_seconds: int
    expires: float  # epoch seconds

    @property
    def issued(self) -> float:
        return self.expires - self.expiration_seconds


def requires_refresh(t: CachedToken, now: float, jitter: float) -> bool:
    """The kubelet's rule: older than 24 h, or within 20% of its lifetime of expiring."""
    if now > t.issued + MAX_TTL - jitter:
        return True
    return now > t.expires - t.expiration_seconds * 0.2 - jitter


class TokenManager:
    def __init__(self, client: Client, clock: Clock, jitter: Callable[[], float] | None = None) -> None:
        self.client = client
        self.clock = clock
        self.jitter = jitter or (lambda: random.random() * MAX_JITTER)  # noqa: S311 - timing, not secrecy
        self._cache: dict[tuple[str, str, str, int, str], CachedToken] = {}

    async def token(self, pod: Obj, source: Obj) -> bytes:
        """The token for a pod's serviceAccountToken projection `source`."""
        md = pod["metadata"]
        ns = md.get("namespace") or NAMESPACE_DEFAULT
        sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        audience = str(source.get("audience") or "")
        exp_s = int(source.get("expirationSeconds") or DEFAULT_EXPIRATION)
        key = (ns, sa, audience, exp_s, str(md.get("uid", "")))
        cached = self._cache.get(key)
        now = self.clock.now()
        if cached is not None and not requires_refresh(cached, now, self.jitter()):
            return cached.token.encode()
        try:
            fresh = await self._request(pod, ns, sa, audience, exp_s)
        except (ApiError, ValueError, KeyError, TypeError) as e:
            if cached is not None and now < cached.expires:
                return cached.token.encode()  # keep serving it while it is valid
            raise VolumeError(f'failed to fetch token: serviceaccounts "{sa}" token: {e}') from e
        self._cache[key] = fresh
        return fresh.token.encode()

    async def _request(self, pod: Obj, ns: str, sa: str, audience: str, exp_s: int) -> CachedToken:
        md = pod["metadata"]
        spec: Obj = {"expirationSeconds": exp_s,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": md["name"], "uid": md.get("uid")}}
        if audience:
            spec["audiences"] = [audience]
        r = resources.get("serviceaccounts")
        out = await self.client.raw("POST", r.path(ns, sa, "token"), body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
        status = out["status"]
        return CachedToken(str(status["token"]), int((out.get("spec") or {}).get("expirationSeconds") or exp_s),
                           parse_rfc3339(str(status["expirationTimestamp"])))

    def forget(self, pod_uid: str) -> None:
        for key in [k for k in self._cache if k[4] == pod_uid]:
            del self._cache[key]
