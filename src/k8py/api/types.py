"""Type aliases shared by every package: how a Kubernetes object looks in k8py.

Objects are kept as Kubernetes writes them on the wire: JSON objects decoded into plain
dicts (`Obj`). Shapes read in many places get a TypedDict of their own beside this alias.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
"""A Kubernetes object (or any JSON object inside one), as decoded from JSON."""
