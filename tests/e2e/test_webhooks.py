"""Admission webhooks in a real cluster, through the real kubectl: a validating webhook and
a mutating webhook served over HTTPS by a pod (the host's Python, stdlib only, in nginx's
Debian image) behind a Service, trusted through caBundle; a webhook that is down refuses
writes under failurePolicy Fail with Kubernetes' words, and lets them through under Ignore;
the documentation's ValidatingAdmissionPolicy example (replicas <= 5); a CRD conversion webhook
served by the same pod converting v1 (stored) and v2 of a CRD for kubectl; the same pod as
the backend of an APIService (the aggregation layer) for `kubectl get --raw` and api-resources."""

from __future__ import annotations

import base64
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from k8py.apiserver import certs

from e2e_harness import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root]

NS = "wh-test"
SERVER = textwrap.dedent("""
    import base64, json, ssl
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    def convert(review):
        rq, objs = review["request"], []
        for o in rq["objects"]:
            spec = dict(o.get("spec") or {})
            if rq["desiredAPIVersion"].endswith("/v2") and "cronSpec" in spec:
                spec["schedule"] = spec.pop("cronSpec")
            if rq["desiredAPIVersion"].endswith("/v1") and "schedule" in spec:
                spec["cronSpec"] = spec.pop("schedule")
            objs.append({**o, "spec": spec, "apiVersion": rq["desiredAPIVersion"]})
        return {"apiVersion": review["apiVersion"], "kind": "ConversionReview",
                "response": {"uid": rq["uid"], "result": {"status": "Success"}, "convertedObjects": objs}}

    RESOURCES = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "demo.k8py.test/v1",
                 "resources": [{"name": "flunders", "singularName": "flunder", "namespaced": True,
                                "kind": "Flunder", "verbs": ["get", "list"]}]}

    class Hook(BaseHTTPRequestHandler):
        def do_GET(self):  # a tiny aggregated API server: demo.k8py.test/v1 flunders
            path = self.path.split("?")[0]
            if path == "/apis/demo.k8py.test/v1":
                return self.answer(RESOURCES)
            if path.startswith("/apis/demo.k8py.test/v1/") and path.endswith("/flunders"):
                user = self.headers.get("X-Remote-User", "")
                return self.answer({"kind": "FlunderList", "apiVersion": "demo.k8py.test/v1", "metadata": {},
                                    "items": [{"metadata": {"name": "seen-" + user.replace(":", "-")}}]})
            self.send_error(404)

        def do_POST(self):
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path.startswith("/convert"):
                return self.answer(convert(review))
            req = review["request"]
            labels = req["object"]["metadata"].get("labels") or {}
            resp = {"uid": req["uid"], "allowed": True}
            if self.path.startswith("/validate") and labels.get("bad") == "true":
                resp = {"uid": req["uid"], "allowed": False,
                        "status": {"code": 403, "reason": "Forbidden", "message": "bad=true is not welcome"}}
            if self.path.startswith("/mutate"):
                ops = [{"op": "add", "path": "/metadata/labels", "value": {**labels, "mutated-by": "webhook"}}]
                resp.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(ops).encode()).decode())
            self.answer({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})

        def answer(self, out):
            body = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain("/tls/tls.crt", "/tls/tls.key")
    srv = ThreadingHTTPServer(("0.0.0.0", 8443), Hook)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("serving", flush=True)
    srv.serve_forever()
""")


def _pod(node: str) -> dict[str, Any]:
    venv = Path(sys.prefix).resolve()
    python_home = Path(os.path.realpath(sys.executable)).parents[1]
    mounts = [{"name": "venv", "mountPath": str(venv), "readOnly": True},
              {"name": "python", "mountPath": str(python_home), "readOnly": True},
              {"name": "tls", "mountPath": "/tls", "readOnly": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wh", "namespace": NS, "labels": {"app": "wh"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "hook", "image": "nginx:1.14.2",
                                     "command": [str(venv / "bin" / "python"), "-c", SERVER],
                                     "ports": [{"containerPort": 8443}], "volumeMounts": mounts}],
                     "volumes": [{"name": "venv", "hostPath": {"path": str(venv), "type": "Directory"}},
                                 {"name": "python", "hostPath": {"path": str(python_home), "type": "Directory"}},
                                 {"name": "tls", "secret": {"secretName": "wh-tls"}}]}}


def _config(kind: str, name: str, service: str, path: str, ca: str, **over: Any) -> dict[str, Any]:
    wh = {"name": name, "sideEffects": "None", "admissionReviewVersions": ["v1"],
          "clientConfig": {"service": {"name": service, "namespace": NS, "path": path}, "caBundle": ca},
          "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}},
          "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                     "resources": ["configmaps"]}], **over}
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
            "webhooks": [wh]}


@pytest.fixture(scope="module")
def hook_ca(agent_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The webhook pod serving https on wh.wh-test.svc:443; the CA bundle that trusts it."""
    c = agent_cluster
    pki = certs.ensure_pki(tmp_path_factory.mktemp("wh-pki"), sans=[f"wh.{NS}.svc"])
    c.kubectl("create", "namespace", NS)
    c.kubectl("create", "secret", "tls", "wh-tls", "-n", NS, f"--cert={pki.serving_cert}", f"--key={pki.serving_key}")
    c.kubectl("apply", "-f", "-", input=json.dumps(_pod(c.node_name)))
    c.kubectl("create", "service", "clusterip", "wh", "-n", NS, "--tcp=443:8443")
    wait_for(lambda: "serving" in c.kubectl("logs", "wh", "-n", NS, check=False).stdout, 120, "the webhook pod")
    return base64.b64encode(pki.ca_cert.read_bytes()).decode()


def _create(c: Any, name: str, *labels: str) -> Any:
    c.kubectl("delete", "configmap", name, "-n", NS, "--ignore-not-found")
    out = c.kubectl("create", "configmap", name, "-n", NS, "--from-literal=k=v", "-o", "json", check=False)
    if out.returncode == 0 and labels:
        out = c.kubectl("label", "configmap", name, "-n", NS, *labels, "-o", "json", check=False)
    return out


def test_webhooks_served_by_a_pod(agent_cluster: Any, hook_ca: str) -> None:
    c = agent_cluster
    c.kubectl("apply", "-f", "-", input=json.dumps(
        _config("ValidatingWebhookConfiguration", "deny.k8py.test", "wh", "/validate", hook_ca)))
    denial = 'admission webhook "deny.k8py.test" denied the request: bad=true is not welcome'
    # the configuration applies within a moment; the pod's endpoints too
    out = wait_for(lambda: (o := _create(c, "bad", "bad=true")).returncode != 0 and denial in o.stderr and o,
                   60, "the validating webhook refusing bad=true")
    assert "Error from server (Forbidden)" in out.stderr, out.stderr
    assert c.kubectl("get", "configmap", "bad", "-n", NS, "-o", "jsonpath={.metadata.labels}").stdout in ("", "{}")
    good = _create(c, "good", "bad=false")
    assert good.returncode == 0, good.stderr
    table = c.kubectl("get", "validatingwebhookconfigurations").stdout.splitlines()
    assert table[0].split() == ["NAME", "WEBHOOKS", "AGE"] and table[1].split()[:2] == ["deny.k8py.test", "1"]
    c.kubectl("apply", "-f", "-", input=json.dumps(
        _config("MutatingWebhookConfiguration", "label.k8py.test", "wh", "/mutate", hook_ca)))
    labelled = wait_for(lambda: (o := _create(c, "mutated")).returncode == 0 and
                        json.loads(o.stdout)["metadata"].get("labels", {}).get("mutated-by") == "webhook" and o,
                        60, "the mutating webhook adding its label")
    assert json.loads(labelled.stdout)["metadata"]["labels"] == {"mutated-by": "webhook"}
    c.kubectl("delete", "validatingwebhookconfiguration", "deny.k8py.test")
    c.kubectl("delete", "mutatingwebhookconfiguration", "label.k8py.test")


def test_a_webhook_that_is_down(agent_cluster: Any, hook_ca: str) -> None:
    c = agent_cluster
    c.kubectl("create", "service", "clusterip", "nowhere", "-n", NS, "--tcp=443:8443")
    cfg = _config("ValidatingWebhookConfiguration", "down.k8py.test", "nowhere", "/validate", hook_ca,
                  objectSelector={"matchLabels": {"test": "down"}})
    c.kubectl("apply", "-f", "-", input=json.dumps(cfg))
    manifest = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "down", "namespace": NS, "labels": {"test": "down"}}})
    want = ('Error from server (InternalError): error when creating "STDIN": Internal error occurred: '
            'failed calling webhook "down.k8py.test": failed to call webhook: '
            f'Post "https://nowhere.{NS}.svc:443/validate?timeout=10s": '
            'no endpoints available for service "nowhere"')
    out = wait_for(lambda: (o := c.kubectl("create", "-f", "-", input=manifest, check=False)).returncode != 0 and o,
                   60, "the down webhook refusing")
    assert out.stderr.strip() == want, out.stderr
    cfg["webhooks"][0]["failurePolicy"] = "Ignore"
    c.kubectl("apply", "-f", "-", input=json.dumps(cfg))
    wait_for(lambda: c.kubectl("create", "-f", "-", input=manifest, check=False).returncode == 0, 60,
             "the request going through under Ignore")
    c.kubectl("delete", "validatingwebhookconfiguration", "down.k8py.test")


def _conv_crd(ca: str) -> dict[str, Any]:
    def version(name: str, field: str, storage: bool) -> dict[str, Any]:
        return {"name": name, "served": True, "storage": storage, "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"spec": {"type": "object", "properties": {field: {"type": "string"}}}}}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.conv.k8py.test"},
            "spec": {"group": "conv.k8py.test", "scope": "Namespaced",
                     "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
                     "versions": [version("v1", "cronSpec", True), version("v2", "schedule", False)],
                     "conversion": {"strategy": "Webhook", "webhook": {
                         "conversionReviewVersions": ["v1"],
                         "clientConfig": {"caBundle": ca, "service": {"name": "wh", "namespace": NS,
                                                                      "path": "/convert"}}}}}}


def test_crd_conversion_webhook(agent_cluster: Any, hook_ca: str) -> None:
    c = agent_cluster
    c.kubectl("apply", "-f", "-", input=json.dumps(_conv_crd(hook_ca)))
    c.kubectl("wait", "--for=condition=Established", "crd/crontabs.conv.k8py.test", "--timeout=60s")
    c.kubectl("apply", "-n", NS, "-f", "-", input=json.dumps(
        {"apiVersion": "conv.k8py.test/v1", "kind": "CronTab", "metadata": {"name": "tab"},
         "spec": {"cronSpec": "*/5 * * * *"}}))
    get_v2 = ("get", "crontabs.v2.conv.k8py.test", "tab", "-n", NS, "-o", "json")
    out = wait_for(lambda: (o := c.kubectl(*get_v2, check=False)).returncode == 0 and o, 60, "the converted CR")
    as_v2 = json.loads(out.stdout)
    assert as_v2["apiVersion"] == "conv.k8py.test/v2" and as_v2["spec"] == {"schedule": "*/5 * * * *"}
    c.kubectl("patch", "crontabs.v2.conv.k8py.test", "tab", "-n", NS, "--type=merge",
              "-p", '{"spec": {"schedule": "1 * * * *"}}')
    assert c.kubectl_json("get", "crontabs.v1.conv.k8py.test", "tab", "-n", NS)["spec"] == {"cronSpec": "1 * * * *"}
    raw = c.kubectl("get", "--raw", f"/apis/conv.k8py.test/v2/namespaces/{NS}/crontabs?watch=true&timeoutSeconds=1")
    event = json.loads(raw.stdout.splitlines()[0])
    assert event["type"] == "ADDED" and event["object"]["spec"] == {"schedule": "1 * * * *"}, raw.stdout
    c.kubectl("delete", "crd", "crontabs.conv.k8py.test")


def test_apiservice_proxied_to_a_pod(agent_cluster: Any, hook_ca: str) -> None:
    c = agent_cluster
    apisvc = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
              "metadata": {"name": "v1.demo.k8py.test"},
              "spec": {"group": "demo.k8py.test", "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15,
                       "service": {"name": "wh", "namespace": NS}, "caBundle": hook_ca}}
    c.kubectl("apply", "-f", "-", input=json.dumps(apisvc))
    c.kubectl("wait", "--for=condition=Available", "apiservice/v1.demo.k8py.test", "--timeout=60s")
    row = c.kubectl("get", "apiservice", "v1.demo.k8py.test", "--no-headers").stdout.split()
    assert row[1:3] == [f"{NS}/wh", "True"], row
    raw = json.loads(c.kubectl("get", "--raw", "/apis/demo.k8py.test/v1/namespaces/default/flunders").stdout)
    assert raw["kind"] == "FlunderList" and raw["items"][0]["metadata"]["name"].startswith("seen-"), raw
    assert raw["items"][0]["metadata"]["name"] != "seen-", "the user was not forwarded"
    listed = c.kubectl("api-resources", "--api-group=demo.k8py.test", "--no-headers").stdout.split()
    assert listed[0] == "flunders" and "demo.k8py.test/v1" in listed, listed
    c.kubectl("delete", "apiservice", "v1.demo.k8py.test")


VAP = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: "demo-policy.example.com"
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups:   ["apps"]
      apiVersions: ["v1"]
      operations:  ["CREATE", "UPDATE"]
      resources:   ["deployments"]
  validations:
    - expression: "object.spec.replicas <= 5"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: "demo-binding-test.example.com"
spec:
  policyName: "demo-policy.example.com"
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        environment: test
"""


def test_validating_admission_policy(agent_cluster: Any) -> None:
    c = agent_cluster
    c.kubectl("create", "namespace", "vap-test")
    c.kubectl("label", "namespace", "vap-test", "environment=test")
    c.kubectl("apply", "-f", "-", input=VAP)
    args = ("create", "deployment", "big", "-n", "vap-test", "--image=nginx:1.14.2", "--dry-run=server")
    out = wait_for(lambda: (o := c.kubectl(*args, "--replicas=6", check=False)).returncode != 0 and o, 60,
                   "the policy refusing 6 replicas")
    assert out.stderr.strip() == (
        'error: failed to create deployment: deployments.apps "big" is forbidden: ValidatingAdmissionPolicy '
        "'demo-policy.example.com' with binding 'demo-binding-test.example.com' denied request: "
        "failed expression: object.spec.replicas <= 5"), out.stderr
    assert c.kubectl(*args, "--replicas=5").returncode == 0
    assert c.kubectl("get", "validatingadmissionpolicies").stdout.split()[:4] == \
        ["NAME", "VALIDATIONS", "PARAMKIND", "AGE"]
    c.kubectl("delete", "-f", "-", input=VAP)
