"""Service environment variables, as Kubernetes' FromServices, and how a container's own win."""

from __future__ import annotations

import pytest

from k8py.kubelet.envvars import build_env
from k8py.kubelet.errors import ContainerConfigError
from k8py.kubelet.serviceenv import from_service, service_env


def svc(name: str, ip: str, *ports: dict) -> dict:
    return {"metadata": {"name": name}, "spec": {"clusterIP": ip, "ports": list(ports)}}


@pytest.mark.parametrize("service, want", [
    (svc("kubernetes", "10.43.0.1", {"name": "https", "port": 443, "protocol": "TCP"}), {
        "KUBERNETES_SERVICE_HOST": "10.43.0.1", "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.43.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.43.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.43.0.1"}),
    (svc("my-dns", "10.43.0.10", {"name": "dns", "port": 53, "protocol": "UDP"}, {"port": 53}), {
        "MY_DNS_SERVICE_HOST": "10.43.0.10", "MY_DNS_SERVICE_PORT": "53", "MY_DNS_SERVICE_PORT_DNS": "53",
        "MY_DNS_PORT": "udp://10.43.0.10:53",
        "MY_DNS_PORT_53_UDP": "udp://10.43.0.10:53", "MY_DNS_PORT_53_UDP_PROTO": "udp",
        "MY_DNS_PORT_53_UDP_PORT": "53", "MY_DNS_PORT_53_UDP_ADDR": "10.43.0.10",
        "MY_DNS_PORT_53_TCP": "tcp://10.43.0.10:53", "MY_DNS_PORT_53_TCP_PROTO": "tcp",
        "MY_DNS_PORT_53_TCP_PORT": "53", "MY_DNS_PORT_53_TCP_ADDR": "10.43.0.10"}),
    (svc("headless", "None", {"port": 80}), {}),
])
def test_from_service(service: dict, want: dict) -> None:
    assert from_service(service) == want


async def test_container_env_wins_and_sees_service_env() -> None:
    async def lookup(kind: str, ns: str, name: str) -> None:
        return None

    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {}}
    c = {"name": "c", "env": [{"name": "KUBERNETES_SERVICE_PORT", "value": "1"},
                              {"name": "URL", "value": "https://$(KUBERNETES_SERVICE_HOST):443"}]}
    env = dict(await build_env(pod, c, lookup, service_env={"KUBERNETES_SERVICE_HOST": "10.43.0.1",
                                                            "KUBERNETES_SERVICE_PORT": "443"}))
    assert env == {"KUBERNETES_SERVICE_PORT": "1", "URL": "https://10.43.0.1:443",
                   "KUBERNETES_SERVICE_HOST": "10.43.0.1"}


class FakeServices:
    """A ServiceLister over a list of Services (an informer's cache)."""

    def __init__(self, items: list[dict], synced: bool = True) -> None:
        self.items, self.synced = items, synced

    @property
    def has_synced(self) -> bool:
        return self.synced

    def get(self, namespace: str | None, name: str) -> dict | None:
        return next((s for s in self.items if (s["metadata"]["namespace"], s["metadata"]["name"]) == (namespace, name)),
                    None)

    def by_index(self, name: str, value: str) -> list[dict]:
        assert name == "namespace"
        return [s for s in self.items if s["metadata"]["namespace"] == value]


def nsvc(ns: str, name: str, ip: str) -> dict:
    s = svc(name, ip, {"port": 80})
    s["metadata"]["namespace"] = ns
    return s


SERVICES = [nsvc("default", "kubernetes", "10.43.0.1"), nsvc("default", "web", "10.43.0.5"),
            nsvc("shop", "db", "10.43.0.7"), nsvc("shop", "kubernetes", "10.43.0.9")]


@pytest.mark.parametrize("namespace, links, hosts", [
    ("default", True, {"KUBERNETES": "10.43.0.1", "WEB": "10.43.0.5"}),
    ("default", False, {"KUBERNETES": "10.43.0.1"}),
    ("shop", True, {"KUBERNETES": "10.43.0.9", "DB": "10.43.0.7"}),  # the namespace's own wins
    ("shop", False, {"KUBERNETES": "10.43.0.1"}),
    ("empty", True, {"KUBERNETES": "10.43.0.1"}),
])
def test_service_env_from_lister(namespace: str, links: bool, hosts: dict) -> None:
    pod = {"metadata": {"name": "p", "namespace": namespace}, "spec": {"enableServiceLinks": links}}
    env = service_env(FakeServices(SERVICES), pod)
    assert {k[:-len("_SERVICE_HOST")]: v for k, v in env.items() if k.endswith("_SERVICE_HOST")} == hosts


def test_service_env_waits_for_the_first_list() -> None:
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {}}
    with pytest.raises(ContainerConfigError, match="services have not yet been read"):
        service_env(FakeServices(SERVICES, synced=False), pod)
