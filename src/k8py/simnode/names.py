"""The names a simulated node shows in the API: its label and annotations (the heartbeat
annotation pauses and resumes it: see node.py) and the versions in its nodeInfo."""

from __future__ import annotations

SIMULATED_LABEL = "k8py.io/simulated"  # "true" on every simulated Node
SIMULATED_ANNOTATION = "k8py.io/simulated"  # SIMULATED_NOTE, for a human who describes the Node
SIMULATED_NOTE = ("This node is simulated by k8py: it runs no containers; its pods are marked "
                  "Running without processes and their IPs route nowhere.")
HEARTBEAT_ANNOTATION = "k8py.io/simulated-heartbeat"
HEARTBEAT_PAUSED = "paused"
HEARTBEAT_RUNNING = "running"
KUBELET_VERSION = "v1.32.0-k8py-sim"
RUNTIME_VERSION = "k8py-sim://0.1.0"
