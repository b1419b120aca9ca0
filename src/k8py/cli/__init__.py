"""k8py.cli."""
