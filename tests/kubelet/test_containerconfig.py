"""Sandbox and container configs from pod specs: DNS policies, QoS, resources, security."""

from __future__ import annotations

from typing import Any

import pytest

from k8py.kubelet.containerconfig import ClusterSettings, container_config, dns_config, qos_class, sandbox_config

S = ClusterSettings("10.43.0.10", "cluster.local", "/logs")


def _pod(**spec: Any) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns1", "uid": "u1"}, "spec": spec}


def test_cluster_first_dns() -> None:
    d = dns_config(_pod(), S)
    assert d is not None
    assert (d.servers, d.searches, d.options) == (
        ["10.43.0.10"], ["ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"], ["ndots:5"])


def test_none_dns_uses_only_dns_config() -> None:
    d = dns_config(_pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["1.2.3.4"], "searches": ["a.b"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}), S)
    assert d is not None and (d.servers, d.searches, d.options) == (["1.2.3.4"], ["a.b"], ["ndots:2", "edns0"])


@pytest.mark.parametrize("spec", [dict(dnsPolicy="Default"), dict(hostNetwork=True)])
def test_host_dns(spec: dict) -> None:
    assert dns_config(_pod(**spec), S) is None  # the runtime copies the host's resolv.conf


def test_cluster_first_with_host_net() -> None:
    d = dns_config(_pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), S)
    assert d is not None and d.servers == ["10.43.0.10"]


def test_sandbox_config() -> None:
    sb = sandbox_config(_pod(hostname="h", hostAliases=[{"ip": "1.1.1.1", "hostnames": ["a", "b"]}]), S)
    assert (sb.name, sb.namespace, sb.uid, sb.hostname) == ("p", "ns1", "u1", "h")
    assert sb.log_directory == "/logs/ns1_p_u1" and sb.extra_hosts == [("1.1.1.1", "a b")]
    assert sb.labels["io.kubernetes.pod.uid"] == "u1"


@pytest.mark.parametrize("containers, want", [
    ([{"name": "a"}], "BestEffort"),
    ([{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}], "Guaranteed"),
    ([{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}],
     "Guaranteed"),
    ([{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}}], "Burstable"),
    ([{"name": "a", "resources": {"requests": {"memory": "1Gi"}}}], "Burstable"),
    ([{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}, {"name": "b"}], "Burstable"),
])
def test_qos_class(containers: list[dict], want: str) -> None:
    assert qos_class(_pod(containers=containers)) == want


def test_container_config_resources_and_security() -> None:
    pod = _pod(securityContext={"runAsUser": 1000, "runAsGroup": 3000})
    c = {"name": "c", "resources": {"limits": {"cpu": "250m", "memory": "128Mi"}},
         "securityContext": {"runAsUser": 33, "readOnlyRootFilesystem": True,
                             "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}, "workingDir": "/w"}
    cfg = container_config(pod, c, image="busybox", env=[], mounts=[], attempt=2, kind="regular",
                           command=["sh"], args=None)
    assert (cfg.memory_limit_bytes, cfg.cpu_limit_millis, cfg.cpu_request_millis) == (128 << 20, 250, 250)
    assert (cfg.run_as_user, cfg.run_as_group, cfg.read_only_rootfs) == (33, 3000, True)
    assert (cfg.cap_add, cfg.cap_drop, cfg.working_dir, cfg.attempt) == (["NET_ADMIN"], ["ALL"], "/w", 2)
