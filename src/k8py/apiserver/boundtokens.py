"""Bound service-account tokens checked live, as kube-apiserver's service-account authenticator.

A token (`tokens.TokenIssuer`) names its service account and, when bound, a Pod, Secret
or Node, each with a uid. `LiveObjects` keeps the uid of every object of those kinds
that exists, read from the store at start (`fill`) and kept current by the API
server's watch caches (`observe`; `refill` after a cache lost track of the store, e.g.
behind a compaction). `BoundTokenAuthenticator.review` accepts a token only if it
verifies and every object it names exists now with the same uid.

Invariants: nothing is remembered about deleted objects, so the answer depends only on
the store's current state: a token of a deleted (or deleted and recreated) account, pod,
secret or node is refused after any restart or compaction, as before it. `review`
never raises for bad input.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from k8py.api import resources
from k8py.api.resources import Resource
from k8py.apiserver import storage
from k8py.apiserver.auth import User
from k8py.apiserver.tokens import API_AUDIENCE, TokenIssuer, user_from_claims
from k8py.store.protocol import Store

log = logging.getLogger(__name__)

# The kinds a token may name (its account and what it is bound to), by claim name.
CLAIM_KINDS = {"serviceaccount": "serviceaccounts", "pod": "pods", "secret": "secrets", "node": "nodes"}
EXTRA_PREFIX = "authentication.kubernetes.io/"


def _res(plural: str) -> Resource:
    r = resources.lookup("", plural)
    assert r is not None, plural
    return r


class LiveObjects:
    """Storage key -> uid of every ServiceAccount, Pod, Secret and Node that exists."""

    def __init__(self) -> None:
        self.uids: dict[str, str] = {}
        self._filling: dict[str, int] | None = None  # keys seen by `observe` during a fill -> revision
        self._tasks: set[asyncio.Task[None]] = set()

    @staticmethod
    def prefixes() -> list[str]:
        return [storage.prefix(_res(p)) for p in CLAIM_KINDS.values()]

    def observe(self, e: Any) -> None:
        """A watch cache event (`watchcache.CacheEvent`) under one of `prefixes()`."""
        if self._filling is not None:
            self._filling[e.key] = e.revision
        if e.type != "PUT":
            self.uids.pop(e.key, None)
            return
        if e.key in self.uids and not e.created:
            return  # an update keeps the uid
        try:
            uid = json.loads(e.value).get("metadata", {}).get("uid")
        except (ValueError, AttributeError):
            return
        if isinstance(uid, str):
            self.uids[e.key] = uid

    async def fill(self, store: Store, prefixes: Collection[str] | None = None) -> None:
        """Read the objects from the store; events observed meanwhile win over the list."""
        self._filling = {}
        try:
            for prefix in prefixes or self.prefixes():
                try:
                    listed = await store.list(prefix)
                except Exception as e:  # noqa: BLE001 - e.g. Secrets the encryption key cannot read
                    log.warning("reading %s for token checks failed (tokens bound to them are refused): %s",
                                prefix, e)
                    continue
                for kv in listed.items:
                    if self._filling.get(kv.key, 0) > listed.revision:
                        continue
                    uid = _uid(kv.value)
                    if uid is not None:
                        self.uids[kv.key] = uid
                present = {kv.key for kv in listed.items}
                for key in [k for k in self.uids if k.startswith(prefix) and k not in present]:
                    if self._filling.get(key, 0) <= listed.revision:
                        del self.uids[key]
        finally:
            self._filling = None

    def refill(self, store: Store, prefix: str) -> None:
        """Re-read one prefix in the background (its watch cache restarted and may have
        missed events)."""
        t = asyncio.ensure_future(self._refill(store, prefix))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _refill(self, store: Store, prefix: str) -> None:
        try:
            await self.fill(store, [prefix])
        except Exception:
            log.exception("re-reading %s for token checks failed", prefix)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def uid(self, plural: str, namespace: str | None, name: str) -> str | None:
        r = _res(plural)
        return self.uids.get(storage.key(r, namespace if r.namespaced else None, name))


def _uid(value: bytes) -> str | None:
    try:
        uid = json.loads(value).get("metadata", {}).get("uid")
    except (ValueError, AttributeError):
        return None
    return uid if isinstance(uid, str) else None


@dataclass(frozen=True)
class Review:
    """What TokenReview reports of an accepted token."""

    user: User
    uid: str
    audiences: list[str]
    extra: dict[str, list[str]] = field(default_factory=dict)


class BoundTokenAuthenticator:
    """Service-account tokens of `issuer()` whose account and bound objects are alive."""

    def __init__(self, issuer: Callable[[], TokenIssuer], live: LiveObjects) -> None:
        self.issuer = issuer
        self.live = live

    def authenticate(self, token: str) -> User | None:
        """Authenticator hook (the API server's audience)."""
        r = self.review(token)
        return None if r is None else r.user

    def review(self, token: str, audiences: Collection[str] = (API_AUDIENCE,)) -> Review | None:
        if token.count(".") != 2:
            return None
        claims = self.issuer().verify(token, audiences)
        user = user_from_claims(claims) if claims is not None else None
        if claims is None or user is None:
            return None
        k8s = claims["kubernetes.io"]
        ns = k8s["namespace"]
        for claim, plural in CLAIM_KINDS.items():
            ref = k8s.get(claim)
            if claim == "node" and "pod" in k8s:
                continue  # a pod-bound token names its node for information only
            if ref is None:
                continue
            if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
                return None
            live = self.live.uid(plural, ns, ref["name"])
            if live is None or live != ref.get("uid"):
                return None
        auds = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        return Review(user, str(k8s["serviceaccount"].get("uid", "")), [a for a in audiences if a in auds],
                      _extra(claims, k8s))


def _extra(claims: dict[str, Any], k8s: dict[str, Any]) -> dict[str, list[str]]:
    """The user's extra info, as Kubernetes reports it for a service-account token."""
    out: dict[str, list[str]] = {}
    if isinstance(claims.get("jti"), str):
        out[EXTRA_PREFIX + "credential-id"] = ["JTI=" + claims["jti"]]
    for claim in ("pod", "node"):
        ref = k8s.get(claim)
        if isinstance(ref, dict):
            out[f"{EXTRA_PREFIX}{claim}-name"] = [str(ref.get("name", ""))]
            out[f"{EXTRA_PREFIX}{claim}-uid"] = [str(ref.get("uid", ""))]
    return dict(sorted(out.items()))
