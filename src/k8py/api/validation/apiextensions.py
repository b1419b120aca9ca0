"""apiextensions.k8s.io/v1: CustomResourceDefinition validation.

Names (`metadata.name` = `<plural>.<group>`, DNS labels, a group with a dot), scope,
versions (at least one, exactly one storage version, unique names), printer columns,
scale subresource paths, and the schema: present on every version and *structural*
(a type on every node unless it is int-or-string or preserves unknown fields; an
object at the root; `properties` and `additionalProperties` not both; no
`uniqueItems: true`; `x-kubernetes-preserve-unknown-fields` only `true`), each
problem named with Kubernetes' path (`spec.versions[0].schema.openAPIV3Schema.
properties[spec].type`). Update: scope is immutable. `spec.conversion`: strategy None or
Webhook; Webhook needs `webhook.clientConfig` (url or service, as admission webhooks) and
`webhook.conversionReviewVersions` naming v1 or v1beta1; None allows neither (paths as
Kubernetes' internal type names them: `spec.conversion.webhookClientConfig`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from k8py.api import names
from k8py.api.validation import celrules
from k8py.api.validation.admissionregistration import client_config
from k8py.api.validation.field import Raw, forbidden, invalid, not_supported, required
from k8py.api.validation.meta import ErrorList, dict_of, list_of, validate_immutable

_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def validate_crd(v: ErrorList, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = dict_of(obj.get("spec"))
    group = spec.get("group")
    n = dict_of(spec.get("names"))
    plural = n.get("plural")
    if not group:
        v.add(required("spec.group"))
    elif not isinstance(group, str) or "." not in group:
        v.add(invalid("spec.group", group, "should be a domain with at least one dot"))
    else:
        v.msgs("spec.group", group, names.dns1123_subdomain_errors(group))
    _names(v, n)
    name = dict_of(obj.get("metadata")).get("name")
    if isinstance(plural, str) and isinstance(group, str) and name != f"{plural}.{group}":
        v.add(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    scope = spec.get("scope")
    if scope not in ("Cluster", "Namespaced"):
        v.add(required("spec.scope") if not scope else not_supported("spec.scope", scope, ("Cluster", "Namespaced")))
    _versions(v, spec)
    _conversion(v, dict_of(spec.get("conversion")), "conversion" in spec)
    if old is not None:
        validate_immutable(v, scope, dict_of(old.get("spec")).get("scope"), "spec.scope")


def _names(v: ErrorList, n: dict[str, Any]) -> None:
    for f in ("plural", "kind"):
        if not n.get(f):
            v.add(required(f"spec.names.{f}"))
    for f in ("plural", "singular"):
        x = n.get(f)
        if isinstance(x, str) and x and not _DNS_LABEL.match(x):
            v.add(invalid(f"spec.names.{f}", x, "a lowercase RFC 1123 label must consist of lower case "
                          "alphanumeric characters or '-', and must start and end with an alphanumeric character"))
    for i, s in enumerate(list_of(n.get("shortNames"))):
        if not isinstance(s, str) or not _DNS_LABEL.match(s):
            v.add(invalid(f"spec.names.shortNames[{i}]", s, "a lowercase RFC 1123 label must consist of lower "
                          "case alphanumeric characters or '-', and must start and end with an alphanumeric "
                          "character"))


def _versions(v: ErrorList, spec: dict[str, Any]) -> None:
    versions = [dict_of(x) for x in list_of(spec.get("versions"))]
    if not versions:
        v.add(invalid("spec.versions", [], "must have exactly one version marked as storage version"))
        return
    if sum(1 for x in versions if x.get("storage") is True) != 1:
        v.add(invalid("spec.versions", [x.get("name") for x in versions],
                      "must have exactly one version marked as storage version"))
    if not any(x.get("served") for x in versions):
        v.add(invalid("spec.versions", [x.get("name") for x in versions], "must serve at least one version"))
    seen: set[str] = set()
    for i, ver in enumerate(versions):
        p = f"spec.versions[{i}]"
        name = ver.get("name")
        if not name:
            v.add(required(f"{p}.name"))
        elif not isinstance(name, str) or not _DNS_LABEL.match(name):
            v.add(invalid(f"{p}.name", name, "a DNS-1035 label must consist of lower case alphanumeric "
                          "characters or '-', start with an alphabetic character, and end with an alphanumeric "
                          "character"))
        elif name in seen:
            v.add(invalid(f"{p}.name", name, "must appear only once"))
        else:
            seen.add(name)
        _columns(v, ver, p)
        _scale(v, dict_of(dict_of(ver.get("subresources")).get("scale")), f"{p}.subresources.scale",
               "scale" in dict_of(ver.get("subresources")))
        schema = dict_of(ver.get("schema")).get("openAPIV3Schema")
        sp = f"{p}.schema.openAPIV3Schema"
        if not isinstance(schema, dict):
            v.add(required(sp, "schemas are required"))
        else:
            structural_errors(v, schema, sp)
            v.add(*celrules.compile_errors(schema, sp))


def _columns(v: ErrorList, ver: dict[str, Any], p: str) -> None:
    for i, c in enumerate(list_of(ver.get("additionalPrinterColumns"))):
        c = dict_of(c)
        cp = f"{p}.additionalPrinterColumns[{i}]"
        if not c.get("name"):
            v.add(required(f"{cp}.name"))
        if not c.get("jsonPath"):
            v.add(required(f"{cp}.jsonPath"))
        if c.get("type") not in _COLUMN_TYPES:
            v.add(not_supported(f"{cp}.type", c.get("type"), _COLUMN_TYPES))


def _scale(v: ErrorList, scale: dict[str, Any], p: str, present: bool) -> None:
    if not present:
        return
    spec_path, status_path = scale.get("specReplicasPath"), scale.get("statusReplicasPath")
    if not spec_path:
        v.add(required(f"{p}.specReplicasPath"))
    elif not str(spec_path).startswith(".spec."):
        v.add(invalid(f"{p}.specReplicasPath", spec_path, "should be a json path under .spec"))
    if not status_path:
        v.add(required(f"{p}.statusReplicasPath"))
    elif not str(status_path).startswith(".status."):
        v.add(invalid(f"{p}.statusReplicasPath", status_path, "should be a json path under .status"))
    sel = scale.get("labelSelectorPath")
    if sel and not (str(sel).startswith(".spec.") or str(sel).startswith(".status.")):
        v.add(invalid(f"{p}.labelSelectorPath", sel, "should be a json path under either .spec or .status"))


def structural_errors(v: ErrorList, schema: dict[str, Any], path: str) -> None:
    """Why `schema` is not a structural schema (nothing if it is)."""
    t = schema.get("type")
    if not t and not schema.get("x-kubernetes-preserve-unknown-fields"):
        v.add(required(f"{path}.type", "must not be empty at the root"))
    elif t and t != "object":
        v.add(invalid(f"{path}.type", t, "must be object at the root"))
    _node(v, schema, path, True)


def _node(v: ErrorList, s: dict[str, Any], path: str, root: bool = False) -> None:
    pu = s.get("x-kubernetes-preserve-unknown-fields")
    if pu is not None and pu is not True:
        v.add(invalid(f"{path}.x-kubernetes-preserve-unknown-fields", pu, "must be true or undefined"))
    if "properties" in s and "additionalProperties" in s:
        v.add(forbidden(f"{path}.additionalProperties", "additionalProperties and properties are mutual exclusive"))
    if s.get("uniqueItems") is True:
        v.add(forbidden(f"{path}.uniqueItems",
                        "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))
    if s.get("type") == "array" and not isinstance(s.get("items"), dict):
        v.add(required(f"{path}.items", "must be specified"))
    for k, ps in dict_of(s.get("properties")).items():
        _child(v, ps, f"{path}.properties[{k}]", "for specified object fields")
    if isinstance(s.get("items"), dict):
        _child(v, s["items"], f"{path}.items", "for specified array items")
    if isinstance(s.get("additionalProperties"), dict):
        _child(v, s["additionalProperties"], f"{path}.additionalProperties", "for specified additionalProperties")


def _child(v: ErrorList, s: Any, path: str, what: str) -> None:
    if not isinstance(s, dict):
        v.add(invalid(path, s, "must be a schema"))
        return
    if not s.get("type") and not s.get("x-kubernetes-int-or-string") \
            and not s.get("x-kubernetes-preserve-unknown-fields"):
        v.add(required(f"{path}.type", f"must not be empty {what}"))
    _node(v, s, path)


REVIEW_VERSIONS = ("v1", "v1beta1")  # the ConversionReview versions k8py speaks


def _conversion(v: ErrorList, conv: dict[str, Any], present: bool) -> None:
    if not present:
        return
    p = "spec.conversion"
    strategy = conv.get("strategy")
    webhook = conv.get("webhook")
    cc = dict_of(webhook).get("clientConfig")
    versions = dict_of(webhook).get("conversionReviewVersions")
    if strategy not in ("None", "Webhook"):
        v.add(required(f"{p}.strategy") if not strategy
              else not_supported(f"{p}.strategy", strategy, ("None", "Webhook")))
        return
    if strategy == "None":
        if cc is not None:
            v.add(forbidden(f"{p}.webhookClientConfig", "should not be set when strategy is not set to Webhook"))
        if versions:
            v.add(forbidden(f"{p}.conversionReviewVersions", "should not be set when strategy is not set to Webhook"))
        return
    if not isinstance(cc, dict):
        v.add(required(f"{p}.webhookClientConfig", "required when strategy is set to Webhook"))
    else:
        client_config(v, cc, f"{p}.webhookClientConfig")
    _review_versions(v, list_of(versions), f"{p}.conversionReviewVersions")


def _review_versions(v: ErrorList, versions: list[Any], p: str) -> None:
    if not versions:
        v.add(required(p))
        return
    seen: set[Any] = set()
    for i, x in enumerate(versions):
        if x in seen:
            v.add(invalid(f"{p}[{i}]", x, "duplicate version"))
            continue
        seen.add(x)
        if not isinstance(x, str) or not _DNS_LABEL.match(x) or len(x) > 63:
            v.add(invalid(f"{p}[{i}]", x, "a DNS-1035 label must consist of lower case alphanumeric characters "
                          "or '-', start with an alphabetic character, and end with an alphanumeric character"))
    if not any(x in REVIEW_VERSIONS for x in versions):
        shown = Raw("[]string{" + ", ".join(json.dumps(str(x)) for x in versions) + "}")
        v.add(invalid(p, shown, "must include at least one of v1, v1beta1"))
