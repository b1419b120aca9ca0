"""k8py.apiserver."""
