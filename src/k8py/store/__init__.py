"""k8py.store."""
