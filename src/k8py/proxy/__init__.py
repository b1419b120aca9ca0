"""k8py.proxy."""
