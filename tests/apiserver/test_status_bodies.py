"""Status bodies byte for byte as kube-apiserver writes them: metav1.Status' field order,
"details" only where Kubernetes sets them, Go's escapes and the trailing newline."""

from __future__ import annotations

import pytest

from k8py.api import jsonwire
from k8py.apiserver import errors

HEAD = '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'


@pytest.mark.parametrize(("err", "tail"), [
    (errors.not_found("deployments", "web", "apps"),
     '"message":"deployments.apps \\"web\\" not found","reason":"NotFound",'
     '"details":{"name":"web","group":"apps","kind":"deployments"},"code":404}'),
    (errors.conflict("configmaps", "c"),
     '"message":"Operation cannot be fulfilled on configmaps \\"c\\": the object has been modified; please apply '
     'your changes to the latest version and try again","reason":"Conflict",'
     '"details":{"name":"c","kind":"configmaps"},"code":409}'),
    (errors.already_exists("pods", "p"),
     '"message":"pods \\"p\\" already exists","reason":"AlreadyExists","details":{"name":"p","kind":"pods"},'
     '"code":409}'),
    (errors.bad_request("no <body>"),  # NewBadRequest: no details
     '"message":"no \\u003cbody\\u003e","reason":"BadRequest","code":400}'),
    (errors.gone("too old resource version: 1 (5)"),  # NewResourceExpired: no details
     '"message":"too old resource version: 1 (5)","reason":"Expired","code":410}'),
    (errors.resource_not_found(),  # a generic server response: empty details
     '"message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}'),
    (errors.forbidden("namespaces", "kube-system", "this namespace may not be deleted"),
     '"message":"namespaces \\"kube-system\\" is forbidden: this namespace may not be deleted",'
     '"reason":"Forbidden","details":{"name":"kube-system","kind":"namespaces"},"code":403}'),
    (errors.invalid("Pod", "p", [{"reason": "FieldValueRequired", "message": "Required value",
                                  "field": "spec.containers"}]),
     '"message":"Pod \\"p\\" is invalid: spec.containers: Required value","reason":"Invalid",'
     '"details":{"name":"p","kind":"Pod","causes":[{"reason":"FieldValueRequired","message":"Required value",'
     '"field":"spec.containers"}]},"code":422}'),
])
def test_status_bytes(err: errors.StatusError, tail: str) -> None:
    assert jsonwire.encode(err.status()) == (HEAD + tail + "\n").encode()
