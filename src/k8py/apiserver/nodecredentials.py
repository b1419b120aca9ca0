"""`POST /k8py/v1/node-credentials`: a joining node's bootstrap identity (the shared agent
token's user, in system:bootstrappers) obtains the node's credentials: a client
certificate for `system:node:<nodeName>` in `system:nodes` and a kubelet serving
certificate for the node's name and addresses, signed by the cluster CA
(`certs.mint_node_credentials`).

This stands in for Kubernetes' TLS bootstrap (a CertificateSigningRequest for the
kube-apiserver-client-kubelet signer, approved automatically for system:bootstrappers):
the same trust (a bootstrapper may become any node), fewer round trips; the private keys
are made by the server and sent once over the verified TLS connection. Body:
`{"nodeName": "n1", "addresses": ["10.0.0.5"]}`; answer: the PEMs as strings (caCert,
clientCert, clientKey, servingCert, servingKey, and policyCert/policyKey: the identity of the
node's NetworkPolicy enforcer, which may read every pod where the node may not). Bad input
is a 400/422 Status naming the field.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from k8py.api.request import ApiRequest, ApiResponse
from k8py.apiserver import certs

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _status(code: int, reason: str, message: str) -> ApiResponse:
    return ApiResponse(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": reason, "code": code})


def parse(body: bytes) -> tuple[str, list[str]] | ApiResponse:
    """(node name, addresses) of a request body, or the Status refusing it."""
    try:
        doc = json.loads(body or b"{}")
    except ValueError as e:
        return _status(400, "BadRequest", f"the body is not JSON: {e}")
    if not isinstance(doc, dict):
        return _status(400, "BadRequest", "the body must be a JSON object")
    name = doc.get("nodeName")
    if not isinstance(name, str) or len(name) > 253 or not _DNS1123.match(name):
        return _status(422, "Invalid", f"nodeName: Invalid value: {name!r}: a lowercase RFC 1123 subdomain")
    if name in ("localhost", "kubernetes", "kubernetes.default") or name == "kubernetes.default.svc" or \
            name.startswith("kubernetes.default.svc."):  # the API server's names: no node certificate carries them
        return _status(422, "Invalid", f"nodeName: Invalid value: {name!r}: a name of the API server")
    addresses = doc.get("addresses") or []
    if not isinstance(addresses, list):
        return _status(422, "Invalid", "addresses: Invalid value: must be a list of IP addresses")
    for a in addresses:
        try:
            ipaddress.ip_address(a)
        except (TypeError, ValueError):
            return _status(422, "Invalid", f"addresses: Invalid value: {a!r}: not an IP address")
    return name, [str(a) for a in addresses]


def handler(pki_dir: Path) -> Callable[[ApiRequest], Awaitable[ApiResponse]]:
    async def node_credentials(req: ApiRequest) -> ApiResponse:
        parsed = parse(req.body)
        if isinstance(parsed, ApiResponse):
            return parsed
        name, addresses = parsed
        c = await asyncio.to_thread(certs.mint_node_credentials, pki_dir, name, addresses)
        return ApiResponse(200, {"nodeName": name, "user": certs.node_user(name), "caCert": c.ca_cert.decode(),
                                 "clientCert": c.client_cert.decode(), "clientKey": c.client_key.decode(),
                                 "servingCert": c.serving_cert.decode(), "servingKey": c.serving_key.decode(),
                                 "policyCert": c.policy_cert.decode(), "policyKey": c.policy_key.decode()})
    return node_credentials
