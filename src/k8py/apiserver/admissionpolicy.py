"""ValidatingAdmissionPolicy: CEL validations bound to requests, as Kubernetes evaluates them.

Each ValidatingAdmissionPolicyBinding (in name order) names a policy; a request is checked
when the policy's matchConstraints (resourceRules minus excludeResourceRules, selectors,
matchPolicy) and the binding's matchResources, if any, both match, and the policy's
matchConditions hold. Its `variables` are computed in order (`variables.<name>`), then each
validation: false means a failure with the validation's message (its messageExpression
first, else "failed expression: <expr>") and reason (default Invalid, 422). The binding's
validationActions say what a failure does: Deny refuses the request with Kubernetes' words
(`<resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<p>' with binding '<b>' denied
request: ...`), Warn adds a Warning header, Audit is not recorded (no audit log). An
expression that errors counts as a failure under failurePolicy Fail, is skipped under Ignore.
Gaps: paramKind/paramRef (a policy with params is skipped), the `authorizer` and
`namespaceObject` variables, auditAnnotations, type checking in status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from k8py.api import celexpr
from k8py.apiserver.errors import StatusError, qualified
from k8py.apiserver.webhookmatch import Attributes, matches

if TYPE_CHECKING:
    from k8py.apiserver.registry import WriteOptions

CODES = {"Unauthorized": 401, "Forbidden": 403, "Invalid": 422, "RequestEntityTooLarge": 413}


def _as_hook(m: dict[str, Any], rules_key: str = "resourceRules") -> dict[str, Any]:
    """A MatchResources in the shape of a webhook, for `webhookmatch`."""
    return {"rules": m.get(rules_key) or [], "matchPolicy": m.get("matchPolicy", "Equivalent"),
            "namespaceSelector": m.get("namespaceSelector") or {}, "objectSelector": m.get("objectSelector") or {}}


def resources_match(m: dict[str, Any], a: Attributes, ns_labels: dict[str, str] | None) -> bool:
    if not matches(_as_hook(m), a, ns_labels):
        return False
    excluded = m.get("excludeResourceRules") or []
    return not (excluded and matches(_as_hook(m, "excludeResourceRules") | {
        "namespaceSelector": {}, "objectSelector": {}}, a, ns_labels))


def _name_allowed(rules: Any, name: str) -> bool:
    names = [n for r in rules or [] if isinstance(r, dict) for n in r.get("resourceNames") or []]
    return not names or name in names


def _eval(expr: str, env: dict[str, Any]) -> Any:
    try:
        return celexpr.evaluate(expr, env)
    except celexpr.CelError as e:
        raise celexpr.CelError(f"expression '{expr}' resulted in error: {e}") from None


class Failure(Exception):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message, self.reason = message, reason


def _run(spec: dict[str, Any], variables: dict[str, Any]) -> Failure | None:
    """The first failing validation of a policy (None: all hold); raises CelError."""
    computed: dict[str, Any] = {}
    for var in spec.get("variables") or []:
        computed[str(var.get("name"))] = _eval(str(var.get("expression")), variables | {"variables": computed})
    env = variables | {"variables": computed}
    for val in spec.get("validations") or []:
        expr = str(val.get("expression"))
        if _eval(expr, env) is True:
            continue
        msg = str(val.get("message") or f"failed expression: {expr}")
        if val.get("messageExpression"):
            try:
                out = celexpr.evaluate(str(val["messageExpression"]), env)
                msg = str(out) if str(out).strip() else msg
            except celexpr.CelError:
                pass
        return Failure(msg, str(val.get("reason") or "Invalid"))
    return None


def _evaluate(policy: dict[str, Any], a: Attributes, variables: dict[str, Any]) -> Failure | None:
    spec = policy.get("spec") or {}
    try:
        for c in spec.get("matchConditions") or []:
            if _eval(str(c.get("expression")), variables) is not True:
                return None
        return _run(spec, variables)
    except celexpr.CelError as e:
        if spec.get("failurePolicy", "Fail") == "Ignore":
            return None
        return Failure(str(e), "Invalid")


def check(policies: dict[str, dict[str, Any]], bindings: list[dict[str, Any]], a: Attributes,
          ns_labels: dict[str, str] | None, request: dict[str, Any], opts: WriteOptions) -> None:
    """Apply every binding to the request: raise the first Deny, add the Warns to opts."""
    variables = {"object": a.obj, "oldObject": a.old, "request": request}
    for b in bindings:
        bspec = b.get("spec") or {}
        policy = policies.get(str(bspec.get("policyName")))
        if policy is None or (policy.get("spec") or {}).get("paramKind"):
            continue
        pspec = policy.get("spec") or {}
        mc = pspec.get("matchConstraints") or {}
        if not resources_match(mc, a, ns_labels) or not _name_allowed(mc.get("resourceRules"), a.name):
            continue
        mr = bspec.get("matchResources")
        if isinstance(mr, dict) and mr.get("resourceRules") and not resources_match(mr, a, ns_labels):
            continue
        failure = _evaluate(policy, a, variables)
        if failure is None:
            continue
        pname, bname = policy["metadata"]["name"], b["metadata"]["name"]
        text = f"ValidatingAdmissionPolicy '{pname}' with binding '{bname}' denied request: {failure.message}"
        actions = bspec.get("validationActions") or []
        if "Warn" in actions:
            opts.warnings.append(f"Validation failed for ValidatingAdmissionPolicy '{pname}' with binding "
                                 f"'{bname}': {failure.message}")
        if "Deny" in actions:
            what = qualified(a.resource, a.group)
            raise StatusError(CODES.get(failure.reason, 422), failure.reason,
                              f'{what} "{a.name}" is forbidden: {text}',
                              {"name": a.name, "group": a.group, "kind": a.resource, "causes": [{"message": text}]})
