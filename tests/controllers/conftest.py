"""Fixtures of the controller tests (see ctrl_helpers)."""

from ctrl_helpers import cluster  # noqa: F401
