"""Name, label and key syntax checks, with Kubernetes' own error wording.

Each `*_errors(value)` function returns a list of messages (empty when valid), in
the words of k8s.io/apimachinery/pkg/util/validation, so that callers can wrap them
in field errors. Pure functions; no I/O.
"""

from __future__ import annotations

import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_MAX = 63
LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63

_DNS1123_LABEL_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + r")*"
_DNS1035_LABEL_FMT = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = r"(" + _QUALIFIED_NAME_FMT + r")?"
_CONFIG_KEY_FMT = r"[-._a-zA-Z0-9]+"
_C_IDENTIFIER_FMT = r"[A-Za-z_][A-Za-z0-9_]*"
_ENV_VAR_NAME_FMT = r"[-._a-zA-Z][-._a-zA-Z0-9]*"

_DNS1123_LABEL_RE = re.compile("^" + _DNS1123_LABEL_FMT + "$")
_DNS1123_SUBDOMAIN_RE = re.compile("^" + _DNS1123_SUBDOMAIN_FMT + "$")
_DNS1035_LABEL_RE = re.compile("^" + _DNS1035_LABEL_FMT + "$")
_QUALIFIED_NAME_RE = re.compile("^" + _QUALIFIED_NAME_FMT + "$")
_LABEL_VALUE_RE = re.compile("^" + _LABEL_VALUE_FMT + "$")
_CONFIG_KEY_RE = re.compile("^" + _CONFIG_KEY_FMT + "$")
_ENV_VAR_NAME_RE = re.compile("^" + _ENV_VAR_NAME_FMT + "$")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError: msg (e.g. 'a',  or 'b', regex used for validation is 'fmt')."""
    if not examples:
        return msg + f" (regex used for validation is '{fmt}')"
    return msg + " (e.g. " + " or ".join(f"'{e}', " for e in examples) + f"regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


DNS1123_LABEL_MSG = _regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character", _DNS1123_LABEL_FMT, "my-name", "123-abc")
DNS1123_SUBDOMAIN_MSG = _regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character", _DNS1123_SUBDOMAIN_FMT, "example.com")
DNS1035_LABEL_MSG = _regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character", _DNS1035_LABEL_FMT, "my-name", "abc-123")
QUALIFIED_NAME_PART_MSG = _regex_error(
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character", _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
LABEL_VALUE_MSG = _regex_error(
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character", _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
CONFIG_KEY_MSG = _regex_error(
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'", _CONFIG_KEY_FMT,
    "key.name", "KEY_NAME", "key-name")
ENV_VAR_NAME_MSG = _regex_error(
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', "
    "and must not start with a digit", _ENV_VAR_NAME_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1")


def _length_and_format_errors(value: str, max_len: int, regex: re.Pattern[str], msg: str) -> list[str]:
    """At most `max_len` characters, matching `regex` (else `msg`)."""
    errs = []
    if len(value) > max_len:
        errs.append(max_len_error(max_len))
    if not regex.match(value):
        errs.append(msg)
    return errs


def dns1123_label_errors(value: str) -> list[str]:
    return _length_and_format_errors(value, DNS1123_LABEL_MAX, _DNS1123_LABEL_RE, DNS1123_LABEL_MSG)


def dns1123_subdomain_errors(value: str) -> list[str]:
    return _length_and_format_errors(value, DNS1123_SUBDOMAIN_MAX, _DNS1123_SUBDOMAIN_RE, DNS1123_SUBDOMAIN_MSG)


def dns1035_label_errors(value: str) -> list[str]:
    return _length_and_format_errors(value, DNS1035_LABEL_MAX, _DNS1035_LABEL_RE, DNS1035_LABEL_MSG)


def qualified_name_errors(value: str) -> list[str]:
    """Label and annotation keys: an optional DNS subdomain prefix, '/', and a name part."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain_errors(prefix))
    else:
        return [_regex_error(
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character", _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME_RE.match(name):
        errs.append(QUALIFIED_NAME_PART_MSG)
    return errs


def label_value_errors(value: str) -> list[str]:
    return _length_and_format_errors(value, LABEL_VALUE_MAX, _LABEL_VALUE_RE, LABEL_VALUE_MSG)


def config_key_errors(value: str) -> list[str]:
    """Keys of ConfigMap and Secret data."""
    errs = _length_and_format_errors(value, DNS1123_SUBDOMAIN_MAX, _CONFIG_KEY_RE, CONFIG_KEY_MSG)
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def env_var_name_errors(value: str) -> list[str]:
    errs = []
    if not _ENV_VAR_NAME_RE.match(value):
        errs.append(ENV_VAR_NAME_MSG)
    return errs


def port_name_errors(value: str) -> list[str]:
    """IANA service names: container port names and named target ports."""
    errs = []
    if len(value) > 15:
        errs.append(max_len_error(15))
    if not re.match(r"^[-a-z0-9]+$", value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def port_number_errors(port: int) -> list[str]:
    if 1 <= port <= 65535:
        return []
    return ["must be between 1 and 65535, inclusive"]


def path_segment_errors(value: str) -> list[str]:
    """Kubernetes' ValidatePathSegmentName: names that are any string usable as one URL
    path segment (RBAC roles and bindings: `system:basic-user`)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]
