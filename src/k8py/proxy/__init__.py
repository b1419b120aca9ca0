"""k8py.proxy: the service dataplane in nftables (ClusterIP, NodePort, LoadBalancer)."""

import shutil
import subprocess


def cleanup() -> None:
    """Remove every k8py nftables table (for `k8py reset`)."""
    if not shutil.which("nft"):
        return
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table" and parts[2].startswith("k8py"):
            subprocess.run(["nft", "delete", "table", parts[1], parts[2]], capture_output=True, check=False)
