"""k8py.scheduler."""
