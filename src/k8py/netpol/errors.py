"""Errors of the NetworkPolicy enforcer."""


class NftError(RuntimeError):
    """`nft -f` refused the rendered table (its stderr is the message)."""
