"""Simulated nodes (as KWOK does): Nodes that register, heartbeat and "run" pods without
any process, container or network, so that k8py can be load-tested and taught with many
nodes (`k8py server --simulated-nodes N`, bench/scale.py, the course's labs).

These nodes are not a kubelet: they run nothing; their pods are marked Running and get
addresses that route nowhere. Modules: `node` (one simulated node: its Node object,
status and heartbeat controls), `engine` (drives a set of them on shared informers and
one work queue), `cluster` (N nodes at once), `podstatus` (the status of a pod that
"runs"), `addresses` (TEST-NET node addresses, pod CIDRs and pod IPs), `run` (the
`k8py server` component).
"""
