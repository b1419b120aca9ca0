"""Errors of the controllers package."""

from __future__ import annotations


class ScheduleError(ValueError):
    """A CronJob schedule (or time zone) that Kubernetes would not parse."""
