"""k8py.runtime."""
