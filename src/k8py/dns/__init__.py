"""k8py.dns."""
