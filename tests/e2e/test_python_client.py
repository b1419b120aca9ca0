# mypy: disable-error-code="union-attr,index,arg-type"
"""The official `kubernetes` Python client, used as a user would: typed CRUD, patch, selectors,
and a watch that survives 410 Gone by relisting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from e2e_harness import K8pyServer

pytestmark = pytest.mark.e2e

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402


@pytest.fixture(scope="module")
def small_history_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8pyServer]:
    # A 2-event watch cache: old resourceVersions fall through to the (compacted) store.
    s = K8pyServer(tmp_path_factory.mktemp("k8py-410") / "data", env={"K8PY_WATCH_HISTORY": "2"}).start()
    yield s
    s.stop()


def api_client(s: K8pyServer) -> Any:
    return config.new_client_from_config(config_file=str(s.kubeconfig))


def test_typed_crud_patch_and_selectors(cluster: K8pyServer) -> None:
    with api_client(cluster) as ac:
        core = client.CoreV1Api(ac)
        apps = client.AppsV1Api(ac)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="pyclient")))
        cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c1", labels={"team": "a"}), data={"k": "v"})
        created = core.create_namespaced_config_map("pyclient", cm)
        assert created.metadata.uid and created.metadata.resource_version
        core.create_namespaced_config_map("pyclient", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="c2", labels={"team": "b"})))
        got = core.read_namespaced_config_map("c1", "pyclient")
        got.data["k"] = "v2"
        replaced = core.replace_namespaced_config_map("c1", "pyclient", got)
        assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
        patched = core.patch_namespaced_config_map("c1", "pyclient", {"metadata": {"labels": {"extra": "yes"}}})
        assert patched.metadata.labels == {"team": "a", "extra": "yes"}
        names = [i.metadata.name for i in core.list_namespaced_config_map("pyclient", label_selector="team=b").items]
        assert names == ["c2"]
        names = [i.metadata.name for i in core.list_namespaced_config_map(
            "pyclient", field_selector="metadata.name=c1").items]
        assert names == ["c1"]
        dep = client.V1Deployment(
            metadata=client.V1ObjectMeta(name="d"),
            spec=client.V1DeploymentSpec(
                replicas=2, selector=client.V1LabelSelector(match_labels={"app": "d"}),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels={"app": "d"}),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]))))
        d = apps.create_namespaced_deployment("pyclient", dep)
        assert d.spec.template.spec.containers[0].image_pull_policy == "Always"  # defaulted
        scale = apps.patch_namespaced_deployment_scale("d", "pyclient", {"spec": {"replicas": 3}})
        assert scale.spec.replicas == 3
        core.delete_namespaced_config_map("c2", "pyclient")
        with pytest.raises(ApiException) as e:
            core.read_namespaced_config_map("c2", "pyclient")
        assert e.value.status == 404


def test_watch_survives_410_by_relisting(small_history_cluster: K8pyServer) -> None:
    s = small_history_cluster
    with api_client(s) as ac:
        core = client.CoreV1Api(ac)
        old_rv = core.list_namespaced_config_map("default").metadata.resource_version
        for i in range(5):
            core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"w{i}")))
        r = ac.call_api("POST", ac.configuration.host + "/debug/k8py/compact",
                        header_params={"Content-Type": "application/json", "Accept": "application/json"})
        assert r.status == 200
        seen: list[str] = []
        gone = 0
        rv = old_rv
        created_late = False
        for _attempt in range(4):
            w = watch.Watch()
            try:
                for ev in w.stream(core.list_namespaced_config_map, "default", resource_version=rv,
                                   timeout_seconds=20):
                    seen.append(ev["object"].metadata.name)
                    if ev["object"].metadata.name == "late":
                        w.stop()
                        break
                if "late" in seen:
                    break
            except ApiException as e:
                assert e.status == 410, e
                gone += 1
                rv = core.list_namespaced_config_map("default").metadata.resource_version  # fresh list
                if not created_late:
                    # Created after the fresh list: the next watch (from that list's rv) must deliver it.
                    core.create_namespaced_config_map(
                        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late")))
                    created_late = True
        assert gone >= 1 and "late" in seen
