"""The root CA publisher (kube-controller-manager's root-ca-cert-publisher).

Every namespace that is not terminating has a ConfigMap `kube-root-ca.crt` whose `ca.crt`
is the cluster CA (what pods' kube-api-access volumes mount to verify the API server),
with Kubernetes' description annotation. Level-triggered on namespace keys: a
namespace's creation, or the ConfigMap's deletion or change, enqueues the namespace and
`sync` creates or restores the ConfigMap (an update is CAS on its resourceVersion; a
conflict is retried by the queue).
"""

from __future__ import annotations

import copy

from k8py.api.types import Obj
from k8py.api.wellknown import ROOT_CA_CONFIGMAP, ROOT_CA_KEY
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.client.events import EventRecorder
from k8py.client.informer import SharedInformerFactory
from k8py.clock import Clock
from k8py.controllers.base import Controller

DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
               "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
               "guaranteed across distributions of Kubernetes clusters.")


class RootCACertPublisher(Controller):
    name = "root-ca-cert-publisher"

    def __init__(self, client: Client, factory: SharedInformerFactory, clock: Clock, root_ca: str,
                 recorder: EventRecorder | None = None, workers: int = 1) -> None:
        super().__init__(client, factory, clock, recorder, workers)
        self.root_ca = root_ca
        self.namespaces = self.informer("namespaces")
        self.configmaps = self.factory.informer("configmaps", field_selector=f"metadata.name={ROOT_CA_CONFIGMAP}")
        if self.configmaps not in self._informers:
            self._informers.append(self.configmaps)
        self.watch(self.namespaces, lambda ns: self.enqueue(ns["metadata"]["name"]))
        self.watch(self.configmaps, self._configmap_changed, self._configmap_changed)

    def _configmap_changed(self, cm: Obj) -> None:
        if cm["metadata"].get("name") == ROOT_CA_CONFIGMAP:
            self.enqueue(str(cm["metadata"].get("namespace") or ""))

    def desired(self, namespace: str) -> Obj:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": namespace,
                             "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                "data": {ROOT_CA_KEY: self.root_ca}}

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(None, key)
        if ns is None or ns["metadata"].get("deletionTimestamp") or \
                (ns.get("status") or {}).get("phase") == "Terminating":
            return
        cm = self.configmaps.get(key, ROOT_CA_CONFIGMAP)
        if cm is None:
            try:
                await self.client.create("configmaps", self.desired(key))
            except ApiError as e:
                if not e.already_exists and e.status != 403:  # 403: the namespace is being deleted
                    raise
            return
        annotations = cm["metadata"].get("annotations") or {}
        if cm.get("data") == {ROOT_CA_KEY: self.root_ca} and annotations.get(DESCRIPTION_ANNOTATION) == DESCRIPTION:
            return
        new = copy.deepcopy(cm)
        new["data"] = {ROOT_CA_KEY: self.root_ca}
        new.pop("binaryData", None)
        new["metadata"].setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = DESCRIPTION
        try:
            await self.client.update("configmaps", new)
        except ApiError as e:
            if not e.not_found:
                raise
            self.enqueue(key)  # deleted meanwhile: create it again
