"""Admission webhooks through the API server, against an in-process HTTPS webhook server
(its certificate from the cluster CA helpers): configurations validated (422 naming the
field), mutating webhooks in order with reinvocation, validating webhooks, denials,
failurePolicy Fail/Ignore, timeouts and warnings."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from k8py.apiserver import certs
from k8py.apiserver.server import ApiServer

from apiserver_helpers import call

GV = "/apis/admissionregistration.k8s.io/v1"
NS = "/api/v1/namespaces/default"
Handler = Callable[[dict[str, Any]], Any]


class Hooks:
    """An HTTPS server answering AdmissionReviews; `handlers[path](request) -> response`."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.port = 0
        self.ca = ""

    async def serve(self, req: web.Request) -> web.Response:
        review = await req.json()
        self.calls.append((req.path, review["request"]))
        out = self.handlers[req.path](review["request"])
        if asyncio.iscoroutine(out):
            out = await out
        out.setdefault("uid", review["request"]["uid"])
        return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": out})

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[Hooks]:
    pki = certs.ensure_pki(tmp_path, sans=["127.0.0.1"])
    h = Hooks()
    h.ca = base64.b64encode(pki.ca_cert.read_bytes()).decode()
    app = web.Application()
    app.router.add_post("/{path:.*}", h.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_ssl_context())
    await site.start()
    h.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield h
    await runner.cleanup()


def webhook(name: str, url: str, ca: str = "", **over: Any) -> dict[str, Any]:
    wh: dict[str, Any] = {"name": name, "clientConfig": {"url": url, "caBundle": ca}, "sideEffects": "None",
                          "admissionReviewVersions": ["v1"],
                          "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""],
                                     "apiVersions": ["v1"], "resources": ["configmaps"]}]}
    wh.update(over)
    return wh


def config(kind: str, name: str, *whs: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
            "webhooks": list(whs)}


async def install(api: ApiServer, kind: str, name: str, *whs: dict[str, Any]) -> dict[str, Any]:
    plural = kind.lower() + "s"
    resp = await call(api, "POST", f"{GV}/{plural}", config(kind, name, *whs))
    assert resp.status == 201, resp.body
    key = f"/registry/admissionregistration.k8s.io/{plural}/{name}"
    async with asyncio.timeout(10):
        while key not in api.webhook_index.configs:
            await asyncio.sleep(0.01)
    return resp.body  # type: ignore[no-any-return]


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


def patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"allowed": True, "patchType": "JSONPatch", "patch": base64.b64encode(json.dumps(ops).encode()).decode()}


def add_label(key: str, value: str) -> Handler:
    def handle(req: dict[str, Any]) -> dict[str, Any]:
        if (req["object"]["metadata"].get("labels") or {}).get(key) == value:
            return {"allowed": True}
        return patch({"op": "add", "path": f"/metadata/labels/{key}", "value": value})
    return handle


# -- the configurations themselves ----------------------------------------------------

BAD = [
    ({"sideEffects": None}, "webhooks[0].sideEffects", "Required value"),
    ({"sideEffects": "Some"}, "webhooks[0].sideEffects", 'Unsupported value: "Some"'),
    ({"admissionReviewVersions": ["v2"]}, "webhooks[0].admissionReviewVersions", "must include at least one of v1"),
    ({"admissionReviewVersions": []}, "webhooks[0].admissionReviewVersions", "Required value"),
    ({"clientConfig": {}}, "webhooks[0].clientConfig", "exactly one of url or service is required"),
    ({"clientConfig": {"url": "http://x.example.com/"}}, "webhooks[0].clientConfig.url",
     "'https' is the only allowed URL scheme"),
    ({"clientConfig": {"url": "https://a.example.com", "service": {"name": "s", "namespace": "d"}}},
     "webhooks[0].clientConfig", "exactly one of url or service"),
    ({"clientConfig": {"service": {"name": "s", "namespace": "d", "path": "x"}}},
     "webhooks[0].clientConfig.service.path", "must start with a '/'"),
    ({"timeoutSeconds": 31}, "webhooks[0].timeoutSeconds", "between 1 and 30 seconds"),
    ({"rules": [{"operations": ["GET"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]},
     "webhooks[0].rules[0].operations[0]", 'Unsupported value: "GET"'),
    ({"rules": [{"operations": ["CREATE"], "apiVersions": ["v1"], "resources": ["pods"]}]},
     "webhooks[0].rules[0].apiGroups", "Required value"),
    ({"rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
                 "scope": "Everywhere"}]}, "webhooks[0].rules[0].scope", 'Unsupported value: "Everywhere"'),
    ({"failurePolicy": "Maybe"}, "webhooks[0].failurePolicy", 'Unsupported value: "Maybe"'),
    ({"name": "short"}, "webhooks[0].name", "at least three segments"),
    ({"matchConditions": [{"name": "c", "expression": "object.metadata.name =="}]},
     "webhooks[0].matchConditions[0].expression", "compilation failed: ERROR: <input>:1:"),
    ({"matchConditions": [{"name": "c", "expression": "true"}, {"name": "c", "expression": "true"}]},
     "webhooks[0].matchConditions[1].name", 'Duplicate value: "c"'),
    ({"matchConditions": [{"name": "c"}]}, "webhooks[0].matchConditions[0].expression", "Required value"),
]


@pytest.mark.parametrize(("over", "field", "words"), BAD)
async def test_bad_configurations_are_refused(api: ApiServer, over: dict[str, Any], field: str,
                                              words: str) -> None:
    wh = webhook("v.example.com", "https://hook.example.com/")
    wh.update(over)
    wh = {k: v for k, v in wh.items() if v is not None}
    resp = await call(api, "POST", f"{GV}/validatingwebhookconfigurations",
                      config("ValidatingWebhookConfiguration", "bad", wh))
    assert resp.status == 422, resp.body
    causes = resp.body["details"]["causes"]
    assert any(c["field"] == field and words in c["message"] for c in causes), causes
    assert (await call(api, "GET", f"{GV}/validatingwebhookconfigurations/bad")).status == 404


async def test_defaults_and_discovery(api: ApiServer) -> None:
    out = await install(api, "MutatingWebhookConfiguration", "m",
                        webhook("m.example.com", "https://hook.example.com/"))
    wh = out["webhooks"][0]
    assert (wh["failurePolicy"], wh["matchPolicy"], wh["timeoutSeconds"], wh["reinvocationPolicy"]) == \
        ("Fail", "Equivalent", 10, "Never")
    assert wh["namespaceSelector"] == wh["objectSelector"] == {} and wh["rules"][0]["scope"] == "*"
    disc = (await call(api, "GET", GV)).body
    assert {r["name"] for r in disc["resources"]} >= {"mutatingwebhookconfigurations",
                                                       "validatingwebhookconfigurations"}


# -- the chain -----------------------------------------------------------------------

async def test_mutating_then_validating(api: ApiServer, hooks: Hooks) -> None:
    hooks.handlers["/mutate"] = add_label("added", "yes")
    hooks.handlers["/validate"] = lambda req: (
        {"allowed": True} if req["object"]["metadata"]["labels"].get("added") == "yes" else
        {"allowed": False, "status": {"code": 403, "reason": "Forbidden", "message": "no label"}})
    await install(api, "ValidatingWebhookConfiguration", "v",
                  webhook("v.example.com", hooks.url("/validate"), hooks.ca))
    await install(api, "MutatingWebhookConfiguration", "m", webhook("m.example.com", hooks.url("/mutate"), hooks.ca))
    resp = await call(api, "POST", f"{NS}/configmaps", cm("a"))
    assert resp.status == 201, resp.body
    assert resp.body["metadata"]["labels"] == {"added": "yes"}
    assert [p for p, _ in hooks.calls] == ["/mutate", "/validate"]
    req = hooks.calls[0][1]
    assert (req["operation"], req["namespace"], req["name"], req["resource"]["resource"]) == \
        ("CREATE", "default", "a", "configmaps")
    assert req["userInfo"]["username"] and req["oldObject"] is None and req["dryRun"] is False
    # an update goes through them too, with the old object
    body = resp.body | {"data": {"k": "w"}}
    resp = await call(api, "PUT", f"{NS}/configmaps/a", body)
    assert resp.status == 200, resp.body
    assert hooks.calls[-1][1]["operation"] == "UPDATE" and hooks.calls[-1][1]["oldObject"]["data"] == {"k": "v"}


async def test_denial_as_kubernetes_words_it(api: ApiServer, hooks: Hooks) -> None:
    hooks.handlers["/v"] = lambda req: (
        {"allowed": req["object"]["metadata"]["name"] != "bad",
         "status": {"code": 403, "reason": "Forbidden", "message": "bad is a bad name"}})
    await install(api, "ValidatingWebhookConfiguration", "v", webhook("deny.example.com", hooks.url("/v"), hooks.ca))
    resp = await call(api, "POST", f"{NS}/configmaps", cm("bad"))
    assert resp.status == 403
    assert resp.body["message"] == 'admission webhook "deny.example.com" denied the request: bad is a bad name'
    assert resp.body["reason"] == "Forbidden"
    assert (await call(api, "GET", f"{NS}/configmaps/bad")).status == 404
    assert (await call(api, "POST", f"{NS}/configmaps", cm("good"))).status == 201
    hooks.handlers["/v"] = lambda req: {"allowed": False}
    resp = await call(api, "POST", f"{NS}/configmaps", cm("other"))
    assert (resp.status, resp.body["message"]) == \
        (400, 'admission webhook "deny.example.com" denied the request without explanation')


async def test_configurations_in_name_order_and_reinvocation(api: ApiServer, hooks: Hooks) -> None:
    hooks.handlers["/a"] = add_label("a", "1")
    hooks.handlers["/b"] = add_label("b", "1")
    await install(api, "MutatingWebhookConfiguration", "2-b", webhook("b.example.com", hooks.url("/b"), hooks.ca))
    await install(api, "MutatingWebhookConfiguration", "1-a",
                  webhook("a.example.com", hooks.url("/a"), hooks.ca, reinvocationPolicy="IfNeeded"))
    resp = await call(api, "POST", f"{NS}/configmaps", cm("x"))
    assert resp.status == 201, resp.body
    # a (config 1-a) first, then b changed the object after a: a is called once more
    assert [p for p, _ in hooks.calls] == ["/a", "/b", "/a"]
    assert hooks.calls[2][1]["object"]["metadata"]["labels"] == {"a": "1", "b": "1"}


async def test_a_webhook_that_is_down(api: ApiServer, hooks: Hooks) -> None:
    down = "https://127.0.0.1:1/down"
    await install(api, "ValidatingWebhookConfiguration", "v",
                  webhook("down.example.com", down, hooks.ca, objectSelector={"matchLabels": {"policy": "fail"}}),
                  webhook("ignored.example.com", down, hooks.ca, failurePolicy="Ignore"))
    resp = await call(api, "POST", f"{NS}/configmaps", cm("f", policy="fail"))
    assert (resp.status, resp.body["reason"]) == (500, "InternalError")
    assert resp.body["message"] == (
        'Internal error occurred: failed calling webhook "down.example.com": failed to call webhook: '
        'Post "https://127.0.0.1:1/down?timeout=10s": dial tcp 127.0.0.1:1: connect: connection refused')
    resp = await call(api, "POST", f"{NS}/configmaps", cm("i"))
    assert resp.status == 201, resp.body


async def test_timeout(api: ApiServer, hooks: Hooks) -> None:
    async def slow(req: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(2.5)  # past the 1 s timeout; the server's teardown waits for it
        return {"allowed": True}
    hooks.handlers["/slow"] = slow
    await install(api, "ValidatingWebhookConfiguration", "v",
                  webhook("slow.example.com", hooks.url("/slow"), hooks.ca, timeoutSeconds=1))
    resp = await call(api, "POST", f"{NS}/configmaps", cm("s"))
    assert resp.status == 500
    assert resp.body["message"].endswith(
        f'failed calling webhook "slow.example.com": failed to call webhook: '
        f'Post "{hooks.url("/slow")}?timeout=1s": context deadline exceeded')


async def test_untrusted_certificate_and_bad_answers(api: ApiServer, hooks: Hooks) -> None:
    hooks.handlers["/uid"] = lambda req: {"uid": "other", "allowed": True}
    hooks.handlers["/ok"] = lambda req: {"allowed": True}
    await install(api, "ValidatingWebhookConfiguration", "v",
                  webhook("uid.example.com", hooks.url("/uid"), hooks.ca, objectSelector={"matchLabels": {"t": "uid"}}),
                  webhook("ca.example.com", hooks.url("/ok"), objectSelector={"matchLabels": {"t": "ca"}}))
    resp = await call(api, "POST", f"{NS}/configmaps", cm("u", t="uid"))
    assert resp.status == 500 and 'received invalid webhook response: expected response.uid="' in resp.body["message"]
    resp = await call(api, "POST", f"{NS}/configmaps", cm("c", t="ca"))
    assert resp.status == 500 and "certificate" in resp.body["message"], resp.body


async def test_warnings_and_dry_run(api: ApiServer, hooks: Hooks) -> None:
    hooks.handlers["/w"] = lambda req: {"allowed": True, "warnings": ["careful now"]}
    await install(api, "ValidatingWebhookConfiguration", "v", webhook("w.example.com", hooks.url("/w"), hooks.ca))
    resp = await call(api, "POST", f"{NS}/configmaps", cm("w"), query={"dryRun": "All"})
    assert resp.status == 201
    assert "careful now" in resp.headers.get("Warning", "")
    assert hooks.calls[-1][1]["dryRun"] is True
    assert (await call(api, "GET", f"{NS}/configmaps/w")).status == 404


async def test_mutation_is_validated_again(api: ApiServer, hooks: Hooks) -> None:
    hooks.handlers["/m"] = lambda req: patch({"op": "add", "path": "/metadata/labels/bad", "value": "-x-"})
    await install(api, "MutatingWebhookConfiguration", "m", webhook("m.example.com", hooks.url("/m"), hooks.ca))
    resp = await call(api, "POST", f"{NS}/configmaps", cm("m"))
    assert resp.status == 422 and resp.body["details"]["causes"][0]["field"] == "metadata.labels", resp.body


async def test_delete_goes_to_webhooks_with_the_old_object(api: ApiServer, hooks: Hooks) -> None:
    hooks.handlers["/d"] = lambda req: {"allowed": req["oldObject"]["metadata"]["name"] != "keep",
                                        "status": {"message": "keep is kept"}}
    assert (await call(api, "POST", f"{NS}/configmaps", cm("keep"))).status == 201
    assert (await call(api, "POST", f"{NS}/configmaps", cm("drop"))).status == 201
    await install(api, "ValidatingWebhookConfiguration", "v", webhook("d.example.com", hooks.url("/d"), hooks.ca,
                  rules=[{"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"],
                          "resources": ["configmaps"]}]))
    resp = await call(api, "DELETE", f"{NS}/configmaps/keep")
    assert (resp.status, resp.body["message"]) == \
        (400, 'admission webhook "d.example.com" denied the request: keep is kept')
    assert (await call(api, "DELETE", f"{NS}/configmaps/drop")).status == 200
    req = hooks.calls[-1][1]
    assert (req["operation"], req["object"], req["options"]["kind"]) == ("DELETE", None, "DeleteOptions")


async def test_table_columns(api: ApiServer) -> None:
    await install(api, "ValidatingWebhookConfiguration", "v", webhook("a.example.com", "https://h.example.com/"),
                  webhook("b.example.com", "https://h.example.com/"))
    resp = await call(api, "GET", f"{GV}/validatingwebhookconfigurations",
                      accept="application/json;as=Table;v=v1;g=meta.k8s.io")
    assert [c["name"] for c in resp.body["columnDefinitions"]] == ["Name", "Webhooks", "Age"]
    assert resp.body["rows"][0]["cells"][:2] == ["v", 2]


async def test_match_conditions(api: ApiServer, hooks: Hooks) -> None:
    hooks.handlers["/c"] = lambda req: {"allowed": False, "status": {"message": "called"}}
    skip_named = {"name": "not-skipped",
                  "expression": 'object.metadata.name != "skip" && request.operation == "CREATE"'}
    await install(api, "ValidatingWebhookConfiguration", "v",
                  webhook("c.example.com", hooks.url("/c"), hooks.ca, matchConditions=[skip_named],
                          objectSelector={"matchLabels": {"t": "c"}}),
                  webhook("err.example.com", hooks.url("/c"), hooks.ca, objectSelector={"matchLabels": {"t": "err"}},
                          matchConditions=[{"name": "broken", "expression": 'object.metadata.labels.nope == "x"'}]),
                  webhook("ign.example.com", hooks.url("/c"), hooks.ca, objectSelector={"matchLabels": {"t": "ign"}},
                          failurePolicy="Ignore",
                          matchConditions=[{"name": "broken", "expression": 'object.metadata.labels.nope == "x"'}]))
    assert (await call(api, "POST", f"{NS}/configmaps", cm("skip", t="c"))).status == 201
    resp = await call(api, "POST", f"{NS}/configmaps", cm("other", t="c"))
    assert resp.body["message"].endswith("denied the request: called")
    resp = await call(api, "POST", f"{NS}/configmaps", cm("e", t="err"))
    assert (resp.status, resp.body["reason"]) == (403, "Forbidden")
    assert 'failed to evaluate match condition "broken" of webhook "err.example.com"' in resp.body["message"]
    assert (await call(api, "POST", f"{NS}/configmaps", cm("i", t="ign"))).status == 201
    assert [r["name"] for _, r in hooks.calls] == ["other"]


async def test_dry_run_refused_by_webhooks_with_side_effects(api: ApiServer, hooks: Hooks) -> None:
    """v1 accepts only None/NoneOnDryRun; an object stored by an older version may say Unknown."""
    hooks.handlers["/s"] = lambda req: {"allowed": True}
    wh = webhook("side.example.com", hooks.url("/s"), hooks.ca, sideEffects="Unknown", failurePolicy="Ignore")
    api.webhook_index.configs["/registry/admissionregistration.k8s.io/validatingwebhookconfigurations/old"] = \
        config("ValidatingWebhookConfiguration", "old", wh)
    resp = await call(api, "POST", f"{NS}/configmaps", cm("d"), query={"dryRun": "All"})
    assert (resp.status, resp.body["message"]) == (400, 'admission webhook "side.example.com" does not support dry run')
    assert (await call(api, "POST", f"{NS}/configmaps", cm("d"))).status == 201


async def test_openapi_and_discovery_of_the_group(api: ApiServer) -> None:
    resp = await call(api, "GET", "/openapi/v3/apis/admissionregistration.k8s.io/v1")
    assert resp.status == 200
    schemas = json.loads(resp.body)["components"]["schemas"]
    assert "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration" in schemas
    groups = (await call(api, "GET", "/apis")).body["groups"]
    assert "admissionregistration.k8s.io" in [g["name"] for g in groups]
