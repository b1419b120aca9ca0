"""ClusterRole aggregation (Kubernetes' clusterrole-aggregation controller).

A ClusterRole with an `aggregationRule` gets as its rules the union of the rules of every
other ClusterRole that one of its `clusterRoleSelectors` selects (by ClusterRole name,
then rule order; a rule already present is not repeated). Any ClusterRole change
enqueues every aggregated ClusterRole; `sync` reads the informer cache and writes the
rules only when they differ (CAS on resourceVersion, retried on conflict by the queue).
This is how `admin`, `edit` and `view` get their rules from the
`rbac.authorization.k8s.io/aggregate-to-*` labelled roles, and how a user extends them.
"""

from __future__ import annotations

import logging
from typing import Any

from k8py.api.errors import SelectorError
from k8py.api.selectors import label_selector_from_dict
from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import EventRecorder
from k8py.client.informer import SharedInformerFactory
from k8py.clock import Clock
from k8py.controllers.base import Controller

log = logging.getLogger(__name__)


class ClusterRoleAggregationController(Controller):
    name = "clusterrole-aggregation-controller"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock,
                 recorder: EventRecorder | None = None, workers: int = 1) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.roles = self.informer("clusterroles")
        self.watch(self.roles, self._changed, self._changed)

    def _changed(self, _obj: Obj) -> None:
        for cr in self.roles.list():
            if cr.get("aggregationRule"):
                self.enqueue(cr["metadata"]["name"])

    async def sync(self, key: str) -> None:
        cr = self.roles.get(None, key)
        if cr is None or not isinstance(cr.get("aggregationRule"), dict):
            return
        rules = aggregate(cr, self.roles.list())
        if rules == (cr.get("rules") or []):
            return
        new = dict(cr)
        new["rules"] = rules
        try:
            await self.client.update("clusterroles", new)
        except ApiError as e:
            if e.status == 404:
                return
            raise


def aggregate(cr: Obj, all_roles: list[Obj]) -> list[Any]:
    """The rules `cr`'s aggregationRule selects, in Kubernetes' order."""
    name = cr["metadata"]["name"]
    rules: list[Any] = []
    for sel in (cr.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
        try:
            selector = label_selector_from_dict(sel if isinstance(sel, dict) else {})
        except SelectorError:
            continue
        for other in sorted(all_roles, key=lambda o: o["metadata"]["name"]):
            if other["metadata"]["name"] == name or not selector.matches(other["metadata"].get("labels") or {}):
                continue
            for r in other.get("rules") or []:
                if r not in rules:
                    rules.append(r)
    return rules
