"""k8py.nodehost: several real nodes on one machine, each a host of its own (as a kind
node is a container): a network namespace on a host bridge, its own address, runc
state, cgroups and image store, and the `k8py agent` that a separate machine runs.

`layout` names everything, `hostnet` makes the links, `agent` starts and stops the
node's agent, `manager.NodeHosts` is what `k8py server --nodes N` and `k8py node ...`
use, `forward` lends the nodes the machine's loopback registry.
"""

from k8py.nodehost.errors import NodeHostError
from k8py.nodehost.manager import NodeHosts, cleanup

__all__ = ["NodeHostError", "NodeHosts", "cleanup"]
