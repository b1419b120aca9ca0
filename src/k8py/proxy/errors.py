"""Errors of the service proxy."""


class NftError(Exception):
    """`nft` refused a transaction; the message has its output."""
