"""Names and places of node hosts (pure: nothing here touches the machine).

A cluster of node hosts (`HostNetwork`, saved as `<data-dir>/nodes/cluster.json` by
`k8py server --nodes N`) has a host bridge `k8pyh<cid>` holding the first address of
its node network; `cid` is a hash of the data dir, so clusters of two data dirs never
share a name. A node host (`NodeHost`) of it is named from the cluster and the node:
network namespace `k8py-n<cid>-<name>`, host-side veth `k8pyn<ident>` (its peer is
`eth0` in the namespace), runc state `/run/k8py-nodes/<cid>-<name>/`, cgroup parent and
pod namespace prefix from `ident` (`k8py-<ident>`), agent root (images, volumes, logs)
`<data-dir>/nodes/<name>/`. Its record (address, agent pid, running or stopped) is
`/run/k8py-nodes/<cid>-<name>.json`, on tmpfs like the namespaces it describes; the
records are the allocation table of names and addresses, changed only under
`records_lock()` (an exclusive flock of the records directory, held across processes).

Invariants: every name made here starts with `k8py`; names fit Linux's limits
(links <= 15 characters); `ident` never looks like a pod namespace's `<8 hex>-<6 hex>`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from k8py.nodehost.errors import NodeHostError

RECORDS = Path("/run/k8py-nodes")
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
DEFAULT_NODE_NETWORK = "10.41.0.0/24"


def _hash(text: str, n: int) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:n]


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise NodeHostError(f"invalid node name {name!r}: want lowercase letters, digits and '-', "
                            "at most 40, starting and ending with a letter or digit")
    return name


@dataclass(frozen=True)
class HostNetwork:
    """The node hosts' side of one cluster: where they are and how their agents join."""

    data_dir: str
    node_network: str = DEFAULT_NODE_NETWORK
    cluster_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"
    server_port: int = 6443
    registries: str = ""  # the nodes' registries.yaml ("" = none)
    lease_interval: float = 10.0  # the agents' Lease renewal: a quarter of the server's node grace period, <= 10 s
    flannel_backend: str = "host-gw"  # the nodes' pod routes: host-gw or vxlan (`k8py agent --flannel-backend`)

    @property
    def cid(self) -> str:
        return _hash(str(Path(self.data_dir).resolve()), 6)

    @property
    def bridge(self) -> str:
        return f"k8pyh{self.cid}"

    @property
    def net(self) -> ipaddress.IPv4Network:
        net = ipaddress.ip_network(self.node_network, strict=False)
        if not isinstance(net, ipaddress.IPv4Network) or net.num_addresses < 4:
            raise NodeHostError(f"node network {self.node_network}: want an IPv4 network of 4 addresses or more")
        return net

    @property
    def host_ip(self) -> str:
        return str(self.net.network_address + 1)

    @property
    def server_url(self) -> str:
        return f"https://{self.host_ip}:{self.server_port}"

    @property
    def file(self) -> Path:
        return Path(self.data_dir) / "nodes" / "cluster.json"

    def save(self) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, data_dir: str | Path) -> HostNetwork:
        path = Path(data_dir).resolve() / "nodes" / "cluster.json"
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise NodeHostError(f"no cluster of node hosts at {Path(data_dir)}: start it with "
                                "`k8py server --nodes N --data-dir DIR`") from None
        except (ValueError, TypeError) as e:
            raise NodeHostError(f"{path}: unreadable ({e})") from None

    def node(self, name: str, ip: str) -> NodeHost:
        return NodeHost(self, check_name(name), ip)

    def record_paths(self) -> list[Path]:
        return sorted(RECORDS.glob(f"{self.cid}-*.json")) if RECORDS.is_dir() else []


@dataclass(frozen=True)
class NodeHost:
    cluster: HostNetwork
    name: str
    ip: str

    @property
    def ident(self) -> str:  # "n" + 5 hex: never mistaken for a pod namespace's hex name
        return "n" + _hash(f"{self.cluster.cid}/{self.name}", 5)

    @property
    def netns(self) -> str:
        return f"k8py-n{self.cluster.cid}-{self.name}"

    @property
    def veth(self) -> str:
        return f"k8pyn{self.ident}"

    @property
    def state_dir(self) -> Path:
        return RECORDS / f"{self.cluster.cid}-{self.name}"

    @property
    def record(self) -> Path:
        return RECORDS / f"{self.cluster.cid}-{self.name}.json"

    @property
    def root_dir(self) -> Path:
        return Path(self.cluster.data_dir) / "nodes" / self.name

    @property
    def cgroup_parent(self) -> str:
        return f"k8py-{self.ident}"

    @property
    def netns_prefix(self) -> str:
        return f"k8py-{self.ident}-"


def read_record(path: Path) -> dict[str, object]:
    try:
        out: dict[str, object] = json.loads(path.read_text())
        return out
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def records_lock() -> Iterator[None]:
    """Hold the records directory's exclusive flock: what is read of the records in the block
    stays true until its end (`k8py node add` and the server's adds run in other processes)."""
    RECORDS.mkdir(parents=True, exist_ok=True)
    fd = os.open(RECORDS, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_record(node: NodeHost, pid: int, state: str) -> None:
    RECORDS.mkdir(parents=True, exist_ok=True)
    tmp = node.record.with_suffix(".tmp")
    tmp.write_text(json.dumps({"cluster": asdict(node.cluster), "name": node.name, "ip": node.ip,
                               "pid": pid, "state": state}))
    tmp.replace(node.record)


def node_from_record(rec: dict[str, object]) -> NodeHost:
    cluster = rec.get("cluster")
    if not isinstance(cluster, dict):
        raise NodeHostError("a node record without its cluster")
    return NodeHost(HostNetwork(**cluster), str(rec["name"]), str(rec["ip"]))
