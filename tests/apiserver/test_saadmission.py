"""The ServiceAccount admission plugin: default account, the kube-api-access projected
volume mounted in every container unless automount is off, a missing account refused."""

from __future__ import annotations

import re
from typing import Any

import pytest

from k8py.apiserver.server import ApiServer

from apiserver_helpers import call

NS = "/api/v1/namespaces/default"
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
SOURCE = {"defaultMode": 420, "sources": [
    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                  "fieldPath": "metadata.namespace"}}]}}]}


def pod(name: str, **spec: Any) -> dict:
    return {"kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "x"}], "initContainers": [{"name": "i", "image": "x"}],
                     **spec}}


async def create_pod(api: ApiServer, body: dict) -> dict:
    resp = await call(api, "POST", f"{NS}/pods", body)
    assert resp.status == 201, resp.body
    return resp.body  # type: ignore[no-any-return]


async def test_default_account_and_token_volume(api: ApiServer) -> None:
    spec = (await create_pod(api, pod("p")))["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    [vol] = spec["volumes"]
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", vol["name"])
    assert vol["projected"] == SOURCE
    for c in spec["containers"] + spec["initContainers"]:
        assert c["volumeMounts"] == [{"name": vol["name"], "readOnly": True, "mountPath": MOUNT}]


@pytest.mark.parametrize("pod_setting, sa_setting, mounted", [
    (None, None, True), (False, None, False), (None, False, False), (True, False, True), (False, True, False),
])
async def test_automount_pod_wins_over_account(api: ApiServer, pod_setting: bool | None, sa_setting: bool | None,
                                               mounted: bool) -> None:
    sa: dict = {"kind": "ServiceAccount", "metadata": {"name": "robot"}}
    if sa_setting is not None:
        sa["automountServiceAccountToken"] = sa_setting
    assert (await call(api, "POST", f"{NS}/serviceaccounts", sa)).status == 201
    extra = {} if pod_setting is None else {"automountServiceAccountToken": pod_setting}
    spec = (await create_pod(api, pod("p", serviceAccountName="robot", **extra)))["spec"]
    assert bool(spec.get("volumes")) == mounted
    assert all(bool(c.get("volumeMounts")) == mounted for c in spec["containers"])


async def test_existing_mount_at_the_token_path_is_kept(api: ApiServer) -> None:
    body = pod("p", volumes=[{"name": "mine", "emptyDir": {}}])
    body["spec"]["containers"][0]["volumeMounts"] = [{"name": "mine", "mountPath": MOUNT}]
    spec = (await create_pod(api, body))["spec"]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "mine", "mountPath": MOUNT}]
    assert [v["name"] for v in spec["volumes"]][0] == "mine" and len(spec["volumes"]) == 2  # the init container's
    assert spec["initContainers"][0]["volumeMounts"][0]["name"] == spec["volumes"][1]["name"]


async def test_missing_account_is_forbidden(api: ApiServer) -> None:
    resp = await call(api, "POST", f"{NS}/pods", pod("p", serviceAccountName="ghost"))
    assert resp.status == 403, resp.body
    assert resp.body["reason"] == "Forbidden"
    assert resp.body["message"] == ('pods "p" is forbidden: error looking up service account default/ghost: '
                                    'serviceaccount "ghost" not found')


async def test_account_image_pull_secrets_are_copied(api: ApiServer) -> None:
    sa = {"kind": "ServiceAccount", "metadata": {"name": "puller"}, "imagePullSecrets": [{"name": "reg"}]}
    assert (await call(api, "POST", f"{NS}/serviceaccounts", sa)).status == 201
    spec = (await create_pod(api, pod("p", serviceAccountName="puller")))["spec"]
    assert spec["imagePullSecrets"] == [{"name": "reg"}]


async def test_mirror_pods_are_left_alone(api: ApiServer) -> None:
    body = pod("p")
    body["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    spec = (await create_pod(api, body))["spec"]
    assert "volumes" not in spec
