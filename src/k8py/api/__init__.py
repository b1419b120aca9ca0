"""k8py.api."""
