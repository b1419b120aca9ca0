"""k8py.network."""
