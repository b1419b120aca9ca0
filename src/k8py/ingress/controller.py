"""The ingress controller's sync: every change to an Ingress, IngressClass, Service,
EndpointSlice or Secret marks the world dirty; one sync renders the whole nginx config
from the informers' caches, loads it (nginx.py: tested first, reloaded only when it
changed) and writes the ingress address into each served Ingress's
status.loadBalancer.ingress (CAS on resourceVersion, retried on conflict).

Invariants: level-triggered (sync reads everything, whatever woke it; a periodic resync
also restarts an nginx that died); a config nginx refuses is logged and the previous
one keeps serving; the IngressClass `k8py` (this controller's, the default class)
exists once the controller runs.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from k8py.api.types import Obj
from k8py.client.client import Client, retry_on_conflict
from k8py.client.errors import ApiError
from k8py.client.informer import Informer, SharedInformerFactory
from k8py.clock import Clock
from k8py.ingress.errors import NginxError
from k8py.ingress.nginx import Nginx
from k8py.ingress.render import (
    CONTROLLER,
    DEFAULT_CLASS,
    DEFAULT_CLASS_ANNOTATION,
    Settings,
    State,
    render,
    serves,
)

log = logging.getLogger(__name__)
RESYNC_SECONDS = 30.0
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class IngressController:
    def __init__(self, client: Client, clock: Clock, settings: Settings, nginx: Nginx) -> None:
        self.client, self.clock, self.s, self.nginx = client, clock, settings, nginx
        self.factory = SharedInformerFactory(client, clock)
        self.ingresses = self._watch("ingresses")
        self.classes = self._watch("ingressclasses")
        self.services = self._watch("services")
        self.slices = self._watch("endpointslices")
        self.secrets = self._watch("secrets")
        self.dirty = asyncio.Event()
        self.syncs = 0

    def _watch(self, resource: str) -> Informer:
        inf = self.factory.informer(resource)
        inf.add_event_handler(lambda _o: self.dirty.set(), lambda _o, _n: self.dirty.set(),
                              lambda _o: self.dirty.set())
        return inf

    async def run(self) -> None:
        self.nginx.prepare()
        await self.ensure_class()
        self.factory.start()
        try:
            await self.factory.wait_synced()
            await self._loop()
        finally:
            self.factory.stop()
            await self.nginx.stop()

    async def _loop(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self.sync()
                backoff = 0.5
            except Exception as e:  # the previous config keeps serving; retried with a back-off
                if isinstance(e, (ApiError, NginxError, OSError)):
                    log.warning("ingress sync failed: %s", e)
                else:  # a bug must not stop the ingress either
                    log.exception("ingress sync failed")
                await self.clock.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            try:
                await asyncio.wait_for(self.dirty.wait(), RESYNC_SECONDS)
            except TimeoutError:
                pass
            await self.clock.sleep(0.05)  # coalesce a burst of events into one sync

    async def ensure_class(self) -> None:
        """Create the IngressClass `k8py` (the default class) if it is missing."""
        if await self.client.get_or_none("ingressclasses", DEFAULT_CLASS) is not None:
            return
        cls = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
               "metadata": {"name": DEFAULT_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
                            "labels": {"app.kubernetes.io/component": "controller"}},
               "spec": {"controller": CONTROLLER}}
        try:
            await self.client.create("ingressclasses", cls)
        except ApiError as e:
            if not e.already_exists:
                raise

    def state(self) -> tuple[State, list[Obj]]:
        """What render() needs, from the caches; and the Ingresses served."""
        classes = self.classes.list()
        served = [i for i in self.ingresses.list() if serves(i, classes)]
        st = State(ingresses=served)
        for svc in self.services.list():
            st.services[_key(svc)] = svc
        for sl in self.slices.list():
            owner = (sl["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
            if owner:
                st.slices.setdefault(f"{sl['metadata'].get('namespace')}/{owner}", []).append(sl)
        for sec in self.secrets.list():
            if sec.get("type") == "kubernetes.io/tls":
                st.secrets[_key(sec)] = sec
        return st, served

    async def sync(self) -> None:
        self.dirty.clear()
        st, served = self.state()
        await self.nginx.apply(render(st, self.s))
        self.syncs += 1
        for ing in served:
            await self._publish(ing)

    async def _publish(self, ing: Obj) -> None:
        """status.loadBalancer.ingress = this controller's address (if not already)."""
        want: list[dict[str, Any]] = [{"ip": self.s.address}]
        if ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") == want:
            return
        md = ing["metadata"]
        first = [True]

        async def write() -> Obj:
            cur = copy.deepcopy(ing) if first[0] else await self.client.get("ingresses", md["name"], md["namespace"])
            first[0] = False
            cur.setdefault("status", {})["loadBalancer"] = {"ingress": want}
            return await self.client.update_status("ingresses", cur)

        try:
            await retry_on_conflict(write)
        except ApiError as e:
            if not e.not_found:
                raise


def _key(obj: Obj) -> str:
    return f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
