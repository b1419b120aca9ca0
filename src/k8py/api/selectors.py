"""Label selectors, field selectors and node selector terms, as Kubernetes parses and matches them.

Label selectors (`app=web,tier!=db,env in (a,b),!legacy`) parse to a LabelSelector: an
immutable AND of requirements, sorted by key as Kubernetes sorts them, whose str() is the
canonical string. The empty selector selects everything; the "nothing" selector (from a
null workload selector) selects nothing. Field selectors (`metadata.name=x,status.phase!=Running`)
compare dotted field paths of a JSON object as strings; a missing field is "".
Invalid input raises SelectorError (a ValueError) naming the problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from k8py.api.errors import SelectorError

__all__ = [
    "SelectorError",
    "Requirement",
    "LabelSelector",
    "parse_label_selector",
    "label_selector_from_dict",
    "FieldSelector",
    "parse_field_selector",
    "field_value",
    "node_selector_term_matches",
    "node_selector_matches",
]

# ---------------------------------------------------------------- validation

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_INT = re.compile(r"^[+-]?[0-9]+$")


def _check_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise SelectorError(f"invalid label key {key!r}: prefix part must be a lowercase RFC 1123 subdomain")
    if not name or len(name) > 63 or not _NAME.match(name):
        raise SelectorError(
            f"invalid label key {key!r}: name part must be 63 characters or less, consist of alphanumeric "
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )


def _check_value(key: str, value: str) -> None:
    if value == "":
        return
    if len(value) > 63 or not _NAME.match(value):
        raise SelectorError(
            f"invalid label value {value!r} for key {key!r}: must be 63 characters or less and be empty or "
            "consist of alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character"
        )


# ---------------------------------------------------------------- label selectors

_SET_OPS = ("in", "notin")
_OPS = ("=", "==", "!=", "in", "notin", "exists", "!", ">", "<")


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector. op is one of = == != in notin exists ! > <."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise SelectorError(f"{self.op!r} is not a valid label selector operator")
        _check_key(self.key)
        if self.op in _SET_OPS:
            if not self.values:
                raise SelectorError(f"for 'in', 'notin' operators, values set can't be empty (key {self.key!r})")
        elif self.op in ("=", "==", "!="):
            if len(self.values) != 1:
                raise SelectorError(f"exact-match compatibility requires one single value (key {self.key!r})")
        elif self.op in ("exists", "!"):
            if self.values:
                raise SelectorError(f"values set must be empty for exists and does not exist (key {self.key!r})")
        else:
            if len(self.values) != 1 or not _INT.match(self.values[0]):
                raise SelectorError("for 'Gt', 'Lt' operators, exactly one integer value is required "
                                    f"(key {self.key!r})")
        for v in self.values:
            _check_value(self.key, v)
        object.__setattr__(self, "values", tuple(sorted(set(self.values))))

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "==", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if not present or value is None or not _INT.match(value):
            return False
        return int(value) > int(self.values[0]) if self.op == ">" else int(value) < int(self.values[0])

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return "!" + self.key
        if self.op in _SET_OPS:
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """AND of requirements. `nothing` marks the selector that matches no object at all."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        """True when the selector selects everything (no requirements)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _sorted(reqs: list[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(reqs, key=lambda r: r.key))


_SPECIAL = "!=(),<>"


def _lex(s: str) -> list[str]:
    """Tokens: operators, parentheses, commas and identifiers (anything else)."""
    tokens: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c.isspace():
            i += 1
        elif s.startswith("!=", i) or s.startswith("==", i):
            tokens.append(s[i : i + 2])
            i += 2
        elif c in _SPECIAL:
            tokens.append(c)
            i += 1
        else:
            j = i
            while j < len(s) and not s[j].isspace() and s[j] not in _SPECIAL:
                j += 1
            tokens.append("\0" + s[i:j])  # marks identifiers, so that "in" the key differs from "in" the operator
            i = j
    return tokens


class _ParseError(SelectorError):
    """A SelectorError that already names the selector it comes from."""


def parse_label_selector(s: str) -> LabelSelector:
    """Parse a label selector string ("" selects everything)."""
    return _LabelSelectorParser(s).parse()


def _ident(tok: str | None) -> str | None:
    """The identifier a token stands for; None for an operator, punctuation or the end."""
    return tok[1:] if tok is not None and tok.startswith("\0") else None


class _LabelSelectorParser:
    """Kubernetes' label selector grammar over `_lex` tokens: requirements separated by ','."""

    def __init__(self, s: str) -> None:
        self.s = s
        self.tokens = _lex(s or "")
        self.pos = 0  # the next token

    def fail(self, msg: str) -> SelectorError:
        return _ParseError(f"{msg} (in label selector {self.s!r})")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> LabelSelector:
        reqs: list[Requirement] = []
        while self.pos < len(self.tokens):
            reqs.append(self._requirement())
            if self.pos < len(self.tokens):
                if self.peek() != ",":
                    raise self.fail(f"found {_show(self.peek())}, expected ','")
                self.pos += 1
                if self.pos >= len(self.tokens):
                    raise self.fail("found end of string after ',', expected a requirement")
        return LabelSelector(_sorted(reqs))

    def _requirement(self) -> Requirement:
        """`key`, `!key`, or `key` then an operator and its values; an invalid one names the selector."""
        tok = self.peek()
        negate = tok == "!"
        if negate:
            self.pos += 1
            tok = self.peek()
        key = _ident(tok)
        if key is None:
            raise self.fail(f"found {_show(tok)}, expected a label key")
        self.pos += 1
        try:
            return self._after_key(key, negate)
        except SelectorError as e:
            if isinstance(e, _ParseError):
                raise
            raise self.fail(str(e)) from None

    def _after_key(self, key: str, negate: bool) -> Requirement:
        nxt = self.peek()
        if negate:
            if nxt not in (None, ","):
                raise self.fail(f"found {_show(nxt)} after '!{key}', expected ',' or end of string")
            return Requirement(key, "!")
        if nxt in (None, ","):
            return Requirement(key, "exists")
        if nxt in ("=", "==", "!="):
            return self._equality(key, nxt)
        if nxt in (">", "<"):
            return self._comparison(key, nxt)
        op = _ident(nxt)
        if op in _SET_OPS:
            assert op is not None
            return self._set(key, op)
        raise self.fail(f"found {_show(nxt)}, expected one of '=', '==', '!=', 'in', 'notin', '>', '<', ',' "
                        f"after '{key}'")

    def _equality(self, key: str, op: str) -> Requirement:
        """`key=value` (the value may be empty)."""
        self.pos += 1
        value = _ident(self.peek())
        if value is not None:
            self.pos += 1
        elif self.peek() not in (None, ","):
            raise self.fail(f"found {_show(self.peek())}, expected a value after '{key}{op}'")
        return Requirement(key, op, (value or "",))

    def _comparison(self, key: str, op: str) -> Requirement:
        """`key>value` or `key<value`."""
        self.pos += 1
        value = _ident(self.peek())
        if value is None:
            raise self.fail(f"found {_show(self.peek())}, expected an integer after '{key}{op}'")
        self.pos += 1
        return Requirement(key, op, (value,))

    def _set(self, key: str, op: str) -> Requirement:
        """`key in (a,b)` or `key notin (a,b)`."""
        self.pos += 1
        if self.peek() != "(":
            raise self.fail(f"found {_show(self.peek())}, expected '(' after '{key} {op}'")
        self.pos += 1
        return Requirement(key, op, tuple(self._values(key, op)))

    def _values(self, key: str, op: str) -> list[str]:
        """The comma-separated values up to ')' (an empty place is the empty value)."""
        values: list[str] = []
        expect_value = True
        while True:
            t = self.peek()
            if t is None:
                raise self.fail("found end of string, expected ')'")
            self.pos += 1
            if t == ")":
                if expect_value and values:
                    values.append("")
                return values
            if t == ",":
                if expect_value:
                    values.append("")
                expect_value = True
                continue
            v = _ident(t)
            if v is None or not expect_value:
                raise self.fail(f"found {_show(t)} in the values of '{key} {op}'")
            values.append(v)
            expect_value = False


def _show(tok: str | None) -> str:
    if tok is None:
        return "end of string"
    return repr(tok[1:] if tok.startswith("\0") else tok)


_EXPR_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def label_selector_from_dict(d: Mapping[str, Any] | None) -> LabelSelector:
    """A metav1.LabelSelector (matchLabels AND matchExpressions) as a LabelSelector.

    None selects nothing; {} selects everything (Kubernetes' LabelSelectorAsSelector).
    """
    if d is None:
        return LabelSelector(nothing=True)
    if not isinstance(d, Mapping):
        raise SelectorError(f"label selector must be an object, not {type(d).__name__}")
    reqs: list[Requirement] = []
    for k, v in sorted((d.get("matchLabels") or {}).items()):
        if not isinstance(v, str):
            raise SelectorError(f"matchLabels[{k!r}] must be a string")
        reqs.append(Requirement(k, "=", (v,)))
    for e in d.get("matchExpressions") or []:
        if not isinstance(e, Mapping):
            raise SelectorError("matchExpressions entries must be objects")
        op = _EXPR_OPS.get(str(e.get("operator")))
        if op is None:
            raise SelectorError(f"{e.get('operator')!r} is not a valid label selector operator")
        values = e.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SelectorError(f"matchExpressions values for key {e.get('key')!r} must be a list of strings")
        reqs.append(Requirement(str(e.get("key", "")), op, tuple(values)))
    return LabelSelector(_sorted(reqs))


# ---------------------------------------------------------------- field selectors


def field_value(obj: Mapping[str, Any] | None, path: str) -> str:
    """The string value of a dotted field path ("metadata.name"); "" when missing."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return ""
        cur = cur[part]
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, (str, int, float)):
        return str(cur)
    return json.dumps(cur, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class FieldSelector:
    """AND of (field, op, value) with op "=" or "!=" ("==" parses as "=")."""

    requirements: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: Mapping[str, Any] | None) -> bool:
        for f, op, v in self.requirements:
            equal = field_value(obj, f) == v
            if equal != (op == "="):
                return False
        return True

    def value_for(self, f: str) -> str | None:
        """The value an "=" requirement demands of field f, if any (for index lookups)."""
        for rf, op, v in self.requirements:
            if rf == f and op == "=":
                return v
        return None

    def __str__(self) -> str:
        return ",".join(f"{_escape(f)}{op}{_escape(v)}" for f, op, v in self.requirements)


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape(s: str, whole: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in "\\,=":
                raise SelectorError(f"invalid field selector {whole!r}: invalid escape sequence in {s!r}")
            out.append(s[i + 1])
            i += 2
            continue
        if c in ",=":
            raise SelectorError(f"invalid field selector {whole!r}: unescaped {c!r} in {s!r}")
        out.append(c)
        i += 1
    return "".join(out)


def _split_terms(s: str) -> list[str]:
    terms: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            cur.append(s[i : i + 2])
            i += 2
            continue
        if s[i] == ",":
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(s[i])
        i += 1
    terms.append("".join(cur))
    return terms


def parse_field_selector(s: str) -> FieldSelector:
    """Parse a field selector ("" selects everything): comma-separated f=v, f==v, f!=v."""
    reqs: list[tuple[str, str, str]] = []
    for term in _split_terms(s or ""):
        if term == "":
            continue
        found = None
        i = 0
        while i < len(term) and found is None:
            if term[i] == "\\":
                i += 2
                continue
            for op in ("!=", "==", "="):
                if term.startswith(op, i):
                    found = (term[:i], op, term[i + len(op) :])
                    break
            i += 1
        if found is None or not found[0].strip():
            raise SelectorError(f"invalid selector: {s!r}; can't understand {term!r}")
        lhs, op, rhs = found
        reqs.append((_unescape(lhs.strip(), s), "!=" if op == "!=" else "=", _unescape(rhs.strip(), s)))
    return FieldSelector(reqs)


# ---------------------------------------------------------------- node selectors


def _expression_matches(expr: Mapping[str, Any], value: str | None) -> bool:
    op = expr.get("operator")
    values = [str(v) for v in (expr.get("values") or [])]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt"):
        if value is None or len(values) != 1 or not _INT.match(value) or not _INT.match(values[0]):
            return False
        return int(value) > int(values[0]) if op == "Gt" else int(value) < int(values[0])
    return False


def node_selector_term_matches(term: Mapping[str, Any] | None, node: Mapping[str, Any]) -> bool:
    """Whether a NodeSelectorTerm matches a node: all matchExpressions on labels and all
    matchFields (only metadata.name is supported, as in Kubernetes) hold. An empty term
    matches no node."""
    if not term:
        return False
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    for e in exprs:
        if not _expression_matches(e, labels.get(e.get("key", ""))):
            return False
    for f in fields:
        if f.get("key") != "metadata.name" or f.get("operator") not in ("In", "NotIn"):
            return False
        if not _expression_matches(f, meta.get("name")):
            return False
    return True


def node_selector_matches(selector: Mapping[str, Any] | None, node: Mapping[str, Any]) -> bool:
    """Whether a NodeSelector (nodeSelectorTerms, ORed) matches a node; None matches every node."""
    if selector is None:
        return True
    return any(node_selector_term_matches(t, node) for t in selector.get("nodeSelectorTerms") or [])
