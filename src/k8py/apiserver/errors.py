"""Errors of the API server, each carrying the Kubernetes `Status` it answers.

`StatusError.status()` is the body sent to clients: {"kind": "Status", ...,
"status": "Failure", "message", "reason", "details", "code"}, in metav1.Status' field order;
"details" only where Kubernetes' constructor sets them (not for BadRequest, Expired, ...;
`{}` for its generic server responses such as the unknown path's 404). Helpers build the
errors with the messages Kubernetes uses, so clients (kubectl, informers) that
match on reason/code behave as against a real API server.
"""

from __future__ import annotations

from typing import Any


def qualified(plural: str, group: str) -> str:
    """`pods` or `deployments.apps`: how Kubernetes names a resource in messages."""
    return f"{plural}.{group}" if group else plural


class StatusError(Exception):
    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details  # None: no "details" (as Go's nil pointer); {} is sent as {}

    def status(self) -> dict[str, Any]:
        """The Status body, its keys in Go's field order (metav1.Status)."""
        out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": self.message, "reason": self.reason}
        if self.details is not None:
            out["details"] = dict(self.details)
        out["code"] = self.code
        return out


def _details(name: str | None, group: str, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    return d


def success(name: str, group: str, plural: str, uid: str | None = None,
            code: int = 200) -> dict[str, Any]:
    """A Status Success body (DELETE of kinds that do not return the object)."""
    details = _details(name, group, plural)
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}


def resource_not_found() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def not_found(plural: str, name: str, group: str = "") -> StatusError:
    return StatusError(404, "NotFound", f'{qualified(plural, group)} "{name}" not found',
                       _details(name, group, plural))


def already_exists(plural: str, name: str, group: str = "") -> StatusError:
    return StatusError(409, "AlreadyExists", f'{qualified(plural, group)} "{name}" already exists',
                       _details(name, group, plural))


MODIFIED = ("the object has been modified; please apply your changes to the latest "
            "version and try again")


def conflict(plural: str, name: str, group: str = "", why: str = MODIFIED) -> StatusError:
    return StatusError(409, "Conflict",
                       f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {why}',
                       _details(name, group, plural))


def invalid(kind: str, name: str, causes: list[dict[str, str]], group: str = "") -> StatusError:
    """422 Invalid; causes are {"reason", "message", "field"} as Kubernetes sends."""
    parts = [f'{c["field"]}: {c["message"]}' if c.get("field") else c["message"] for c in causes]
    what = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    qual = f"{kind}.{group}" if group else kind
    details = _details(name, group, kind)
    details["causes"] = causes
    return StatusError(422, "Invalid", f'{qual} "{name}" is invalid: {what}', details)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def forbidden(plural: str, name: str, why: str, group: str = "") -> StatusError:
    return StatusError(403, "Forbidden", f'{qualified(plural, group)} "{name}" is forbidden: {why}',
                       _details(name, group, plural))


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def method_not_allowed() -> StatusError:
    return StatusError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource", {})


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType",
                       f'the body of the request was in an unknown format - accepted media types '
                       f'include: application/json, application/yaml (got "{content_type}")')


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError",
                       f"Internal error occurred: {message}", {"causes": [{"message": message}]})


class ProtobufError(ValueError):
    """A request body that is not a Kubernetes protobuf message k8py can decode (400)."""
