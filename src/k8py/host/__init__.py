"""k8py.host: host-level helpers shared by the node components (runtime, network, ...).

Invariant: this package imports no other k8py package but `k8py.api` and `k8py.clock`,
so that any node component may use it without depending on another.

    proc.py   short helper processes (ip, unshare, runc ...) run off the event loop
"""
