"""The API server's request limits, as kube-apiserver's filters apply them.

- Request bodies: at most `MAX_REQUEST_BODY` bytes (kube-apiserver's 3 MiB), else 413
  `Request entity too large: limit is 3145728`.
- Max in-flight (--max-mutating-requests-inflight=200, --max-requests-inflight=400):
  beyond them a request is answered at once with 429 TooManyRequests and
  `Retry-After: 1`. Long-running requests (watches; the attach, exec, log, portforward
  and proxy subresources) are not counted.
- Request timeout (--request-timeout=1m0s, or a shorter `?timeout=`): a request that
  is not long-running and has not finished by then is answered 504 Timeout; its work
  goes on (a write that was under way still completes), as kube-apiserver's does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from k8py.apiserver import routing

MAX_REQUEST_BODY = 3 * 1024 * 1024
MAX_MUTATING_INFLIGHT = 200
MAX_READONLY_INFLIGHT = 400
REQUEST_TIMEOUT = 60.0
RETRY_AFTER = 1  # seconds, as kube-apiserver's max-in-flight filter says
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "log", "portforward", "proxy"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Kind = Literal["mutating", "readonly"]


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": message, "reason": reason}
    if details:
        out["details"] = details
    out["code"] = code  # after details: metav1.Status' field order
    return out


def too_large_status() -> dict[str, Any]:
    return _status(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_REQUEST_BODY}")


def too_many_requests_status() -> dict[str, Any]:
    return _status(429, "TooManyRequests", "Too many requests, please try again later.",
                   {"retryAfterSeconds": RETRY_AFTER})


def timeout_status() -> dict[str, Any]:
    return _status(504, "Timeout",
                   "Timeout: request did not complete within requested timeout - context deadline exceeded")


def is_long_running(method: str, path: str, query: dict[str, str]) -> bool:
    """kube-apiserver's long-running check: watch, and the streaming subresources."""
    if method.upper() == "GET" and query.get("watch", "").lower() in ("true", "1"):
        return True
    route = routing.parse(path, method)
    if route is None:
        segs = [s for s in path.split("/") if s]
        # /api/v1/namespaces/ns/pods/name/proxy/more/path: proxy with a path does not parse
        return len(segs) > 4 and segs[0] in ("api", "apis") and "proxy" in segs[3:]
    return route.legacy_watch or (route.subresource in LONG_RUNNING_SUBRESOURCES)


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """A Go duration ("32s", "1m0s", "1.5h") in seconds, or None if it is not one."""
    pos, total = 0, 0.0
    if text in ("0", ""):
        return 0.0 if text == "0" else None
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) else None


def request_timeout(query: dict[str, str], default: float) -> float:
    """The request's deadline: `?timeout=` when shorter than the server's, else the server's."""
    asked = parse_duration(query.get("timeout", ""))
    if asked is not None and 0 < asked < default:
        return asked
    return default


@dataclass
class InflightLimiter:
    """Counts the requests being served, mutating and read-only apart."""

    max_mutating: int = MAX_MUTATING_INFLIGHT
    max_readonly: int = MAX_READONLY_INFLIGHT
    mutating: int = 0
    readonly: int = 0

    @staticmethod
    def kind(method: str) -> Kind:
        return "readonly" if method.upper() in READ_METHODS else "mutating"

    def acquire(self, kind: Kind) -> bool:
        """Take a slot; False when the limit (0 = unlimited) is reached."""
        if kind == "mutating":
            if 0 < self.max_mutating <= self.mutating:
                return False
            self.mutating += 1
        else:
            if 0 < self.max_readonly <= self.readonly:
                return False
            self.readonly += 1
        return True

    def release(self, kind: Kind) -> None:
        if kind == "mutating":
            self.mutating -= 1
        else:
            self.readonly -= 1
