"""LIST: selectors, pagination with opaque continue tokens, Table output.

A continue token is base64(JSON {"k": last key returned, "rv": revision of the
first page}); later pages report that revision. A token whose revision was
compacted answers 410 Expired, as Kubernetes does. With a selector, pages are
filled up to `limit` matching items (scanning further keys as needed). Lists and
their later pages are served from the watch cache when it is consistent with the
store (`WatchCache.reader`), else from the store: the same items and tokens either way.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable

from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import storage
from k8py.apiserver.errors import bad_request, gone
from k8py.apiserver.selection import Selection
from k8py.apiserver.watchcache import WatchCache
from k8py.store.protocol import ListResult, Store

CONTINUE_TOO_OLD = ("The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter, or use the continue "
                    "token in this response to retrieve the remainder of the results. Continuing with "
                    "the provided token results in an inconsistent list - objects that were created, "
                    "modified, or deleted between the time the first chunk was returned and now may "
                    "show up in the list.")


# How long a consistent list waits for the watch cache to reach the store's revision
# before reading the store instead (kube-apiserver waits up to 3 s, then fails over too).
CONSISTENT_WAIT = 0.5
Pager = Callable[[str, str | None, int], Awaitable[ListResult]]


def _store_pager(store: Store) -> Pager:
    async def page(prefix: str, start_after: str | None, limit: int) -> ListResult:
        return await store.list(prefix, start_after=start_after, limit=limit)
    return page


def encode_continue(key: str, rev: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": key, "rv": rev}).encode()).decode()


def decode_continue(token: str, prefix: str) -> tuple[str, int]:
    try:
        d = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        key, rev = d["k"], d["rv"]
        if not isinstance(key, str) or not isinstance(rev, int) or not key.startswith(prefix):
            raise ValueError("token does not belong to this list")
        return key, rev
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as e:
        raise bad_request(f"continue key is not valid: {e}") from None


async def list_objects(store: Store, r: Resource, namespace: str | None, sel: Selection,
                       limit: int | None, continue_token: str | None,
                       cache: WatchCache | None = None) -> tuple[list[Obj], int, str | None]:
    """(items, list revision, continue token or None). With the resource's watch cache,
    from the cache when it has caught up with the store's current revision (a
    consistent read, as kube-apiserver serves them since 1.31), else from the store."""
    prefix = storage.prefix(r, namespace)
    start_after: str | None = None
    first_rev: int | None = None
    if continue_token:
        start_after, first_rev = decode_continue(continue_token, prefix)
        if first_rev < store.compacted_revision:
            raise gone(CONTINUE_TOO_OLD)
    if limit is not None and limit < 0:
        raise bad_request("limit must be a non-negative integer")
    page: Pager = _store_pager(store)
    if cache is not None:
        page = await cache.reader(CONSISTENT_WAIT) or page
    items: list[Obj] = []
    chunk = max(limit, 100) if limit else 0
    while True:
        res = await page(prefix, start_after, chunk)
        if first_rev is None:
            first_rev = res.revision
        for i, kv in enumerate(res.items):
            obj = storage.from_kv(r, kv)
            if not sel.matches(obj):
                continue
            items.append(obj)
            if limit and len(items) >= limit:
                more = i < len(res.items) - 1 or res.more
                return items, first_rev, (encode_continue(kv.key, first_rev) if more else None)
        if not res.more or not res.items:
            return items, first_rev, None
        start_after = res.items[-1].key


def list_body(r: Resource, items: list[Obj], rev: int, cont: str | None) -> Obj:
    md: Obj = {"resourceVersion": str(rev)}
    if cont:
        md["continue"] = cont
    return {"kind": r.list_kind_name, "apiVersion": r.api_version, "metadata": md, "items": items}
