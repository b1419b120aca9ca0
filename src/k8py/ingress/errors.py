"""Errors of the ingress controller."""


class NginxError(Exception):
    """nginx refused a config (`nginx -t`) or a signal; the message has its output."""
