"""CRD conversion webhooks (apiserver/conversion.py, crconversion.py) against a loopback HTTPS
converter: v1 (stored, `spec.cronSpec`) and v2 (`spec.schedule`) of one CRD; create, get, list,
tables, patch and watch in v2; the webhook's failures as Kubernetes words them; the conversion
stanza validated (422 naming the field)."""

from __future__ import annotations

import asyncio
import base64
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from k8py.apiserver import certs
from k8py.apiserver.server import ApiServer

from apiserver_helpers import call

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
V1 = "/apis/conv.example.com/v1/namespaces/default/crontabs"
V2 = "/apis/conv.example.com/v2/namespaces/default/crontabs"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def _schema(field: str) -> dict[str, Any]:
    return {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {field: {"type": "string"}}}}}}


def crd(conversion: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.conv.example.com"},
            "spec": {"group": "conv.example.com", "scope": "Namespaced",
                     "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
                     "conversion": conversion,
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": _schema("cronSpec")},
                                  {"name": "v2", "served": True, "storage": False, "schema": _schema("schedule"),
                                   "additionalPrinterColumns": [{"name": "Schedule", "type": "string",
                                                                 "jsonPath": ".spec.schedule"}]}]}}


def convert(obj: dict[str, Any], desired: str) -> dict[str, Any]:
    """The converter's work: cronSpec (v1) <-> schedule (v2)."""
    out = copy.deepcopy(obj)
    spec = out.setdefault("spec", {})
    if desired.endswith("/v2") and "cronSpec" in spec:
        spec["schedule"] = spec.pop("cronSpec")
    if desired.endswith("/v1") and "schedule" in spec:
        spec["cronSpec"] = spec.pop("schedule")
    out["apiVersion"] = desired
    out["metadata"]["labels"] = {**(out["metadata"].get("labels") or {}), "converted": "yes"}
    out["metadata"]["uid"] = "changed-by-the-webhook"  # not kept: only labels and annotations are
    return out


class Converter:
    def __init__(self) -> None:
        self.reviews: list[dict[str, Any]] = []
        self.fail = ""
        self.port = 0
        self.ca = ""

    async def serve(self, req: web.Request) -> web.Response:
        review = await req.json()
        self.reviews.append(review)
        rq = review["request"]
        if self.fail:
            resp = {"uid": rq["uid"], "result": {"status": "Failure", "message": self.fail}}
        else:
            resp = {"uid": rq["uid"], "result": {"status": "Success"},
                    "convertedObjects": [convert(o, rq["desiredAPIVersion"]) for o in rq["objects"]]}
        return web.json_response({"apiVersion": review["apiVersion"], "kind": "ConversionReview", "response": resp})

    def conversion(self, port: int | None = None) -> dict[str, Any]:
        return {"strategy": "Webhook", "webhook": {
            "clientConfig": {"url": f"https://127.0.0.1:{port or self.port}/convert", "caBundle": self.ca},
            "conversionReviewVersions": ["v1"]}}


@pytest.fixture
async def converter(tmp_path: Path) -> AsyncIterator[Converter]:
    pki = certs.ensure_pki(tmp_path, sans=["127.0.0.1"])
    c = Converter()
    c.ca = base64.b64encode(pki.ca_cert.read_bytes()).decode()
    app = web.Application()
    app.router.add_post("/convert", c.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_ssl_context())
    await site.start()
    c.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield c
    await runner.cleanup()


@pytest.fixture
async def installed(api: ApiServer, converter: Converter) -> Converter:
    resp = await call(api, "POST", CRDS, crd(converter.conversion()))
    assert resp.status == 201, resp.body
    assert resp.body["spec"]["conversion"]["strategy"] == "Webhook"
    return converter


def tab(name: str, **spec: str) -> dict[str, Any]:
    return {"apiVersion": "conv.example.com/v2", "kind": "CronTab", "metadata": {"name": name}, "spec": spec}


async def test_create_in_v2_stored_as_v1_read_in_both(api: ApiServer, installed: Converter) -> None:
    created = await call(api, "POST", V2, tab("a", schedule="* * * * */5"))
    assert created.status == 201, created.body
    assert created.body["apiVersion"] == "conv.example.com/v2" and created.body["spec"] == {"schedule": "* * * * */5"}
    review = installed.reviews[0]
    assert review["apiVersion"] == "apiextensions.k8s.io/v1" and review["kind"] == "ConversionReview"
    assert review["request"]["desiredAPIVersion"] == "conv.example.com/v1" and review["request"]["uid"]
    v1 = (await call(api, "GET", f"{V1}/a")).body  # the storage version: no webhook call
    assert v1["apiVersion"] == "conv.example.com/v1" and v1["spec"] == {"cronSpec": "* * * * */5"}
    v2 = (await call(api, "GET", f"{V2}/a")).body
    assert v2["spec"] == {"schedule": "* * * * */5"} and v2["metadata"]["uid"] == v1["metadata"]["uid"]
    assert v2["metadata"]["labels"] == {"converted": "yes"}
    listed = (await call(api, "GET", V2)).body
    assert listed["apiVersion"] == "conv.example.com/v2" and [i["spec"] for i in listed["items"]] == [
        {"schedule": "* * * * */5"}]
    table = (await call(api, "GET", V2, accept=TABLE)).body
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Schedule"]
    assert table["rows"][0]["cells"][:2] == ["a", "* * * * */5"]


async def test_update_and_patch_in_v2(api: ApiServer, installed: Converter) -> None:
    await call(api, "POST", V1, {"apiVersion": "conv.example.com/v1", "kind": "CronTab", "metadata": {"name": "b"},
                                 "spec": {"cronSpec": "1 * * * *"}})
    patched = await call(api, "PATCH", f"{V2}/b", {"spec": {"schedule": "2 * * * *"}},
                         content_type="application/merge-patch+json")
    assert patched.status == 200, patched.body
    assert patched.body["spec"] == {"schedule": "2 * * * *"}
    assert (await call(api, "GET", f"{V1}/b")).body["spec"] == {"cronSpec": "2 * * * *"}
    cur = patched.body
    cur["spec"]["schedule"] = "3 * * * *"
    put = await call(api, "PUT", f"{V2}/b", cur)
    assert put.status == 200 and put.body["spec"] == {"schedule": "3 * * * *"}
    stale = await call(api, "PUT", f"{V2}/b", cur)  # the resourceVersion it read is gone
    assert stale.status == 409, stale.body
    deleted = await call(api, "DELETE", f"{V2}/b")
    assert deleted.status == 200 and deleted.body["kind"] == "Status"


async def test_watch_in_v2(api: ApiServer, installed: Converter) -> None:
    resp = await api.handle(__import__("k8py.api.request", fromlist=["ApiRequest"]).ApiRequest(
        "GET", V2, query={"watch": "true"}, headers={"accept": "application/json"}))
    assert resp.stream is not None
    events = resp.stream.__aiter__()
    await call(api, "POST", V1, {"apiVersion": "conv.example.com/v1", "kind": "CronTab", "metadata": {"name": "w"},
                                 "spec": {"cronSpec": "5 * * * *"}})
    ev = await asyncio.wait_for(events.__anext__(), 10)
    assert ev["type"] == "ADDED" and ev["object"]["apiVersion"] == "conv.example.com/v2"
    assert ev["object"]["spec"] == {"schedule": "5 * * * *"}
    await resp.stream.aclose()  # type: ignore[attr-defined]


async def test_webhook_failures_are_kubernetes_words(api: ApiServer, installed: Converter) -> None:
    await call(api, "POST", V1, {"apiVersion": "conv.example.com/v1", "kind": "CronTab", "metadata": {"name": "f"},
                                 "spec": {"cronSpec": "1 * * * *"}})
    installed.fail = "cannot convert today"
    got = await call(api, "GET", f"{V2}/f")
    assert got.status == 500 and got.body["reason"] == "InternalError"
    assert got.body["message"] == ("Internal error occurred: conversion webhook for conv.example.com/v1, "
                                   "Kind=CronTab returned failure: cannot convert today")
    # a converter that is not there: the URL and the dial error, never a traceback
    await call(api, "PATCH", f"{CRDS}/crontabs.conv.example.com",
               {"spec": {"conversion": installed.conversion(port=1)}}, content_type="application/merge-patch+json")
    for _ in range(200):
        got = await call(api, "GET", f"{V2}/f")
        if "127.0.0.1:1/" in got.body.get("message", ""):
            break
        await asyncio.sleep(0.02)
    assert got.status == 500
    assert got.body["message"] == (
        "Internal error occurred: conversion webhook for conv.example.com/v1, Kind=CronTab failed: "
        'Post "https://127.0.0.1:1/convert?timeout=30s": dial tcp 127.0.0.1:1: connect: connection refused')


BAD = [
    ({"strategy": "Webhook"}, "spec.conversion.webhookClientConfig: Required value: required when strategy is "
     "set to Webhook"),
    ({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://x.example.com/c"}}},
     "spec.conversion.conversionReviewVersions: Required value"),
    ({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "http://x.example.com/c"},
                                         "conversionReviewVersions": ["v1"]}},
     "spec.conversion.webhookClientConfig.url: Invalid value: \"http://x.example.com/c\": 'https' is the only "
     "allowed URL scheme"),
    ({"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"name": "s"}},
                                         "conversionReviewVersions": ["v9"]}},
     "spec.conversion.webhookClientConfig.service.namespace: Required value: service namespace is required"),
    ({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://x.example.com/c"},
                                         "conversionReviewVersions": ["v9"]}},
     'spec.conversion.conversionReviewVersions: Invalid value: []string{"v9"}: must include at least one of v1, '
     "v1beta1"),
    ({"strategy": "None", "webhook": {"clientConfig": {"url": "https://x.example.com/c"}}},
     "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook"),
    ({"strategy": "Sometimes"}, 'spec.conversion.strategy: Unsupported value: "Sometimes": supported values: '
     '"None", "Webhook"'),
]


@pytest.mark.parametrize(("conversion", "want"), BAD)
async def test_conversion_stanza_validated(api: ApiServer, conversion: dict[str, Any], want: str) -> None:
    resp = await call(api, "POST", CRDS, crd(conversion))
    assert resp.status == 422, resp.body
    assert want in resp.body["message"], resp.body["message"]


async def test_written_objects_checked_in_their_own_version(api: ApiServer, installed: Converter) -> None:
    bad = await call(api, "POST", V2, tab("n", schedule=5))  # type: ignore[arg-type]
    assert bad.status == 422, bad.body
    assert 'spec.schedule: Invalid value: "integer": spec.schedule in body must be of type string' in \
        bad.body["message"], bad.body["message"]
    assert installed.reviews == []  # refused before any conversion
    strict = await call(api, "POST", V2, tab("n", schedule="1 * * * *", cronSpec="x"),
                        query={"fieldValidation": "Strict"})
    assert strict.status == 400 and strict.body["message"] == (
        'CronTab in version "v2" cannot be handled as a CronTab: strict decoding error: unknown field "spec.cronSpec"')
    warned = await call(api, "POST", V2, tab("n", schedule="1 * * * *", cronSpec="x"))
    assert warned.status == 201 and warned.body["spec"] == {"schedule": "1 * * * *"}  # pruned in v2, not converted
    assert warned.headers["Warning"] == '299 - "unknown field \\"spec.cronSpec\\""'
