"""admissionregistration.k8s.io/v1: webhook configurations, as Kubernetes'
pkg/apis/admissionregistration/validation checks them.

Each webhook: a unique, fully-qualified name; sideEffects None or NoneOnDryRun;
admissionReviewVersions naming v1 or v1beta1; timeoutSeconds 1..30; exactly one of
clientConfig.url (https, with a host, no user, query or fragment) or clientConfig.service
(name, namespace, a path starting with '/', a valid port); rules with operations, apiGroups,
apiVersions and resources ('*' alone when present) and a known scope; known failure, match
and reinvocation policies; valid label selectors; matchConditions (at most 64) with unique
qualified names and CEL expressions that compile. Invariants: as in `meta`.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from k8py.api import celexpr, names
from k8py.api.validation.field import Raw, duplicate, invalid, required, too_many
from k8py.api.validation.meta import ErrorList, dict_of, list_of, validate_enum, validate_label_selector

OPERATIONS = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
SCOPES = ("*", "Cluster", "Namespaced")
REVIEW_VERSIONS = ("v1", "v1beta1")


def validate_mutating(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    _webhooks(v, obj, mutating=True)


def validate_validating(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    _webhooks(v, obj, mutating=False)


def _webhooks(v: ErrorList, obj: dict[str, Any], mutating: bool) -> None:
    seen: set[str] = set()
    for i, wh in enumerate(list_of(obj.get("webhooks"))):
        p = f"webhooks[{i}]"
        wh = dict_of(wh)
        name = wh.get("name")
        if not name:
            v.add(required(f"{p}.name"))
        elif isinstance(name, str):
            if name in seen:
                v.add(duplicate(f"{p}.name", name))
            seen.add(name)
            errs = names.dns1123_subdomain_errors(name)
            if not errs and len(name.split(".")) < 3:
                errs = ["should be a domain with at least three segments separated by dots"]
            v.msgs(f"{p}.name", name, errs)
        _webhook(v, wh, p, mutating)


def _webhook(v: ErrorList, wh: dict[str, Any], p: str, mutating: bool) -> None:
    for j, rule in enumerate(list_of(wh.get("rules"))):
        _rule(v, dict_of(rule), f"{p}.rules[{j}]")
    validate_enum(v, wh.get("failurePolicy"), f"{p}.failurePolicy", ("Fail", "Ignore"))
    validate_enum(v, wh.get("matchPolicy"), f"{p}.matchPolicy", ("Equivalent", "Exact"))
    validate_enum(v, wh.get("sideEffects"), f"{p}.sideEffects", ("None", "NoneOnDryRun"), required_=True)
    if mutating:
        validate_enum(v, wh.get("reinvocationPolicy"), f"{p}.reinvocationPolicy", ("IfNeeded", "Never"))
    timeout = wh.get("timeoutSeconds")
    if isinstance(timeout, int) and not 1 <= timeout <= 30:
        v.add(invalid(f"{p}.timeoutSeconds", timeout, "the timeout value must be between 1 and 30 seconds"))
    versions = list_of(wh.get("admissionReviewVersions"))
    if not versions:
        v.add(required(f"{p}.admissionReviewVersions", "must specify one of v1, v1beta1"))
    elif not any(x in REVIEW_VERSIONS for x in versions):
        shown = Raw("[]string{" + ", ".join(json.dumps(str(x)) for x in versions) + "}")
        v.add(invalid(f"{p}.admissionReviewVersions", shown, "must include at least one of v1, v1beta1"))
    for sel in ("namespaceSelector", "objectSelector"):
        if isinstance(wh.get(sel), dict):
            validate_label_selector(v, wh[sel], f"{p}.{sel}")
    client_config(v, dict_of(wh.get("clientConfig")), f"{p}.clientConfig")
    _match_conditions(v, list_of(wh.get("matchConditions")), f"{p}.matchConditions")


MAX_MATCH_CONDITIONS = 64


def _match_conditions(v: ErrorList, conds: list[Any], p: str) -> None:
    if len(conds) > MAX_MATCH_CONDITIONS:
        v.add(too_many(p, MAX_MATCH_CONDITIONS))
    seen: set[str] = set()
    for i, c in enumerate(conds):
        c = dict_of(c)
        name, expr = c.get("name"), c.get("expression")
        if not name:
            v.add(required(f"{p}[{i}].name"))
        elif isinstance(name, str):
            if name in seen:
                v.add(duplicate(f"{p}[{i}].name", name))
            seen.add(name)
            v.msgs(f"{p}[{i}].name", name, names.qualified_name_errors(name))
        if not expr:
            v.add(required(f"{p}[{i}].expression"))
        elif isinstance(expr, str) and (why := celexpr.compile_error(expr)):
            v.add(invalid(f"{p}[{i}].expression", expr, f"compilation failed: {why}"))


def _rule(v: ErrorList, rule: dict[str, Any], p: str) -> None:
    ops = list_of(rule.get("operations"))
    if not ops:
        v.add(required(f"{p}.operations"))
    for k, op in enumerate(ops):
        validate_enum(v, op, f"{p}.operations[{k}]", OPERATIONS)
    _star_alone(v, ops, f"{p}.operations", "operations")
    for f in ("apiGroups", "apiVersions", "resources"):
        vals = list_of(rule.get(f))
        if not vals:
            v.add(required(f"{p}.{f}"))
        elif f != "resources":
            _star_alone(v, vals, f"{p}.{f}", f)
    validate_enum(v, rule.get("scope"), f"{p}.scope", SCOPES)


def _star_alone(v: ErrorList, vals: list[Any], path: str, what: str) -> None:
    if "*" in vals and len(vals) > 1:
        shown = Raw("[]string{" + ", ".join(json.dumps(str(x)) for x in vals) + "}")
        v.add(invalid(path, shown, f"if '*' is present, must not specify other {what}"))


def client_config(v: ErrorList, cc: dict[str, Any], p: str) -> None:
    url, svc = cc.get("url"), cc.get("service")
    if (url is None) == (svc is None):
        v.add(required(p, "exactly one of url or service is required"))
    elif isinstance(url, str):
        msg = url_errors(url)
        if msg:
            v.add(invalid(f"{p}.url", url, msg))
    elif isinstance(svc, dict):
        _service(v, svc, f"{p}.service")


def url_errors(url: str) -> str:
    """Why a webhook URL is refused ("" when it is fine), in Kubernetes' words."""
    try:
        u = urllib.parse.urlsplit(url)
    except ValueError as e:
        return f"host must be specified: {e}"
    if u.scheme != "https":
        return "'https' is the only allowed URL scheme"
    if not u.hostname:
        return "host must be specified"
    if u.username or u.password:
        return "user information is not permitted in the URL"
    if u.fragment:
        return "fragments are not permitted in the URL"
    if u.query:
        return "query parameters are not permitted in the URL"
    return ""


def _service(v: ErrorList, svc: dict[str, Any], p: str) -> None:
    if not svc.get("name"):
        v.add(required(f"{p}.name", "service name is required"))
    if not svc.get("namespace"):
        v.add(required(f"{p}.namespace", "service namespace is required"))
    path = svc.get("path")
    if isinstance(path, str) and path and not path.startswith("/"):
        v.add(invalid(f"{p}.path", path, "must start with a '/'"))
    port = svc.get("port")
    if isinstance(port, int) and not 1 <= port <= 65535:
        v.add(invalid(f"{p}.port", port, "port is not valid: must be between 1 and 65535, inclusive"))


def validate_policy(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """ValidatingAdmissionPolicy: matchConstraints with resourceRules; validations (or
    auditAnnotations) whose CEL expressions compile; variables and matchConditions likewise."""
    spec = dict_of(obj.get("spec"))
    mc = spec.get("matchConstraints")
    if not isinstance(mc, dict):
        v.add(required("spec.matchConstraints"))
    else:
        _match_resources(v, mc, "spec.matchConstraints", need_rules=True)
    validate_enum(v, spec.get("failurePolicy"), "spec.failurePolicy", ("Fail", "Ignore"))
    vals = list_of(spec.get("validations"))
    if not vals and not list_of(spec.get("auditAnnotations")):
        v.add(required("spec.validations", "validations or auditAnnotations must contain at least one item"))
    for i, val in enumerate(vals):
        val = dict_of(val)
        _expression(v, val.get("expression"), f"spec.validations[{i}].expression")
        if val.get("messageExpression"):
            _expression(v, val.get("messageExpression"), f"spec.validations[{i}].messageExpression")
    for i, var in enumerate(list_of(spec.get("variables"))):
        var = dict_of(var)
        if not var.get("name"):
            v.add(required(f"spec.variables[{i}].name"))
        _expression(v, var.get("expression"), f"spec.variables[{i}].expression")
    _match_conditions(v, list_of(spec.get("matchConditions")), "spec.matchConditions")


def validate_policy_binding(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    if not spec.get("policyName"):
        v.add(required("spec.policyName"))
    actions = list_of(spec.get("validationActions"))
    if not actions:
        v.add(required("spec.validationActions"))
    for i, a in enumerate(actions):
        validate_enum(v, a, f"spec.validationActions[{i}]", ("Audit", "Deny", "Warn"))
    if "Deny" in actions and "Warn" in actions:
        v.add(invalid("spec.validationActions", Raw("[]string{" + ", ".join(json.dumps(str(a)) for a in actions)
                                                   + "}"), "must not contain both Deny and Warn (repeating the "
                                                           "same validation failure information in the API response "
                                                           "and headers serves no purpose)"))
    if isinstance(spec.get("matchResources"), dict):
        _match_resources(v, spec["matchResources"], "spec.matchResources", need_rules=False)


def _match_resources(v: ErrorList, m: dict[str, Any], p: str, need_rules: bool) -> None:
    rules = list_of(m.get("resourceRules"))
    if need_rules and not rules:
        v.add(required(f"{p}.resourceRules"))
    for f in ("resourceRules", "excludeResourceRules"):
        for j, rule in enumerate(list_of(m.get(f))):
            _rule(v, dict_of(rule), f"{p}.{f}[{j}]")
    validate_enum(v, m.get("matchPolicy"), f"{p}.matchPolicy", ("Equivalent", "Exact"))
    for sel in ("namespaceSelector", "objectSelector"):
        if isinstance(m.get(sel), dict):
            validate_label_selector(v, m[sel], f"{p}.{sel}")


def _expression(v: ErrorList, expr: Any, p: str) -> None:
    if not expr:
        v.add(required(p))
    elif isinstance(expr, str) and (why := celexpr.compile_error(expr)):
        v.add(invalid(p, expr, f"compilation failed: {why}"))
