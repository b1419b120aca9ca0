"""What a simulated node shows in the API besides the well-known names of `api.wellknown`
(LABEL_SIMULATED, ANNOTATION_SIMULATED, ANNOTATION_SIMULATED_HEARTBEAT: the heartbeat
annotation pauses and resumes it, see node.py): the note, the heartbeat values and the
versions in its nodeInfo."""

from __future__ import annotations

from k8py import KUBERNETES_VERSION

SIMULATED_NOTE = ("This node is simulated by k8py: it runs no containers; its pods are marked "
                  "Running without processes and their IPs route nowhere.")
HEARTBEAT_PAUSED = "paused"
HEARTBEAT_RUNNING = "running"
KUBELET_VERSION = f"{KUBERNETES_VERSION}-k8py-sim"
RUNTIME_VERSION = "k8py-sim://0.1.0"
