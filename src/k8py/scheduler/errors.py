"""Errors of the scheduler package. A pod that fits nowhere is `FitError` (defined in
framework.py with the message wording); re-exported here as the package's error."""

from __future__ import annotations

from k8py.scheduler.framework import FitError

__all__ = ["FitError"]
