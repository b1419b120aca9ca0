"""Scheduler plugins, one module per plugin; `default_plugins()` builds Kubernetes'
default set (filters, then scores with Kubernetes' default weights, and DefaultPreemption
as the post-filter)."""

from __future__ import annotations

from typing import Any

from k8py.scheduler.plugins import (
    balancedallocation,
    defaultpreemption,
    interpodaffinity,
    leastallocated,
    nodeaffinity,
    nodename,
    nodeports,
    noderesources,
    nodeunschedulable,
    podtopologyspread,
    selectorspread,
    tainttoleration,
    volumebinding,
)


def default_plugins() -> list[Any]:
    return [
        nodename.new(),
        nodeunschedulable.new(),
        tainttoleration.new(),
        nodeaffinity.new(),
        nodeports.new(),
        noderesources.new(),
        volumebinding.new(),
        interpodaffinity.new(),
        podtopologyspread.new(),
        leastallocated.new(),
        balancedallocation.new(),
        selectorspread.new(),
        defaultpreemption.new(),
    ]
