"""k8py.netpol: NetworkPolicies enforced in nftables on every node (one table per node).

`rules.py` renders policies, pods and namespaces into the node's table (pure);
`controller.py` is the level-triggered loop that applies it; `run.py` the component.
"""

import shutil
import subprocess


def cleanup() -> None:
    """Remove every k8py NetworkPolicy table (for `k8py reset`)."""
    if not shutil.which("nft"):
        return
    out = subprocess.run(["nft", "list", "tables", "inet"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith("k8py-netpol"):
            subprocess.run(["nft", "delete", "table", "inet", parts[2]], capture_output=True, check=False)
