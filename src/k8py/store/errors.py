"""Errors raised by stores. The API server maps them to Kubernetes Status codes."""


class StoreError(Exception):
    """Base class."""


class KeyExists(StoreError):
    """create() of a key that exists (409 AlreadyExists)."""


class NotFound(StoreError):
    """get/update/delete of a key that does not exist (404)."""


class Conflict(StoreError):
    """CAS failed: the key's revision is not the expected one (409 Conflict)."""


class Compacted(StoreError):
    """watch/list from a revision that was compacted away (410 Gone)."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"required revision {requested} has been compacted (compacted up to {compacted})")
        self.requested = requested
        self.compacted = compacted


class EtcdError(StoreError):
    """etcd answered with an error the etcd store does not map to one of the above."""


class EtcdTLSError(EtcdError):
    """The TLS handshake with an etcd member failed (its certificate not trusted, or
    ours refused): a configuration error, not retried."""
