"""TokenRequest (serviceaccounts/token) and the tokens it issues: signed, expiring JWTs that
authenticate as the service account."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from k8py.apiserver.auth import Authenticator
from k8py.apiserver.server import ApiServer
from k8py.apiserver.tokens import API_AUDIENCE, TokenIssuer
from k8py.clock import FakeClock

from apiserver_helpers import call

SA = "/api/v1/namespaces/default/serviceaccounts"


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


async def test_token_request_issues_a_token_for_the_account(api: ApiServer, clock: FakeClock) -> None:
    resp = await call(api, "POST", f"{SA}/default/token",
                      {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    assert resp.status == 201, resp.body
    body = resp.body
    assert body["kind"] == "TokenRequest" and body["apiVersion"] == "authentication.k8s.io/v1"
    assert body["spec"] == {"audiences": [API_AUDIENCE], "expirationSeconds": 3600, "boundObjectRef": None}
    token = body["status"]["token"]
    c = claims(token)
    sa = (await call(api, "GET", f"{SA}/default")).body
    assert c["sub"] == "system:serviceaccount:default:default" and c["aud"] == [API_AUDIENCE]
    assert c["kubernetes.io"] == {"namespace": "default",
                                  "serviceaccount": {"name": "default", "uid": sa["metadata"]["uid"]}}
    assert c["exp"] - c["iat"] == 3600
    auth = Authenticator(token_checkers=[api.tokens.authenticate])
    user = auth.from_authorization(f"Bearer {token}")
    assert user is not None and user.name == "system:serviceaccount:default:default"
    assert "system:serviceaccounts:default" in user.groups
    await clock.advance(3600)
    assert auth.from_authorization(f"Bearer {token}") is None  # expired


def _tamper(token: str) -> str:
    h, p, s = token.split(".")
    c = claims(token)
    c["sub"] = "system:serviceaccount:kube-system:default"
    p2 = base64.urlsafe_b64encode(json.dumps(c).encode()).rstrip(b"=").decode()
    return ".".join((h, p2, s))


@pytest.mark.parametrize("make", [
    lambda issuer, other: _tamper(issuer.issue("default", "default", "u")[0]),
    lambda issuer, other: other.issue("default", "default", "u")[0],  # another key
    lambda issuer, other: issuer.issue("default", "default", "u", audiences=["vault"])[0],
    lambda issuer, other: "not.a.jwt",
    lambda issuer, other: "garbage",
], ids=["tampered", "other-key", "other-audience", "malformed", "opaque"])
def test_foreign_or_forged_tokens_are_refused(make: Any) -> None:
    clock = FakeClock()
    issuer, other = TokenIssuer(None, clock.now), TokenIssuer(None, clock.now)
    assert issuer.authenticate(make(issuer, other)) is None


def test_key_is_kept_in_the_dir(tmp_path: Path) -> None:
    clock = FakeClock()
    token, _ = TokenIssuer(tmp_path, clock.now).issue("ns", "builder", "u")
    assert (tmp_path / "sa.key").stat().st_mode & 0o777 == 0o600
    user = TokenIssuer(tmp_path, clock.now).authenticate(token)  # a restarted server accepts it
    assert user is not None and user.name == "system:serviceaccount:ns:builder"


@pytest.mark.parametrize("spec,code,msg", [
    ({"expirationSeconds": 60}, 422, "may not specify a duration less than 10 minutes"),
    ({"boundObjectRef": {"kind": "Pod", "name": "nope"}}, 404, 'pods "nope" not found'),
    ({"boundObjectRef": {"kind": "Node", "name": "n"}}, 404, 'nodes "n" not found'),
    ({"boundObjectRef": {"kind": "Deployment", "name": "d"}}, 400, 'object of kind "Deployment"'),
    ({"audiences": "x"}, 422, "spec.audiences"),
])
async def test_token_request_errors(api: ApiServer, spec: dict[str, Any], code: int, msg: str) -> None:
    resp = await call(api, "POST", f"{SA}/default/token", {"kind": "TokenRequest", "spec": spec})
    assert resp.status == code and msg in resp.body["message"], resp.body


async def test_token_for_a_missing_account_is_404(api: ApiServer) -> None:
    resp = await call(api, "POST", f"{SA}/ghost/token", {"kind": "TokenRequest", "spec": {}})
    assert resp.status == 404 and 'serviceaccounts "ghost" not found' in resp.body["message"]


async def test_deleting_the_account_voids_its_tokens(api: ApiServer) -> None:
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": "default"}}
    assert (await call(api, "POST", SA, sa)).status == 201
    token = (await call(api, "POST", f"{SA}/builder/token",
                        {"kind": "TokenRequest", "spec": {}})).body["status"]["token"]
    while (user := api.authenticate_token(token)) is None:  # the watch cache reports the creation
        await asyncio.sleep(0)
    assert user.name == "system:serviceaccount:default:builder"
    assert (await call(api, "DELETE", f"{SA}/builder")).status == 200
    while api.authenticate_token(token) is not None:  # the watch cache reports the deletion
        await asyncio.sleep(0)
    assert (await call(api, "POST", SA, sa)).status == 201  # a new account of the same name
    assert api.authenticate_token(token) is None
    fresh = (await call(api, "POST", f"{SA}/builder/token",
                        {"kind": "TokenRequest", "spec": {}})).body["status"]["token"]
    while api.authenticate_token(fresh) is None:
        await asyncio.sleep(0)
