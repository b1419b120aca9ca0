"""Errors raised by the pure-data API helpers (quantities, selectors, patches, apply).

All of them are ValueErrors: they describe bad input, and the API server maps them to
Kubernetes Status responses (400/422 for bad input, 409 for ApplyConflict).
"""

from __future__ import annotations


class QuantityError(ValueError):
    """A resource quantity string that Kubernetes would not parse ("12XB")."""


class SelectorError(ValueError):
    """A label or field selector that Kubernetes would not parse."""


class PatchError(ValueError):
    """A JSON patch, merge patch or strategic merge patch that cannot be applied."""


class ApplyConflict(ValueError):
    """Server-side apply would change fields owned by other managers (409 Conflict).

    `conflicts` lists (manager, path) pairs, path in Kubernetes' notation such as
    `.spec.replicas` or `.spec.containers[name="nginx"].image`; `causes` gives them as
    Status details causes (type FieldManagerConflict), as the API server reports them.
    """

    def __init__(self, message: str, conflicts: list[tuple[str, str]], causes: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.conflicts = conflicts
        self.causes = causes
