"""Bound service-account tokens: claims as Kubernetes', checked live against the account and
the bound pod/secret/node (across a restart and compaction), TokenReview, and the
`kubernetes` Service kept alive."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from k8py.apiserver.server import ApiServer
from k8py.clock import FakeClock
from k8py.store.memory import MemoryStore

from apiserver_helpers import call

NS = "/api/v1/namespaces/default"
REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


async def create(api: ApiServer, path: str, obj: dict) -> dict:
    resp = await call(api, "POST", path, obj)
    assert resp.status == 201, resp.body
    return resp.body  # type: ignore[no-any-return]


async def token(api: ApiServer, sa: str = "default", **spec: Any) -> str:
    resp = await call(api, "POST", f"{NS}/serviceaccounts/{sa}/token", {"kind": "TokenRequest", "spec": spec})
    assert resp.status == 201, resp.body
    return str(resp.body["status"]["token"])


async def settle(api: ApiServer, tok: str, accepted: bool) -> None:
    """Wait until the watch caches have told the authenticator what the store says."""
    for _ in range(10_000):  # up to ~10 s on a loaded machine; usually a few loop turns
        if (api.authenticate_token(tok) is not None) == accepted:
            return
        await asyncio.sleep(0.001)
    assert (api.authenticate_token(tok) is not None) == accepted


async def node_and_pod(api: ApiServer) -> tuple[dict, dict]:
    node = await create(api, "/api/v1/nodes", {"kind": "Node", "metadata": {"name": "n1"}})
    pod = await create(api, f"{NS}/pods", {"kind": "Pod", "metadata": {"name": "p"},
                                           "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}})
    return node, pod


async def test_pod_bound_token_claims_and_liveness(api: ApiServer) -> None:
    node, pod = await node_and_pod(api)
    sa = (await call(api, "GET", f"{NS}/serviceaccounts/default")).body
    tok = await token(api, expirationSeconds=3607,
                      boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": pod["metadata"]["uid"]})
    c = claims(tok)
    assert c["exp"] - c["iat"] == 3607 and c["nbf"] == c["iat"] and c["jti"]
    assert c["kubernetes.io"] == {"namespace": "default",
                                  "serviceaccount": {"name": "default", "uid": sa["metadata"]["uid"]},
                                  "pod": {"name": "p", "uid": pod["metadata"]["uid"]},
                                  "node": {"name": "n1", "uid": node["metadata"]["uid"]}}
    await settle(api, tok, True)
    assert (await call(api, "DELETE", f"{NS}/pods/p", query={"gracePeriodSeconds": "0"})).status == 200
    await settle(api, tok, False)
    await create(api, f"{NS}/pods", {"kind": "Pod", "metadata": {"name": "p"},  # same name, new uid
                                     "spec": {"containers": [{"name": "c", "image": "x"}]}})
    await asyncio.sleep(0.01)
    assert api.authenticate_token(tok) is None


@pytest.mark.parametrize("kind, plural, path", [
    ("Secret", "secrets", f"{NS}/secrets"),
    ("Node", "nodes", "/api/v1/nodes"),
])
async def test_token_bound_to_a_deleted_object_is_refused(api: ApiServer, kind: str, plural: str, path: str) -> None:
    obj = await create(api, path, {"kind": kind, "metadata": {"name": "b"}})
    tok = await token(api, boundObjectRef={"kind": kind, "name": "b"})
    assert claims(tok)["kubernetes.io"][kind.lower()] == {"name": "b", "uid": obj["metadata"]["uid"]}
    await settle(api, tok, True)
    assert (await call(api, "DELETE", f"{path}/b")).status == 200
    await settle(api, tok, False)


async def test_pod_of_another_account_and_stale_uid_are_refused(api: ApiServer) -> None:
    await create(api, f"{NS}/serviceaccounts", {"kind": "ServiceAccount", "metadata": {"name": "other"}})
    await node_and_pod(api)
    resp = await call(api, "POST", f"{NS}/serviceaccounts/other/token",
                      {"kind": "TokenRequest", "spec": {"boundObjectRef": {"kind": "Pod", "name": "p"}}})
    assert resp.status == 400 and "pod running with different serviceaccount name" in resp.body["message"]
    resp = await call(api, "POST", f"{NS}/serviceaccounts/default/token",
                      {"kind": "TokenRequest", "spec": {"boundObjectRef": {"kind": "Pod", "name": "p", "uid": "x"}}})
    assert resp.status == 409 and "does not match the UID in record" in resp.body["message"]


async def test_deleted_account_token_refused_after_compaction_and_restart(store: MemoryStore, clock: FakeClock,
                                                                          config: Any) -> None:
    api = ApiServer(store, config, clock)
    await api.start()
    await create(api, f"{NS}/serviceaccounts", {"kind": "ServiceAccount", "metadata": {"name": "gone"}})
    tok = await token(api, "gone")
    await settle(api, tok, True)
    assert (await call(api, "DELETE", f"{NS}/serviceaccounts/gone")).status == 200
    await settle(api, tok, False)
    await api.close()
    await store.compact(await store.current_revision())
    again = ApiServer(store, config, clock)  # same signing key: the token still verifies
    again.tokens = api.tokens
    await again.start()
    try:
        assert again.tokens.verify(tok) is not None and again.authenticate_token(tok) is None
        await create(again, f"{NS}/serviceaccounts", {"kind": "ServiceAccount", "metadata": {"name": "gone"}})
        await asyncio.sleep(0.01)
        assert again.authenticate_token(tok) is None  # a new account of the same name is not the old one
        fresh = await token(again, "gone")
        await settle(again, fresh, True)
    finally:
        await again.close()


async def test_token_review(api: ApiServer) -> None:
    _, pod = await node_and_pod(api)
    sa = (await call(api, "GET", f"{NS}/serviceaccounts/default")).body
    tok = await token(api, boundObjectRef={"kind": "Pod", "name": "p"})
    await settle(api, tok, True)
    resp = await call(api, "POST", REVIEWS, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                             "spec": {"token": tok}})
    assert resp.status == 201, resp.body
    st = resp.body["status"]
    assert st["authenticated"] is True and st["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    assert st["user"]["username"] == "system:serviceaccount:default:default"
    assert st["user"]["uid"] == sa["metadata"]["uid"]
    assert st["user"]["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default",
                                    "system:authenticated"]
    extra = st["user"]["extra"]
    assert extra["authentication.kubernetes.io/pod-name"] == ["p"]
    assert extra["authentication.kubernetes.io/pod-uid"] == [pod["metadata"]["uid"]]
    assert extra["authentication.kubernetes.io/credential-id"] == ["JTI=" + claims(tok)["jti"]]
    vault = await token(api, audiences=["vault"])
    for spec, ok in [({"token": vault, "audiences": ["vault"]}, True), ({"token": vault}, False),
                     ({"token": tok, "audiences": ["vault"]}, False), ({"token": "garbage"}, False)]:
        st = (await call(api, "POST", REVIEWS, {"kind": "TokenReview", "spec": spec})).body["status"]
        assert bool(st.get("authenticated")) == ok, (spec, st)
        assert ok or st["error"]
    resp = await call(api, "POST", REVIEWS, {"kind": "TokenReview", "spec": {}})
    assert resp.status == 422 and resp.body["details"]["causes"][0]["field"] == "spec.token"
    assert (await call(api, "GET", REVIEWS)).status == 405


async def test_kubernetes_service_is_recreated(api: ApiServer) -> None:
    svc = (await call(api, "GET", f"{NS}/services/kubernetes")).body
    for path in ("services", "endpoints"):
        assert (await call(api, "DELETE", f"{NS}/{path}/kubernetes")).status == 200
    for _ in range(10_000):
        again = await call(api, "GET", f"{NS}/services/kubernetes")
        eps = await call(api, "GET", f"{NS}/endpoints/kubernetes")
        if again.status == 200 and eps.status == 200:
            break
        await asyncio.sleep(0.001)
    assert again.status == 200 and again.body["metadata"]["uid"] != svc["metadata"]["uid"]
    assert again.body["spec"]["clusterIP"] == svc["spec"]["clusterIP"] == "10.43.0.1"
    assert eps.status == 200
