"""Encryption at rest: kube-apiserver's EncryptionConfiguration, applied around the Store.

The file is Kubernetes' own (`apiVersion: apiserver.config.k8s.io/v1`,
`kind: EncryptionConfiguration`): each entry of `resources` names resources (`secrets`,
`configmaps`, `deployments.apps`, or `*.*` for all) and an ordered list of providers.
Supported providers: `aescbc` and `aesgcm` (keys of 16, 24 or 32 bytes, base64) and
`identity`. `secretbox` (XSalsa20-Poly1305) is refused with a clear error: the
`cryptography` package does not provide it and k8py does not hand-write crypto. `kms` is
refused too.

Stored values carry kube-apiserver's prefix, `k8s:enc:<provider>:v1:<keyname>:`, then:
aescbc: a 16-byte IV and the AES-CBC ciphertext (PKCS#7 padding); aesgcm: a 12-byte random
nonce and the AES-GCM ciphertext with its tag, the store key as authenticated data (so a
value copied under another key does not decrypt).

Writing: the first provider encrypts (`identity` first = stored in plaintext, the opt-out).
Reading: the first provider whose prefix matches decrypts (identity matches any value
not prefixed `k8s:enc:`); a value no provider can read answers a 500 Status naming the
key and the reason, as kube-apiserver does, never a traceback.

`EncryptingStore` wraps any Store: values under an encrypted resource's prefix are
transformed on every write, and on every read (get, list, watch events), so the rest
of the API server sees plaintext JSON.

`k8py server` writes `<data-dir>/encryption-config.yaml` on the first start unless
`--encryption-provider-config FILE` is given: mode 0600, a fresh aescbc key, `identity` last
so that Secrets stored before encryption still read; written as JSON (which is YAML too) so
that a restart loads no YAML parser. Rotation (`k8py secrets rotate`, cli/secrets.py):
`rotated_document` puts a new key first, `rewrite_all` rewrites every encrypted value with
it, `without_old_keys` drops the others. Any write of a Secret re-encrypts it with the first
key too.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k8py.api import resources
from k8py.apiserver.errors import StatusError
from k8py.store.protocol import KeyValue, ListResult, Store, WatchEvent

log = logging.getLogger("k8py.encryption")

API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"
DEFAULT_FILE = "encryption-config.yaml"
_ENC = b"k8s:enc:"
_AES_KEY_SIZES = (16, 24, 32)


class EncryptionConfigError(ValueError):
    """The configuration file is unusable (the message names the field)."""


class TransformError(Exception):
    """A stored value no provider can read."""


@dataclass(frozen=True)
class Provider:
    kind: str  # aescbc | aesgcm | identity
    name: str = ""  # key name ("" for identity)
    key: bytes = b""

    @property
    def prefix(self) -> bytes:
        return b"" if self.kind == "identity" else f"k8s:enc:{self.kind}:v1:{self.name}:".encode()

    def encrypt(self, data: bytes, context: str) -> bytes:
        if self.kind == "identity":
            return data
        if self.kind == "aesgcm":
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            nonce = os.urandom(12)
            return self.prefix + nonce + AESGCM(self.key).encrypt(nonce, data, context.encode())
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(data) + padder.finalize()
        enc = Cipher(algorithms.AES(self.key), modes.CBC(iv)).encryptor()
        return self.prefix + iv + enc.update(padded) + enc.finalize()

    def decrypt(self, value: bytes, context: str) -> bytes:
        if self.kind == "identity":
            if value.startswith(_ENC):
                raise TransformError("identity transformer tried to read encrypted data")
            return value
        body = value[len(self.prefix):]
        if self.kind == "aesgcm":
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            if len(body) < 12 + 16:
                raise TransformError("the stored data was shorter than the required size")
            try:
                return AESGCM(self.key).decrypt(body[:12], body[12:], context.encode())
            except InvalidTag:
                raise TransformError(f"key {self.name!r} failed to decrypt (message authentication failed)") from None
        return self._decrypt_cbc(body)

    def _decrypt_cbc(self, body: bytes) -> bytes:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        if len(body) < 32 or len(body) % 16:
            raise TransformError("the stored data is not a multiple of the block size")
        dec = Cipher(algorithms.AES(self.key), modes.CBC(body[:16])).decryptor()
        padded = dec.update(body[16:]) + dec.finalize()
        try:
            unpadder = padding.PKCS7(128).unpadder()
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise TransformError(f"key {self.name!r} failed to decrypt (invalid padding)") from None


@dataclass
class Rule:
    """One `resources` entry: the store prefixes it covers and its providers, in order."""
    resources: list[str]
    prefixes: list[str]
    providers: list[Provider]


@dataclass
class EncryptionConfig:
    rules: list[Rule] = field(default_factory=list)
    path: str = ""

    def rule_for(self, key: str) -> Rule | None:
        for rule in self.rules:
            if any(key.startswith(p) for p in rule.prefixes):
                return rule
        return None

    def encrypts(self, key: str) -> bool:
        rule = self.rule_for(key)
        return rule is not None and rule.providers[0].kind != "identity"

    def write_value(self, key: str, value: bytes) -> bytes:
        rule = self.rule_for(key)
        return value if rule is None else rule.providers[0].encrypt(value, key)

    def read_value(self, key: str, value: bytes) -> bytes:
        """The plaintext of `value` stored at `key`; TransformError if no provider reads it."""
        rule = self.rule_for(key)
        if rule is None:
            return value
        errors = []
        for p in rule.providers:
            if p.kind == "identity":
                if not value.startswith(_ENC):
                    return value
                errors.append("identity transformer tried to read encrypted data")
            elif value.startswith(p.prefix):
                try:
                    return _checked(p, p.decrypt(value, key))
                except TransformError as e:
                    errors.append(str(e))
        raise TransformError("; ".join(errors) or "no matching prefix found")


def _checked(p: Provider, plain: bytes) -> bytes:
    """aescbc has no authentication: a wrong key passes the padding check about 1 time in 256
    and yields garbage. Every value k8py stores is a JSON object, so garbage is told apart by
    its first byte (leaving 1 in 65,536 to the JSON decoder, which answers a 500 Status too)."""
    if p.kind == "aescbc" and not plain.startswith(b"{"):
        raise TransformError(f"key {p.name!r} failed to decrypt (not a stored object)")
    return plain


# ---- the configuration file ----

def _resource_prefixes(name: str) -> list[str]:
    """Store prefixes of a resource named as EncryptionConfiguration names it:
    `secrets` (core), `deployments.apps`, `*.*` (everything), `*.apps` (a whole group)."""
    if name == "*.*":
        return ["/registry/"]
    plural, _, group = name.partition(".")
    if plural == "*":
        g = "core" if group in ("", "core") else group
        return [f"/registry/{g}/"]
    r = resources.lookup("" if group in ("", "core") else group, plural)
    if r is None:
        raise EncryptionConfigError(f"resources: unknown resource {name!r}")
    return [r.storage_prefix(None)]


def _key_of(kind: str, k: Any, where: str) -> Provider:
    if not isinstance(k, dict) or not k.get("name") or not isinstance(k.get("name"), str):
        raise EncryptionConfigError(f"{where}.name: Required value")
    try:
        secret = base64.b64decode(str(k.get("secret") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionConfigError(f"{where}.secret: Invalid value: secrets must be base64 encoded") from None
    if len(secret) not in _AES_KEY_SIZES:
        raise EncryptionConfigError(f"{where}.secret: Invalid value: {kind} key must be 16, 24 or 32 bytes, "
                                    f"got {len(secret)}")
    return Provider(kind, k["name"], secret)


def _providers_of(entry: Any, where: str) -> list[Provider]:
    out: list[Provider] = []
    for i, p in enumerate(entry or []):
        if not isinstance(p, dict) or len(p) != 1:
            raise EncryptionConfigError(f"{where}[{i}]: Invalid value: exactly one provider per entry")
        kind, body = next(iter(p.items()))
        if kind == "identity":
            out.append(Provider("identity"))
            continue
        if kind == "secretbox":
            raise EncryptionConfigError(f"{where}[{i}].secretbox: Unsupported value: XSalsa20-Poly1305 is not in the "
                                        "cryptography package; use aescbc or aesgcm")
        if kind not in ("aescbc", "aesgcm"):
            raise EncryptionConfigError(f'{where}[{i}]: Unsupported value: "{kind}": supported values: '
                                        '"aescbc", "aesgcm", "identity"')
        keys = (body or {}).get("keys") if isinstance(body, dict) else None
        if not keys:
            raise EncryptionConfigError(f"{where}[{i}].{kind}.keys: Required value")
        names = [k.get("name") for k in keys if isinstance(k, dict)]
        if len(set(names)) != len(names):
            raise EncryptionConfigError(f"{where}[{i}].{kind}.keys: Duplicate value: key names must be unique")
        out += [_key_of(kind, k, f"{where}[{i}].{kind}.keys[{j}]") for j, k in enumerate(keys)]
    if not out:
        raise EncryptionConfigError(f"{where}: Required value")
    return out


def parse(doc: Any, path: str = "") -> EncryptionConfig:
    if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("apiVersion") != API_VERSION:
        raise EncryptionConfigError(f"{path or 'encryption config'}: want apiVersion {API_VERSION}, kind {KIND}")
    rules = []
    for i, entry in enumerate(doc.get("resources") or []):
        names = entry.get("resources") if isinstance(entry, dict) else None
        if not names:
            raise EncryptionConfigError(f"resources[{i}].resources: Required value")
        prefixes = [p for n in names for p in _resource_prefixes(str(n))]
        rules.append(Rule(list(names), prefixes, _providers_of(entry.get("providers"), f"resources[{i}].providers")))
    return EncryptionConfig(rules, path)


def load(path: str | Path) -> EncryptionConfig:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise EncryptionConfigError(f"encryption provider config {path}: {e.strerror}") from None
    try:
        doc = json.loads(text)  # what k8py writes (JSON is YAML): no YAML parser to load on a restart
    except ValueError:
        import yaml
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise EncryptionConfigError(f"encryption provider config {path}: {e}") from None
    try:
        return parse(doc, str(path))
    except EncryptionConfigError as e:
        raise EncryptionConfigError(f"encryption provider config {path}: {e}") from None


def new_key_name() -> str:
    return f"key-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{os.urandom(2).hex()}"


def default_document(kind: str = "aescbc") -> dict[str, Any]:
    """A configuration encrypting Secrets with one fresh key; `identity` last so that
    Secrets written before encryption was on still read (and are encrypted on their next write)."""
    key = {"name": new_key_name(), "secret": base64.b64encode(os.urandom(32)).decode()}
    return {"apiVersion": API_VERSION, "kind": KIND,
            "resources": [{"resources": ["secrets"], "providers": [{kind: {"keys": [key]}}, {"identity": {}}]}]}


def write_document(path: Path, doc: dict[str, Any]) -> None:
    """Write atomically, mode 0600 (it holds the keys), as JSON (which is YAML too)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(doc, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def ensure_config(data_dir: Path, given: str | None) -> EncryptionConfig:
    """The configuration to use: `given`, else the data dir's (made on the first start)."""
    if given:
        return load(given)
    path = data_dir / DEFAULT_FILE
    if not path.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_document(path, default_document())
    return load(path)


# ---- the store wrapper ----

class EncryptingStore:
    """A Store whose values under encrypted prefixes are encrypted on write and
    decrypted on read; everything else is passed to `inner` untouched."""

    def __init__(self, inner: Store, config: EncryptionConfig) -> None:
        self.inner = inner
        self.config = config

    def __getattr__(self, name: str) -> Any:  # store-specific extras (path, lagged_watches, ...)
        return getattr(self.inner, name)

    def _read(self, kv: KeyValue) -> KeyValue:
        try:
            value = self.config.read_value(kv.key, kv.value)
        except TransformError as e:
            raise StatusError(500, "InternalError",
                              f'Internal error occurred: unable to transform key "{kv.key}": {e}') from None
        return kv if value is kv.value else KeyValue(kv.key, value, kv.mod_revision, kv.create_revision)

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    @property
    def compacted_revision(self) -> int:
        return self.inner.compacted_revision

    async def get(self, key: str) -> KeyValue | None:
        kv = await self.inner.get(key)
        return None if kv is None else self._read(kv)

    async def list(self, prefix: str, *, start_after: str | None = None, limit: int = 0) -> ListResult:
        res = await self.inner.list(prefix, start_after=start_after, limit=limit)
        return ListResult([self._read(kv) for kv in res.items], res.revision, res.more)

    async def count(self, prefix: str) -> int:
        return await self.inner.count(prefix)

    async def create(self, key: str, value: bytes) -> KeyValue:
        kv = await self.inner.create(key, self.config.write_value(key, value))
        return KeyValue(kv.key, value, kv.mod_revision, kv.create_revision)

    async def update(self, key: str, value: bytes, expected_revision: int) -> KeyValue:
        kv = await self.inner.update(key, self.config.write_value(key, value), expected_revision)
        return KeyValue(kv.key, value, kv.mod_revision, kv.create_revision)

    async def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        return self._read(await self.inner.delete(key, expected_revision))

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)

    async def watch(self, prefix: str, revision: int) -> AsyncIterator[WatchEvent]:
        async for ev in self.inner.watch(prefix, revision):
            try:
                kv = self._read(ev.kv)
                prev = None if ev.prev is None else self._read(ev.prev)
            except StatusError as e:  # kube-apiserver logs it and the watcher misses the event
                log.error("watch %s: %s", prefix, e.message)
                continue
            yield WatchEvent(ev.type, kv, prev, ev.created)


def rotated_document(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """`doc` with a fresh key first in each rule's first (encrypting) provider, the old
    keys kept after it; returns it with the new key's name."""
    import copy
    doc = copy.deepcopy(doc)
    name = new_key_name()
    for i, entry in enumerate(doc.get("resources") or []):
        providers = entry.get("providers") or []
        if not providers or "identity" in providers[0]:
            raise EncryptionConfigError(f"resources[{i}].providers[0]: identity is first (encryption is off): "
                                        "nothing to rotate")
        kind = next(iter(providers[0]))
        key = {"name": name, "secret": base64.b64encode(os.urandom(32)).decode()}
        providers[0][kind]["keys"] = [key] + (providers[0][kind].get("keys") or [])
    return doc, name


def without_old_keys(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` keeping, in each rule, only the first provider's first key (and `identity`)."""
    import copy
    doc = copy.deepcopy(doc)
    for entry in doc.get("resources") or []:
        first, *rest = entry["providers"]
        kind = next(iter(first))
        if kind != "identity":
            first = {kind: {"keys": first[kind]["keys"][:1]}}
        entry["providers"] = [first] + [p for p in rest if "identity" in p]
    return doc


async def rewrite_all(store: Store, config: EncryptionConfig) -> int:
    """Rewrite every value under an encrypted prefix with the first provider (CAS,
    retried on conflict); returns how many were rewritten."""
    from k8py.store import errors
    n = 0
    enc = EncryptingStore(store, config)
    for rule in config.rules:
        for prefix in rule.prefixes:
            start_after: str | None = None
            while True:
                res = await enc.list(prefix, start_after=start_after, limit=500)
                for kv in res.items:
                    while True:
                        try:
                            await enc.update(kv.key, kv.value, kv.mod_revision)
                            n += 1
                            break
                        except errors.Conflict:
                            fresh = await enc.get(kv.key)
                            if fresh is None:
                                break
                            kv = fresh
                        except errors.NotFound:
                            break
                if not res.more or not res.items:
                    break
                start_after = res.items[-1].key
    return n
