"""Errors of node hosts: one-line messages meant for the user of `k8py node ...`."""


class NodeHostError(Exception):
    """A node host cannot be made, found or changed (the message says why, in one line)."""
