"""The admission webhook chain, in Kubernetes' order.

After the built-in admission of a create or update (the registry's `webhooks` hook):
mutating webhooks, configurations in name order then their webhooks in order, each
patch (JSONPatch) applied at once; a webhook with reinvocationPolicy IfNeeded is called
once more when a later webhook changed the object after it; then the built-in mutation
again (defaults) and validation (422); then the ValidatingAdmissionPolicies
(`admissionpolicy`); then the validating webhooks, all at once
(the first refusal in order wins). A webhook that cannot answer fails the request with
`Internal error occurred: failed calling webhook "x": ...` under failurePolicy Fail, and is
skipped under Ignore; a refusal is `admission webhook "x" denied the request: ...` with the
webhook's code. Dry runs refuse webhooks whose sideEffects are not None/NoneOnDryRun.
Warnings of the answers go to the response's Warning headers. Configurations are followed
through the watch caches (`observe`), so a new one applies within a moment of its creation,
as Kubernetes' informers do. Webhook configurations themselves never go to webhooks.
DELETE sends the old object (mutating webhooks' patches are ignored there).
matchConditions (CEL, `api.celexpr`) are evaluated on the object as it is when the webhook's
turn comes, with `object`, `oldObject` and `request` (not `authorizer`).
Gaps: CONNECT (exec, attach, port-forward) is not sent.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from k8py.api import celexpr
from k8py.api.resources import Resource
from k8py.api.types import Obj
from k8py.apiserver import admissionpolicy, errors, machinery, webhookcall, webhookmatch
from k8py.apiserver.errors import StatusError, bad_request, internal
from k8py.apiserver.webhookcall import CallError
from k8py.apiserver.webhookmatch import Attributes

if TYPE_CHECKING:
    from k8py.apiserver.registry import Registry, WriteOptions

log = logging.getLogger(__name__)

GROUP = "admissionregistration.k8s.io"
PREFIX = f"/registry/{GROUP}/"
MUTATING = "mutatingwebhookconfigurations"
VALIDATING = "validatingwebhookconfigurations"
POLICIES = "validatingadmissionpolicies"
BINDINGS = "validatingadmissionpolicybindings"
MAX_TIMEOUT = 30


class WebhookIndex:
    """The webhook configurations, by store key (fed by the watch caches)."""

    def __init__(self) -> None:
        self.configs: dict[str, Obj] = {}

    def observe_bytes(self, key: str, value: bytes | None) -> None:
        if value is None:
            self.configs.pop(key, None)
            return
        try:
            obj = json.loads(value)
        except ValueError:
            return
        if isinstance(obj, dict):
            self.configs[key] = obj

    def objects(self, plural: str) -> list[Obj]:
        """The objects of one kind, in name order."""
        prefix = f"{PREFIX}{plural}/"
        return [o for k, o in sorted(self.configs.items()) if k.startswith(prefix)]

    def webhooks(self, plural: str) -> list[dict[str, Any]]:
        """The webhooks of one kind of configuration, in Kubernetes' order."""
        prefix = f"{PREFIX}{plural}/"
        configs = sorted((k, o) for k, o in self.configs.items() if k.startswith(prefix))
        return [wh for _, o in configs for wh in o.get("webhooks") or [] if isinstance(wh, dict)]


def attributes(r: Resource, obj: Obj | None, old: Obj | None, opts: WriteOptions,
               subresource: str | None) -> Attributes:
    md = (obj if obj is not None else old or {}).get("metadata") or {}
    op = "DELETE" if obj is None else "CREATE" if old is None else "UPDATE"
    return Attributes(group=r.group, version=r.version, resource=r.plural, subresource=subresource or "",
                      kind=r.kind, operation=op,
                      namespace=str(md.get("namespace") or "") if r.namespaced else "",
                      name=str(md.get("name") or ""), namespaced=r.namespaced, obj=obj, old=old,
                      user=opts.user, groups=tuple(opts.groups), dry_run=opts.dry_run)


def review(a: Attributes, uid: str) -> Obj:
    """The AdmissionReview v1 request of `a`."""
    gvk = {"group": a.group, "version": a.version, "kind": a.kind}
    gvr = {"group": a.group, "version": a.version, "resource": a.resource}
    req: Obj = {"uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr}
    if a.subresource:
        req["subResource"] = req["requestSubResource"] = a.subresource
    req["name"] = a.name
    if a.namespace:
        req["namespace"] = a.namespace
    req["operation"] = a.operation
    req["userInfo"] = {"username": a.user, "groups": list(a.groups)}
    req["object"] = a.obj
    req["oldObject"] = a.old
    req["dryRun"] = a.dry_run
    kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions"}.get(a.operation, "DeleteOptions")
    req["options"] = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
    return {"apiVersion": webhookcall.REVIEW_API_VERSION, "kind": "AdmissionReview", "request": req}


def denied(name: str, status: Any) -> StatusError:
    """Kubernetes' ToStatusErr: the webhook's refusal as the request's error."""
    st = status if isinstance(status, dict) else {}
    given = st.get("code")
    code = given if isinstance(given, int) and given >= 400 else 400
    msg, reason = st.get("message") or "", st.get("reason") or ""
    by = f'admission webhook "{name}" denied the request'
    text = f"{by}: {msg}" if msg else f"{by}: {reason}" if reason else f"{by} without explanation"
    details = st.get("details") if isinstance(st.get("details"), dict) else None
    return StatusError(code, str(reason), text, details)


class Dispatcher:
    """Calls the webhooks of a write; `admit` is the registry's `webhooks` hook."""

    def __init__(self, index: WebhookIndex) -> None:
        self.index = index
        self.clients = webhookcall.Clients()

    async def close(self) -> None:
        await self.clients.close()

    async def admit(self, reg: Registry, r: Resource, obj: Obj | None, old: Obj | None, opts: WriteOptions,
                    subresource: str | None) -> None:
        if r.group == GROUP or not self.index.configs:
            return
        a = attributes(r, obj, old, opts, subresource)
        bindings = self.index.objects(BINDINGS)
        candidates = {MUTATING: [w for w in self.index.webhooks(MUTATING) if webhookmatch.rules_match(w, a)],
                      VALIDATING: [w for w in self.index.webhooks(VALIDATING) if webhookmatch.rules_match(w, a)]}
        if not bindings and not candidates[MUTATING] and not candidates[VALIDATING]:
            return  # most writes: no namespace read
        ns_labels = await self._namespace_labels(reg, a)
        mutating = [w for w in candidates[MUTATING] if webhookmatch.matches(w, a, ns_labels)]
        if mutating and obj is None:  # a delete: answers count, patches have nothing to change
            for wh in mutating:
                resp = await self._call(reg, wh, a, opts)
                if resp is not None and not resp.get("allowed"):
                    raise denied(str(wh.get("name")), resp.get("status"))
        elif mutating and obj is not None:
            before = copy.deepcopy(obj)
            await self._mutate(reg, mutating, a, opts)
            if obj != before:
                machinery.apply_defaults(obj, r)
                reg.validate(r, obj, old)
        if bindings:
            policies = {str(p["metadata"]["name"]): p for p in self.index.objects(POLICIES)}
            admissionpolicy.check(policies, bindings, a, ns_labels, review(a, "")["request"], opts)
        validating = [w for w in candidates[VALIDATING] if webhookmatch.matches(w, a, ns_labels)]
        if validating:
            results = await asyncio.gather(*(self._call(reg, w, a, opts) for w in validating))
            for wh, resp in zip(validating, results, strict=True):
                if resp is not None and not resp.get("allowed"):
                    raise denied(str(wh.get("name")), resp.get("status"))

    async def _namespace_labels(self, reg: Registry, a: Attributes) -> dict[str, str] | None:
        if not a.namespaced or not a.namespace:
            return None
        from k8py.apiserver.registry import NAMESPACES
        try:
            ns = await reg.get(NAMESPACES, None, a.namespace)
        except StatusError:
            return {}
        labels = (ns.get("metadata") or {}).get("labels")
        return labels if isinstance(labels, dict) else {}

    async def _mutate(self, reg: Registry, hooks: list[dict[str, Any]], a: Attributes, opts: WriteOptions) -> None:
        invoked: list[int] = []  # IfNeeded webhooks called so far (indexes in hooks)
        again: set[int] = set()
        for i, wh in enumerate(hooks):
            if await self._mutate_one(reg, wh, a, opts):
                again.update(j for j in invoked if j != i)
            if wh.get("reinvocationPolicy") == "IfNeeded":
                invoked.append(i)
        for i in sorted(again):
            await self._mutate_one(reg, hooks[i], a, opts)

    async def _mutate_one(self, reg: Registry, wh: dict[str, Any], a: Attributes, opts: WriteOptions) -> bool:
        """Call one mutating webhook and apply its patch; whether the object changed."""
        resp = await self._call(reg, wh, a, opts)
        if resp is None:
            return False
        name = str(wh.get("name"))
        if not resp.get("allowed"):
            raise denied(name, resp.get("status"))
        try:
            ops = webhookcall.patch_of(resp)
        except CallError as e:
            return self._failed(wh, e)
        if not ops:
            return False
        assert a.obj is not None
        try:
            patched = machinery.json_patch(a.obj, ops)
        except Exception as e:  # noqa: BLE001 - any bad patch is the webhook's error
            return self._failed(wh, CallError(f"received invalid webhook response: {e}"))
        if not isinstance(patched, dict) or patched == a.obj:
            return False
        a.obj.clear()
        a.obj.update(patched)
        return True

    def _failed(self, wh: dict[str, Any], e: CallError) -> bool:
        name = str(wh.get("name"))
        if wh.get("failurePolicy", "Fail") == "Ignore":
            log.warning("failed calling webhook %r, failing open: %s", name, e)
            return False
        raise internal(f'failed calling webhook "{name}": {e}')

    def _conditions_hold(self, wh: dict[str, Any], a: Attributes) -> bool:
        """Whether every matchCondition holds for the object as it is now. One that fails to
        evaluate refuses the request (403) under failurePolicy Fail, skips the webhook under Ignore."""
        conds = wh.get("matchConditions")
        if not conds:
            return True
        variables = {"object": a.obj, "oldObject": a.old, "request": review(a, "")["request"]}
        for c in conds:
            try:
                if celexpr.evaluate(str(c.get("expression")), variables) is not True:
                    return False
            except celexpr.CelError as e:
                if wh.get("failurePolicy", "Fail") == "Ignore":
                    return False
                what = errors.qualified(a.resource, a.group)
                raise StatusError(403, "Forbidden", f'{what} "{a.name}" is forbidden: failed to evaluate match '
                                  f'condition "{c.get("name")}" of webhook "{wh.get("name")}": {e}',
                                  {"name": a.name, "group": a.group, "kind": a.resource}) from None
        return True

    async def _call(self, reg: Registry, wh: dict[str, Any], a: Attributes, opts: WriteOptions) -> Obj | None:
        """The webhook's response (None when it failed under Ignore); raises for Fail."""
        name = str(wh.get("name"))
        if not self._conditions_hold(wh, a):
            return None
        if a.dry_run and wh.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise bad_request(f'admission webhook "{name}" does not support dry run')
        timeout = min(int(wh.get("timeoutSeconds") or 10), MAX_TIMEOUT)
        uid = str(uuid.uuid4())
        try:
            out = await webhookcall.post(wh.get("clientConfig") or {}, review(a, uid), timeout,
                                         lambda ns, svc, port: resolve_service(reg, ns, svc, port), self.clients)
            resp = webhookcall.response_of(out, uid)
        except CallError as e:
            self._failed(wh, e)
            return None
        warnings = resp.get("warnings")
        if isinstance(warnings, list):
            opts.warnings.extend(str(w) for w in warnings)
        return resp


async def resolve_service(reg: Registry, namespace: str, name: str, port: int) -> tuple[str, int]:
    """One ready address of a Service's endpoints and the port its `port` leads to."""
    from k8py.api import resources
    svcs, eps = resources.lookup("", "services"), resources.lookup("", "endpoints")
    assert svcs is not None and eps is not None
    try:
        svc = await reg.get(svcs, namespace, name)
    except StatusError:
        raise CallError(f'service "{name}" not found') from None
    sport = next((p for p in (svc.get("spec") or {}).get("ports") or [] if p.get("port") == port), None)
    if sport is None:
        raise CallError(f'service "{name}" has no port {port}')
    try:
        ep = await reg.get(eps, namespace, name)
    except StatusError:
        ep = {}
    for subset in ep.get("subsets") or []:
        ports = subset.get("ports") or []
        eport = next((p.get("port") for p in ports if p.get("name", "") == sport.get("name", "")), None)
        if eport is None and len(ports) == 1:
            eport = ports[0].get("port")
        for addr in subset.get("addresses") or []:
            if addr.get("ip") and eport:
                return str(addr["ip"]), int(eport)
    raise CallError(f'no endpoints available for service "{name}"')
