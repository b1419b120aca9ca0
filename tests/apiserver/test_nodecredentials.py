"""POST /k8py/v1/node-credentials: bad input is a Status naming the field; good input gets
a client certificate for system:node:NAME in system:nodes and a serving certificate for the
node's name and addresses, both signed by the cluster CA."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from k8py.api.request import ApiRequest
from k8py.apiserver import certs, nodecredentials


@pytest.mark.parametrize(("body", "code", "fragment"), [
    (b"{", 400, "not JSON"),
    (b"[]", 400, "JSON object"),
    (b"{}", 422, "nodeName"),
    (json.dumps({"nodeName": "Bad_Name"}).encode(), 422, "nodeName"),
    (json.dumps({"nodeName": "../x"}).encode(), 422, "nodeName"),
    (json.dumps({"nodeName": "kubernetes.default.svc"}).encode(), 422, "a name of the API server"),
    (json.dumps({"nodeName": "n1", "addresses": "10.0.0.1"}).encode(), 422, "addresses"),
    (json.dumps({"nodeName": "n1", "addresses": ["nope"]}).encode(), 422, "addresses"),
])
def test_bad_input(body: bytes, code: int, fragment: str) -> None:
    r = nodecredentials.parse(body)
    assert not isinstance(r, tuple)
    assert r.status == code and fragment in r.body["message"]


def test_credentials(tmp_path: Path) -> None:
    pki = certs.ensure_pki(tmp_path)
    handler = nodecredentials.handler(pki.dir)
    body = json.dumps({"nodeName": "n1", "addresses": ["10.0.0.5"]}).encode()
    r = asyncio.run(handler(ApiRequest("POST", "/k8py/v1/node-credentials", body=body)))
    assert r.status == 200 and r.body["user"] == "system:node:n1"
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    client = x509.load_pem_x509_certificate(r.body["clientCert"].encode())
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:n1"
    assert client.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    serving = x509.load_pem_x509_certificate(r.body["servingCert"].encode())
    for cert in (client, serving):
        cert.verify_directly_issued_by(ca)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "n1" in sans.get_values_for_type(x509.DNSName)
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.5", "127.0.0.1"]
