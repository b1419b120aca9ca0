"""Server-side apply and managed fields behave as Kubernetes' structured-merge-diff does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from k8py.api.apply import fieldset, from_fields_v1, path_string, record_update, server_side_apply, to_fields_v1
from k8py.api.errors import ApplyConflict

DEPLOY = "io.k8s.api.apps.v1.Deployment"
T0, T1, T2, T3 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z", "2026-01-01T00:03:00Z"


def deployment(replicas: int = 2, image: str = "nginx:1.25", env: list[dict[str, str]] | None = None,
               labels: dict[str, str] | None = None, extra_container: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
    if env is not None:
        container["env"] = env
    containers = [container]
    if extra_container:
        containers.append({"name": "sidecar", "image": "busybox"})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": labels if labels is not None else {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}},
        },
    }


def managers(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e["manager"], e["operation"], e.get("subresource", "")) for e in obj["metadata"].get("managedFields", [])]


def entry(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any]:
    return next(e for e in obj["metadata"]["managedFields"] if e["manager"] == manager and e["operation"] == operation)


def test_create_records_kubernetes_fields_v1() -> None:
    cfg = deployment()
    obj = server_side_apply(None, cfg, "kubectl", DEPLOY, False, T0)
    assert obj["spec"] == cfg["spec"]
    assert obj["metadata"]["name"] == "web"
    e = entry(obj, "kubectl")
    assert {k: v for k, v in e.items() if k != "fieldsV1"} == {
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T0, "fieldsType": "FieldsV1"}
    assert e["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {'k:{"name":"nginx"}': {
                    ".": {}, "f:image": {}, "f:name": {},
                    "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
                }}},
            },
        },
    }


def test_inputs_are_not_modified() -> None:
    live = server_side_apply(None, deployment(), "kubectl", DEPLOY, False, T0)
    live_copy, cfg = copy.deepcopy(live), deployment(replicas=3, labels={})
    cfg_copy = copy.deepcopy(cfg)
    server_side_apply(live, cfg, "kubectl", DEPLOY, False, T1)
    record_update(live, cfg, "other", T1)
    assert live == live_copy and cfg == cfg_copy


def test_reapply_same_config_changes_nothing_but_time() -> None:
    live = server_side_apply(None, deployment(), "kubectl", DEPLOY, False, T0)
    again = server_side_apply(live, deployment(), "kubectl", DEPLOY, False, T1)
    assert again["spec"] == live["spec"] and again["metadata"]["labels"] == live["metadata"]["labels"]
    assert entry(again, "kubectl")["time"] == T1
    assert entry(again, "kubectl")["fieldsV1"] == entry(live, "kubectl")["fieldsV1"]


@pytest.mark.parametrize(
    "first,second,check",
    [
        (deployment(labels={"app": "web", "tier": "front"}), deployment(labels={"app": "web"}),
         lambda o: o["metadata"]["labels"] == {"app": "web"}),
        (deployment(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
         deployment(env=[{"name": "A", "value": "1"}]),
         lambda o: o["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]),
        (deployment(extra_container=True), deployment(),
         lambda o: [c["name"] for c in o["spec"]["template"]["spec"]["containers"]] == ["nginx"]),
        (deployment(image="nginx:1"), deployment(image="nginx:2"),
         lambda o: o["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"),
    ],
    ids=["label removed", "env var removed", "container removed", "image changed"],
)
def test_apply_removes_fields_no_longer_applied(first: dict[str, Any], second: dict[str, Any], check: Any) -> None:
    live = server_side_apply(None, first, "kubectl", DEPLOY, False, T0)
    out = server_side_apply(live, second, "kubectl", DEPLOY, False, T1)
    assert check(out)
    assert entry(out, "kubectl")["fieldsV1"] == to_fields_v1(fieldset(second, DEPLOY))


def test_fields_set_by_others_survive_apply() -> None:
    live = server_side_apply(None, deployment(), "kubectl", DEPLOY, False, T0)
    edited = copy.deepcopy(live)
    edited["metadata"]["labels"]["team"] = "blue"
    edited["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    live = record_update(live, edited, "kube-controller-manager", T1)
    out = server_side_apply(live, deployment(replicas=4), "kubectl", DEPLOY, False, T2)
    assert out["metadata"]["labels"] == {"app": "web", "team": "blue"}
    assert out["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1"}
    assert out["spec"]["replicas"] == 4


def test_removed_field_kept_when_another_manager_also_owns_it() -> None:
    cfg = deployment(labels={"app": "web", "shared": "yes"})
    live = server_side_apply(None, cfg, "alice", DEPLOY, False, T0)
    live = server_side_apply(live, cfg, "bob", DEPLOY, False, T1)  # same values: shared ownership
    out = server_side_apply(live, deployment(labels={"app": "web"}), "alice", DEPLOY, False, T2)
    assert out["metadata"]["labels"] == {"app": "web", "shared": "yes"}
    assert "f:shared" in entry(out, "bob")["fieldsV1"]["f:metadata"]["f:labels"]
    assert "f:shared" not in entry(out, "alice")["fieldsV1"]["f:metadata"]["f:labels"]


def test_conflict_between_appliers_and_force() -> None:
    live = server_side_apply(None, deployment(replicas=2), "alice", DEPLOY, False, T0)
    with pytest.raises(ApplyConflict) as e:
        server_side_apply(live, deployment(replicas=3), "bob", DEPLOY, False, T1)
    assert str(e.value) == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    assert e.value.conflicts == [("alice", ".spec.replicas")]
    assert e.value.causes == [{"type": "FieldManagerConflict", "message": 'conflict with "alice"',
                               "field": ".spec.replicas"}]
    out = server_side_apply(live, deployment(replicas=3), "bob", DEPLOY, True, T1)
    assert out["spec"]["replicas"] == 3
    assert "f:replicas" not in entry(out, "alice")["fieldsV1"]["f:spec"]
    assert "f:replicas" in entry(out, "bob")["fieldsV1"]["f:spec"]
    # alice re-applying replicas=2 now conflicts with bob
    with pytest.raises(ApplyConflict) as e2:
        server_side_apply(out, deployment(replicas=2), "alice", DEPLOY, False, T2)
    assert e2.value.conflicts == [("bob", ".spec.replicas")]


def test_kubectl_scale_then_server_side_apply_conflicts_on_replicas() -> None:
    live = server_side_apply(None, deployment(replicas=2), "kubectl", DEPLOY, False, T0)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    scaled = record_update(live, scaled, "kubectl", T1, subresource="scale")
    assert ("kubectl", "Update", "scale") in managers(scaled)
    with pytest.raises(ApplyConflict) as e:
        server_side_apply(scaled, deployment(replicas=2), "kubectl", DEPLOY, False, T2)
    assert str(e.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas'
    )
    # applying a config without replicas gives it up instead; the scaled value stays
    cfg = deployment()
    del cfg["spec"]["replicas"]
    out = server_side_apply(scaled, cfg, "kubectl", DEPLOY, False, T2)
    assert out["spec"]["replicas"] == 5


def test_client_side_apply_then_server_side_apply_conflicts() -> None:
    created = record_update(None, deployment(replicas=2), "kubectl-client-side-apply", T0)
    assert managers(created) == [("kubectl-client-side-apply", "Update", "")]
    with pytest.raises(ApplyConflict) as e:
        server_side_apply(created, deployment(replicas=3, image="nginx:2"), "kubectl", DEPLOY, False, T1)
    assert str(e.value).startswith(
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1")
    assert sorted(f for _, f in e.value.conflicts) == [
        '.spec.replicas', '.spec.template.spec.containers[name="nginx"].image']
    # same values: no conflict, shared ownership
    out = server_side_apply(created, deployment(replicas=2), "kubectl", DEPLOY, False, T1)
    assert ("kubectl", "Apply", "") in managers(out)


def test_before_first_apply_owns_fields_of_objects_without_managed_fields() -> None:
    live = deployment(replicas=2)
    with pytest.raises(ApplyConflict) as e:
        server_side_apply(live, deployment(replicas=7), "kubectl", DEPLOY, False, T1)
    assert e.value.conflicts == [("before-first-apply", ".spec.replicas")]
    out = server_side_apply(live, deployment(replicas=7), "kubectl", DEPLOY, True, T1)
    assert out["spec"]["replicas"] == 7
    assert managers(out) == [("before-first-apply", "Update", ""), ("kubectl", "Apply", "")]


def test_record_update_moves_ownership_and_drops_removed_fields() -> None:
    live = server_side_apply(None, deployment(labels={"app": "web", "x": "1"}), "kubectl", DEPLOY, False, T0)
    edited = copy.deepcopy(live)
    edited["metadata"]["labels"] = {"app": "web"}
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:edited"
    out = record_update(live, edited, "kubectl-edit", T1)
    apply_fields = entry(out, "kubectl")["fieldsV1"]
    assert apply_fields["f:metadata"]["f:labels"] == {"f:app": {}}
    assert "f:image" not in apply_fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert entry(out, "kubectl-edit", "Update")["fieldsV1"] == {
        "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"nginx"}': {"f:image": {}}}}}}}
    assert entry(out, "kubectl-edit", "Update")["time"] == T1
    # a write that changes nothing records nothing
    same = record_update(out, copy.deepcopy(out), "someone", T2)
    assert same["metadata"]["managedFields"] == out["metadata"]["managedFields"]


def test_record_update_without_managed_fields_in_request_keeps_old_ones() -> None:
    live = server_side_apply(None, deployment(), "kubectl", DEPLOY, False, T0)
    req = copy.deepcopy(live)
    del req["metadata"]["managedFields"]
    req["spec"]["replicas"] = 9
    out = record_update(live, req, "hpa", T1)
    assert managers(out) == [("kubectl", "Apply", ""), ("hpa", "Update", "")]
    reset = copy.deepcopy(out)
    reset["metadata"]["managedFields"] = []
    cleared = record_update(out, reset, "admin", T2)
    assert "managedFields" not in cleared["metadata"]


def test_status_update_is_recorded_per_subresource() -> None:
    live = server_side_apply(None, deployment(), "kubectl", DEPLOY, False, T0)
    with_status = copy.deepcopy(live)
    with_status["status"] = {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    out = record_update(live, with_status, "kube-controller-manager", T1, subresource="status")
    e = entry(out, "kube-controller-manager", "Update")
    assert e["subresource"] == "status"
    assert e["fieldsV1"] == {"f:status": {
        "f:conditions": {'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}}},
        "f:replicas": {}}}


def test_finalizers_are_a_set() -> None:
    base = deployment()
    base["metadata"]["finalizers"] = ["a.io/x"]
    live = server_side_apply(None, base, "alice", DEPLOY, False, T0)
    assert entry(live, "alice")["fieldsV1"]["f:metadata"]["f:finalizers"] == {'v:"a.io/x"': {}}
    other = deployment()
    other["metadata"]["finalizers"] = ["b.io/y"]
    live = server_side_apply(live, other, "bob", DEPLOY, False, T1)
    assert live["metadata"]["finalizers"] == ["a.io/x", "b.io/y"]
    out = server_side_apply(live, deployment(), "alice", DEPLOY, False, T2)
    assert out["metadata"]["finalizers"] == ["b.io/y"]


def test_unknown_kinds_merge_maps_and_replace_lists() -> None:
    cr = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
          "spec": {"size": 1, "tags": ["a", "b"], "opts": {"x": 1, "y": 2}}}
    live = server_side_apply(None, cr, "alice", None, False, T0)
    assert entry(live, "alice")["fieldsV1"] == {"f:spec": {"f:opts": {"f:x": {}, "f:y": {}}, "f:size": {},
                                                           "f:tags": {}}}
    cfg = copy.deepcopy(cr)
    cfg["spec"] = {"tags": ["c"], "opts": {"x": 5}}
    out = server_side_apply(live, cfg, "alice", None, False, T1)
    assert out["spec"] == {"tags": ["c"], "opts": {"x": 5}}


FIELDS_V1_FROM_KUBERNETES = {
    "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                   "f:finalizers": {".": {}, 'v:"example.com/f"': {}},
                   "f:labels": {".": {}, "f:app": {}}},
    "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"nginx"}': {
        ".": {}, "f:image": {}, "f:name": {},
        "f:ports": {".": {}, 'k:{"containerPort":80,"protocol":"TCP"}': {
            ".": {}, "f:containerPort": {}, "f:protocol": {}}}}}}}},
}


def test_fields_v1_round_trip() -> None:
    paths = from_fields_v1(FIELDS_V1_FROM_KUBERNETES)
    assert (("f", "metadata"), ("f", "labels")) in paths  # "." marks the map itself
    assert (("f", "metadata"), ("f", "finalizers"), ("v", '"example.com/f"')) in paths
    assert to_fields_v1(paths) == FIELDS_V1_FROM_KUBERNETES


@pytest.mark.parametrize(
    "path,text",
    [
        ((("f", "spec"), ("f", "replicas")), ".spec.replicas"),
        ((("f", "spec"), ("f", "containers"), ("k", '{"name":"nginx"}'), ("f", "image")),
         '.spec.containers[name="nginx"].image'),
        ((("f", "ports"), ("k", '{"containerPort":80,"protocol":"TCP"}')), '.ports[containerPort=80,protocol="TCP"]'),
        ((("f", "metadata"), ("f", "finalizers"), ("v", '"x"')), '.metadata.finalizers[="x"]'),
        ((("f", "args"), ("i", "2")), ".args[2]"),
    ],
)
def test_path_string(path: tuple[tuple[str, str], ...], text: str) -> None:
    assert path_string(path) == text


def test_epoch_seconds_are_accepted_as_time() -> None:
    obj = server_side_apply(None, deployment(), "kubectl", DEPLOY, False, 1767225600.5)
    assert entry(obj, "kubectl")["time"] == "2026-01-01T00:00:00Z"
    edited = copy.deepcopy(obj)
    edited["spec"]["replicas"] = 3
    assert entry(record_update(obj, edited, "x", 1767225660), "x", "Update")["time"] == "2026-01-01T00:01:00Z"
