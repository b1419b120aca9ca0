"""k8py.kubelet."""
