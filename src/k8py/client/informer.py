"""Informer: a local, watch-fed cache of one resource, as client-go's reflector + indexer.

`run()` lists (paginated), then watches from the list's resourceVersion; a 410 Gone
(as an ApiError or an ERROR event) relists; other failures relist after an
exponential back-off on the Clock. On relist the cache is replaced and handlers see
the difference (add, update for a changed resourceVersion, delete for what vanished).

Invariants:
- The cache is plain dicts keyed "namespace/name" (or "name" when cluster-scoped);
  handlers and readers must not mutate cached objects (copy before changing).
- Handlers (sync functions, or coroutines which are awaited in order) are called in
  event order from the informer's own task; a handler that raises is logged and
  does not stop the informer.
- `has_synced` becomes true after the first full list has been delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from k8py.api import resources
from k8py.api.types import Obj, ObjectMeta
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.clock import Clock, RealClock

log = logging.getLogger(__name__)

AddHandler = Callable[[Obj], Awaitable[None] | None]
UpdateHandler = Callable[[Obj, Obj], Awaitable[None] | None]
IndexFunc = Callable[[Obj], Iterable[str]]
ObjList = list[Obj]  # (inside Informer, `list` names the method)
KeyList = list[str]

LIST_PAGE_SIZE = 500


def object_key(obj: Obj) -> str:
    """The cache key of an object: "namespace/name", or "name" when cluster-scoped."""
    md = _meta(obj)
    ns = md.get("namespace")
    return f"{ns}/{md.get('name')}" if ns else str(md.get("name"))


def split_key(key: str) -> tuple[str | None, str]:
    """(namespace or None, name) of a cache key."""
    if "/" in key:
        ns, name = key.split("/", 1)
        return ns, name
    return None, key


def namespace_index(obj: Obj) -> list[str]:
    return [obj.get("metadata", {}).get("namespace") or ""]


class _Handler:
    __slots__ = ("on_add", "on_update", "on_delete")

    def __init__(self, on_add: AddHandler | None, on_update: UpdateHandler | None,
                 on_delete: AddHandler | None) -> None:
        self.on_add = on_add
        self.on_update = on_update
        self.on_delete = on_delete


class Informer:
    def __init__(self, client: Client, resource: str | resources.Resource,
                 namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, *, clock: Clock | None = None,
                 backoff_initial: float = 0.8, backoff_max: float = 30.0) -> None:
        self.client = client
        self.resource = resource if isinstance(resource, resources.Resource) else resources.get(resource)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.clock: Clock = clock or RealClock()
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._cache: dict[str, Obj] = {}
        self._handlers: list[_Handler] = []
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self._synced = asyncio.Event()
        self.resource_version: str = ""
        self.relists = 0  # how many times run() listed (for tests and metrics)

    # -- registration ---------------------------------------------------------
    def add_event_handler(self, on_add: AddHandler | None = None,
                          on_update: UpdateHandler | None = None,
                          on_delete: AddHandler | None = None) -> None:
        """Register handlers. A handler registered after sync sees adds for the cache."""
        h = _Handler(on_add, on_update, on_delete)
        self._handlers.append(h)
        if self._synced.is_set() and on_add is not None:
            for obj in list(self._cache.values()):
                r = on_add(obj)
                if inspect.isawaitable(r):
                    asyncio.ensure_future(r)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        self._index_funcs[name] = fn
        idx: dict[str, set[str]] = {}
        for key, obj in self._cache.items():
            for v in fn(obj):
                idx.setdefault(v, set()).add(key)
        self._indices[name] = idx

    # -- reads ----------------------------------------------------------------
    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self._cache.get(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> Obj | None:
        return self._cache.get(key)

    def list(self) -> ObjList:
        return list(self._cache.values())

    def keys(self) -> KeyList:
        return list(self._cache.keys())

    def by_index(self, name: str, value: str) -> ObjList:
        keys = self._indices[name].get(value, ())
        return [self._cache[k] for k in keys if k in self._cache]

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    # -- cache maintenance ----------------------------------------------------
    def _index_add(self, key: str, obj: Obj) -> None:
        for name, fn in self._index_funcs.items():
            idx = self._indices[name]
            for v in fn(obj):
                idx.setdefault(v, set()).add(key)

    def _index_remove(self, key: str, obj: Obj) -> None:
        for name, fn in self._index_funcs.items():
            idx = self._indices[name]
            for v in fn(obj):
                s = idx.get(v)
                if s is not None:
                    s.discard(key)
                    if not s:
                        del idx[v]

    async def _call(self, fn: Callable[..., Awaitable[None] | None] | None, *args: Obj) -> None:
        if fn is None:
            return
        try:
            r = fn(*args)
            if inspect.isawaitable(r):
                await r
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("informer %s: handler failed", self.resource.plural)

    async def _apply(self, etype: str, obj: Obj) -> None:
        key = object_key(obj)
        old = self._cache.get(key)
        if etype == "DELETED":
            if old is None:
                return
            del self._cache[key]
            self._index_remove(key, old)
            for h in self._handlers:
                await self._call(h.on_delete, obj)
            return
        if old is not None:
            self._index_remove(key, old)
        self._cache[key] = obj
        self._index_add(key, obj)
        for h in self._handlers:
            if old is None:
                await self._call(h.on_add, obj)
            else:
                await self._call(h.on_update, old, obj)

    async def _replace(self, items: ObjList) -> None:
        fresh = {object_key(o): o for o in items}
        for key in [k for k in self._cache if k not in fresh]:
            await self._apply("DELETED", self._cache[key])
        for key, obj in fresh.items():
            old = self._cache.get(key)
            if old is not None and _rv(old) == _rv(obj):
                continue
            await self._apply("MODIFIED", obj)

    # -- list and watch -------------------------------------------------------
    async def _list(self) -> None:
        items: ObjList = []
        rv = ""
        cont: str | None = None
        while True:
            page = await self.client.list(self.resource, self.namespace,
                                          label_selector=self.label_selector,
                                          field_selector=self.field_selector,
                                          limit=LIST_PAGE_SIZE, continue_=cont)
            md = page.get("metadata") or {}
            if not rv:
                rv = str(md.get("resourceVersion", ""))
            items.extend(page.get("items") or [])
            cont = md.get("continue") or None
            if not cont:
                break
        kind = self.resource.kind
        for o in items:  # list items carry no apiVersion/kind; watch objects do
            o.setdefault("apiVersion", self.resource.api_version)
            o.setdefault("kind", kind)
        self.relists += 1
        await self._replace(items)
        self.resource_version = rv
        self._synced.set()

    async def _watch(self) -> bool:
        """Watch from resource_version until the stream ends. True: must relist."""
        stream: Any = self.client.watch(self.resource, self.namespace,
                                   resource_version=self.resource_version,
                                   label_selector=self.label_selector,
                                   field_selector=self.field_selector)
        async with contextlib.aclosing(stream):  # close the server's watcher when we stop
            return await self._consume(stream)

    async def _consume(self, stream: Any) -> bool:
        async for ev in stream:
            etype = ev.get("type")
            obj = ev.get("object") or {}
            if etype == "ERROR":
                code = obj.get("code")
                if code != 410:
                    raise ApiError(int(code or 500), obj)
                log.info("informer %s: watch expired: %s", self.resource.plural, obj.get("message"))
                return True
            rv = str((obj.get("metadata") or {}).get("resourceVersion", ""))
            if etype == "BOOKMARK":
                if rv:
                    self.resource_version = rv
                continue
            if etype in ("ADDED", "MODIFIED", "DELETED"):
                await self._apply(str(etype), obj)
                if rv:
                    self.resource_version = rv
        return False

    async def run(self) -> None:
        """List and watch until cancelled."""
        delay = self.backoff_initial
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    delay = self.backoff_initial
                need_list = await self._watch()
                await asyncio.sleep(0)
                continue  # stream ended: watch again; 410 or an error event: relist now
            except asyncio.CancelledError:
                raise
            except ApiError as e:
                if e.gone:
                    need_list = True
                    continue
                log.warning("informer %s: %s; retrying in %.1fs", self.resource.plural, e, delay)
                need_list = True
            except Exception as e:  # transport failures: back off and relist
                log.warning("informer %s: %r; retrying in %.1fs", self.resource.plural, e, delay)
                need_list = True
            await self.clock.sleep(delay)
            delay = min(self.backoff_max, delay * 2)


def _meta(obj: Obj) -> ObjectMeta:
    return cast(ObjectMeta, obj.get("metadata") or {})


def _rv(obj: Obj) -> str | None:
    return _meta(obj).get("resourceVersion")


class SharedInformerFactory:
    """One informer per (resource, namespace, selectors), shared by the components of
    one process. Create informers, register handlers, then `start()` (or `run()`)."""

    def __init__(self, client: Client, clock: Clock | None = None) -> None:
        self.client = client
        self.clock: Clock = clock or RealClock()
        self._informers: dict[tuple[str, str | None, str | None, str | None], Informer] = {}
        self._tasks: dict[tuple[str, str | None, str | None, str | None], asyncio.Task[None]] = {}

    def informer(self, resource: str | resources.Resource, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None) -> Informer:
        r = resource if isinstance(resource, resources.Resource) else resources.get(resource)
        key = (f"{r.plural}.{r.group}", namespace, label_selector, field_selector)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, r, namespace, label_selector=label_selector,
                           field_selector=field_selector, clock=self.clock)
            self._informers[key] = inf
        return inf

    def remove(self, resource: resources.Resource, namespace: str | None = None) -> None:
        """Stop and forget the informer of a resource that is no longer served (a deleted CRD's)."""
        key = (f"{resource.plural}.{resource.group}", namespace, None, None)
        self._informers.pop(key, None)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    def start(self) -> None:
        """Start every informer not yet running, as tasks of the running loop."""
        for key, inf in self._informers.items():
            if key not in self._tasks:
                self._tasks[key] = asyncio.get_running_loop().create_task(inf.run())

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.wait_synced() for i in self._informers.values()))

    async def run(self) -> None:
        """Start the informers and wait until cancelled (then stop them)."""
        self.start()
        try:
            await asyncio.gather(*self._tasks.values())
        finally:
            self.stop()

    def stop(self) -> None:
        for t in self._tasks.values():
            t.cancel()
        self._tasks.clear()

    async def shutdown(self) -> None:
        """Stop every informer and wait until they have stopped."""
        tasks = list(self._tasks.values())
        self.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
