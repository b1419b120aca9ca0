"""k8py.network: pod sandbox networking (bridge, veth, host-local IPAM, routes).

Imports no container runtime (the runtime's PodNetwork seam is met structurally;
the pod a sandbox belongs to is a `podref.PodRef`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from k8py.network.bridge import BRIDGE, BridgeNetwork, cleanup_links

DEFAULT_STATE_DIR = Path("/var/lib/k8py/network")


async def cleanup(state_dir: Path = DEFAULT_STATE_DIR) -> None:
    """Remove every k8py link and the IPAM state (for `k8py reset`)."""
    await cleanup_links(every_veth=True)
    shutil.rmtree(state_dir / "ipam", ignore_errors=True)


__all__ = ["BRIDGE", "BridgeNetwork", "cleanup"]
