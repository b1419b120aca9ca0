"""Errors of the k8py client."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """The API answered a non-2xx Status. `status` is the HTTP code, `reason` the
    Status reason (NotFound, AlreadyExists, Conflict, Invalid, Gone, ...)."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {"message": str(body)}
        self.reason = self.body.get("reason", "")
        super().__init__(f"{status} {self.reason}: {self.body.get('message', '')}")

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409 and self.reason == "Conflict"

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def gone(self) -> bool:
        return self.status == 410


class QueueShutDown(Exception):
    """`get` on a work queue that was shut down and is empty."""
