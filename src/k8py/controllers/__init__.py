"""k8py.controllers."""
