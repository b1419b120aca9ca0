"""k8py: a small Kubernetes-compatible cluster written in Python."""

__version__ = "0.1.0"
# The Kubernetes API version k8py serves and reports from /version.
KUBERNETES_VERSION = "v1.37.0"
