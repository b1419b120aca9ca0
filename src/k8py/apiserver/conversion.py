"""CRD conversion webhooks: objects converted by a ConversionReview, as kube-apiserver sends it.

`Converter.convert(webhook, objs, desired)` POSTs one `apiextensions.k8s.io/v1` (or v1beta1,
the first of the CRD's conversionReviewVersions k8py speaks) ConversionReview
`{request: {uid, desiredAPIVersion, objects}}` through the admission webhooks' HTTPS client
(`webhookcall`: url or Service, caBundle, `?timeout=30s`) and checks the answer as Kubernetes
does: the same uid, `result.status` Success, as many objects as sent, each of the desired
apiVersion and the same kind; of the metadata only labels and annotations come from the
webhook (the rest is the original's). Objects already in the desired version are not sent.
Every failure is a 500 InternalError Status in Kubernetes' words
(`conversion webhook for <group>/<version>, Kind=<Kind> failed: Post "...": ...`).
"""

from __future__ import annotations

import uuid
from typing import Any

from k8py.api.types import Obj
from k8py.apiserver import webhookcall
from k8py.apiserver.errors import internal
from k8py.apiserver.webhookcall import CallError, Clients, Resolver

GROUP = "apiextensions.k8s.io"
KIND = "ConversionReview"
TIMEOUT = 30  # seconds: kube-apiserver's conversion webhook timeout
_RESTORED = ("labels", "annotations")  # the only metadata a webhook may change


def review_api_version(webhook: dict[str, Any]) -> str:
    versions = webhook.get("conversionReviewVersions") or []
    return f"{GROUP}/" + next((v for v in versions if v in ("v1", "v1beta1")), "v1")


def _gvk(obj: Obj) -> str:
    return f"{obj.get('apiVersion', '')}, Kind={obj.get('kind', '')}"


def _response(out: Obj, api_version: str, uid: str) -> Obj:
    """The `response` of a ConversionReview answer, checked (raises CallError)."""
    if out.get("apiVersion") != api_version or out.get("kind") != KIND:
        raise CallError(f"expected webhook response of {api_version}, Kind={KIND}, got "
                        f"{out.get('apiVersion') or '/'}, Kind={out.get('kind') or ''}")
    resp = out.get("response")
    if not isinstance(resp, dict):
        raise CallError("response was absent")
    if resp.get("uid") != uid:
        raise CallError(f'expected response.uid="{uid}", got "{resp.get("uid") or ""}"')
    return resp


def _merge(original: Obj, converted: Any, desired: str, index: int) -> Obj:
    """The converted object, checked against its original; metadata but labels and annotations restored."""
    where = f"invalid converted object at index {index}"
    if not isinstance(converted, dict):
        raise CallError(f"{where}: not an object")
    if converted.get("apiVersion") != desired:
        raise CallError(f'{where}: invalid apiVersion "{converted.get("apiVersion") or ""}", expected "{desired}"')
    if converted.get("kind") != original.get("kind"):
        raise CallError(f'{where}: invalid kind "{converted.get("kind") or ""}", expected "{original.get("kind")}"')
    md = dict(original.get("metadata") or {})
    raw_md = converted.get("metadata")
    new_md: dict[str, Any] = raw_md if isinstance(raw_md, dict) else {}
    for k in _RESTORED:
        if new_md.get(k):
            md[k] = new_md[k]
        else:
            md.pop(k, None)
    out = dict(converted)
    out["metadata"] = md
    return out


class Converter:
    """Calls conversion webhooks; `resolve` finds a ready endpoint of a Service."""

    def __init__(self, clients: Clients, resolve: Resolver) -> None:
        self.clients, self.resolve = clients, resolve

    async def convert(self, webhook: dict[str, Any], objs: list[Obj], desired: str) -> list[Obj]:
        """`objs` in apiVersion `desired` (raises a 500 StatusError naming the webhook's failure)."""
        todo = [i for i, o in enumerate(objs) if o.get("apiVersion") != desired]
        if not todo:
            return objs
        sent = [objs[i] for i in todo]
        try:
            converted = await self._call(webhook, sent, desired)
        except CallError as e:
            raise internal(f"conversion webhook for {_gvk(sent[0])} failed: {e}") from None
        except _Failure as e:
            raise internal(f"conversion webhook for {_gvk(sent[0])} {e}") from None
        out = list(objs)
        for i, obj in zip(todo, converted, strict=True):
            out[i] = obj
        return out

    async def _call(self, webhook: dict[str, Any], sent: list[Obj], desired: str) -> list[Obj]:
        api_version = review_api_version(webhook)
        uid = str(uuid.uuid4())
        review = {"kind": KIND, "apiVersion": api_version,
                  "request": {"uid": uid, "desiredAPIVersion": desired, "objects": sent}}
        answer = await webhookcall.post(webhook.get("clientConfig") or {}, review, TIMEOUT, self.resolve,
                                        self.clients, what="")
        try:
            resp = _response(answer, api_version, uid)
        except CallError as e:
            raise _Failure(f"returned invalid response: {e}") from None
        raw = resp.get("result")
        result: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if result.get("status") != "Success":
            raise _Failure(f"returned failure: {result.get('message') or 'unknown reason'}")
        objs = resp.get("convertedObjects")
        objs = objs if isinstance(objs, list) else []
        if len(objs) != len(sent):
            raise _Failure(f"returned {len(objs)} objects, expected {len(sent)}")
        try:
            return [_merge(o, c, desired, i) for i, (o, c) in enumerate(zip(sent, objs, strict=True))]
        except CallError as e:
            raise _Failure(f"returned {e}") from None


class _Failure(Exception):
    """The webhook answered, wrongly: the rest of Kubernetes' sentence after the kind."""

