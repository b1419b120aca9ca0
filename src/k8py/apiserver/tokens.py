"""Service-account tokens (TokenRequest): signed JWTs, as kube-apiserver issues them.

`TokenIssuer` signs ES256 JWTs with a P-256 key kept at `<dir>/sa.key` (0600; made on
first use, so neither startup nor clusters that never ask for a token pay for it) and
verifies them for the authenticator. Claims follow Kubernetes' bound tokens: `iss`,
`sub = system:serviceaccount:<ns>:<name>`, `aud`, `iat`/`nbf`/`exp`, `jti`, and
`kubernetes.io: {namespace, serviceaccount: {name, uid}[, pod|secret|node: {name, uid}]}`
(a pod-bound token also names the pod's node).

Invariant: `verify` accepts only tokens signed by this key, unexpired, whose
audience includes one of the wanted audiences (the API server's, `API_AUDIENCE`, by
default); it never raises for bad input. `boundtokens.BoundTokenAuthenticator` adds
Kubernetes' liveness check: the account, and the object the token is bound to, must
still exist with the uid the token names.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from k8py.api.wellknown import GROUP_AUTHENTICATED
from k8py.apiserver.auth import User

API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"  # kube-apiserver's default issuer/audience
DEFAULT_EXPIRATION = 3600  # seconds (kubectl create token without --duration)
MIN_EXPIRATION = 600  # Kubernetes refuses shorter tokens
MAX_EXPIRATION = 2 ** 32  # Kubernetes' cap on expirationSeconds
KEY_FILE = "sa.key"
VERIFIED_CACHE = 4096  # tokens whose signature check is remembered (oldest forgotten first)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def service_account_user(namespace: str, name: str) -> User:
    return User(f"system:serviceaccount:{namespace}:{name}",
                ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", GROUP_AUTHENTICATED))


class TokenIssuer:
    def __init__(self, key_dir: str | Path | None, now: Callable[[], float], issuer: str = API_AUDIENCE) -> None:
        """`key_dir` None: an in-memory key (tests, in-process servers)."""
        self.key_dir = Path(key_dir) if key_dir is not None else None
        self.now = now
        self.issuer = issuer
        self._key: Any = None
        self._verified: dict[str, dict[str, Any]] = {}  # token -> claims whose signature checked
        self._lock = threading.Lock()

    def _private_key(self) -> Any:
        with self._lock:
            if self._key is None:
                self._key = self._load_or_create()
            return self._key

    def _load_or_create(self) -> Any:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        path = self.key_dir / KEY_FILE if self.key_dir is not None else None
        if path is not None and path.exists():
            return serialization.load_pem_private_key(path.read_bytes(), None)
        key = ec.generate_private_key(ec.SECP256R1())
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        return key

    def _kid(self) -> str:
        import hashlib

        from cryptography.hazmat.primitives import serialization
        der = self._private_key().public_key().public_bytes(serialization.Encoding.DER,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        return _b64(hashlib.sha256(der).digest())

    def issue(self, namespace: str, name: str, uid: str, *, audiences: list[str] | None = None,
              expiration_seconds: int = DEFAULT_EXPIRATION, bound: dict[str, Any] | None = None,
              node: dict[str, Any] | None = None) -> tuple[str, int]:
        """A signed token for service account namespace/name, bound to an object (`{kind,
        name, uid}` of a Pod, Secret or Node) if given, naming a pod's `node` ({name, uid});
        returns (token, exp)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(self.now())
        exp = now + int(expiration_seconds)
        k8s: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if bound:
            k8s[str(bound["kind"]).lower()] = {"name": bound["name"], "uid": bound.get("uid", "")}
        if node and not (bound and bound.get("kind") == "Node"):
            k8s["node"] = {"name": node["name"], "uid": node.get("uid", "")}
        claims = {"aud": list(audiences or [API_AUDIENCE]), "exp": exp, "iat": now, "iss": self.issuer,
                  "jti": str(uuid.uuid4()), "kubernetes.io": k8s, "nbf": now,
                  "sub": f"system:serviceaccount:{namespace}:{name}"}
        header = {"alg": "ES256", "kid": self._kid()}
        signing_input = (_b64(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         _b64(json.dumps(claims, separators=(",", ":")).encode()))
        der = self._private_key().sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")), exp

    def verify(self, token: str, audiences: Collection[str] = (API_AUDIENCE,)) -> dict[str, Any] | None:
        """The claims of a valid token of ours for one of `audiences` (the API server's by
        default), else None. Signatures already checked are remembered (the same string
        always checks the same way); audience and time are checked on every call."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._signed_claims(token)
            if claims is None:
                return None
            if len(self._verified) >= VERIFIED_CACHE:
                self._verified.pop(next(iter(self._verified)))
            self._verified[token] = claims
        now = self.now()
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not any(a in auds for a in audiences):
            return None
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, (int, float)) or now >= exp or not isinstance(nbf, (int, float)) or now < nbf - 60:
            return None
        return claims

    def _signed_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token whose signature is this key's, else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_unb64(parts[0]))
            if not isinstance(header, dict) or header.get("alg") != "ES256":
                return None
            claims = json.loads(_unb64(parts[1]))
            sig = _unb64(parts[2])
        except (ValueError, TypeError):
            return None
        if len(sig) != 64 or not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            return None
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        try:
            self._private_key().public_key().verify(der, (parts[0] + "." + parts[1]).encode(),
                                                    ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return None
        return claims

    def authenticate(self, token: str) -> User | None:
        """Authenticator hook: the service account a token names (None if not ours)."""
        if token.count(".") != 2:
            return None
        claims = self.verify(token)
        return None if claims is None else user_from_claims(claims)


def user_from_claims(claims: dict[str, Any]) -> User | None:
    k8s = claims.get("kubernetes.io")
    if not isinstance(k8s, dict) or not isinstance(k8s.get("serviceaccount"), dict):
        return None
    ns, sa = k8s.get("namespace"), k8s["serviceaccount"].get("name")
    if not isinstance(ns, str) or not isinstance(sa, str):
        return None
    return service_account_user(ns, sa)
