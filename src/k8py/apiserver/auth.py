"""Authentication of HTTPS requests: a client certificate signed by the cluster CA, or a bearer token.

Invariant: every request except the anonymous health/version endpoints must
authenticate, else the front answers 401 with a Kubernetes Status. The TLS layer
has already verified any presented client certificate against the CA (the SSL
context uses CERT_OPTIONAL with the CA as its only trust root), so a present
peer certificate is a proof of identity. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8py.api.wellknown import GROUP_AUTHENTICATED

# Paths Kubernetes lets anyone read (system:public-info-viewer).
ANONYMOUS_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()


@dataclass
class Authenticator:
    """Maps a request's credentials to a User. `tokens` maps bearer token -> User."""

    tokens: dict[str, User] = field(default_factory=dict)
    # Extra token checkers (e.g. service-account tokens added later): token -> User | None.
    token_checkers: list[Callable[[str], User | None]] = field(default_factory=list)

    def add_token(self, token: str, user: User) -> None:
        self.tokens[token] = user

    def from_peercert(self, peercert: dict[str, Any] | None) -> User | None:
        """A User from the verified peer cert dict of `ssl.SSLSocket.getpeercert()`."""
        if not peercert:
            return None
        cn = ""
        groups: list[str] = []
        for rdn in peercert.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
                elif k == "organizationName":
                    groups.append(v)
        if not cn:
            return None
        return User(cn, tuple(groups) + (GROUP_AUTHENTICATED,))

    def from_authorization(self, header: str | None) -> User | None:
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        token = token.strip()
        for known, user in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return user
        for check in self.token_checkers:
            u = check(token)
            if u is not None:
                return u
        return None

    def authenticate(self, peercert: dict[str, Any] | None, authorization: str | None) -> User | None:
        return self.from_peercert(peercert) or self.from_authorization(authorization)


def is_anonymous_path(path: str) -> bool:
    return path in ANONYMOUS_PATHS or path.startswith(("/healthz/", "/livez/", "/readyz/"))


def unauthorized_status() -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
