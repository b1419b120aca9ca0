"""k8py.client."""
