"""k8py.proxy: the service dataplane in nftables (ClusterIP, NodePort, LoadBalancer)."""

from k8py.proxy.nft import delete_table


def cleanup() -> None:
    """Remove the k8py nftables table (for `k8py reset`)."""
    delete_table()
