"""Errors of the pod network."""


class NetworkError(Exception):
    """A command that wires the node or a pod failed."""


class AddressesExhausted(NetworkError):
    """The node's pod CIDR has no free address left."""
