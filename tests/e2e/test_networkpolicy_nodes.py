"""NetworkPolicy across nodes: node hosts (`k8py server --nodes 3`, host-gw) each run the
enforcer in their own network namespace; a busybox pod on node-2 reaching nginx on node-1 is
routed, not bridged, and still blocked by a default deny, then let through by a label."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_multinode import node_hosts
from test_networkpolicy import ALLOW, DENY, WEB, apply, client, reaches

from e2e_harness import wait_for

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, local_registry: Any) -> Iterator[Any]:
    with node_hosts(tmp_path_factory, local_registry, "k8py-netpol-nodes") as c:
        yield c


def on(node: str, pod: dict[str, Any]) -> dict[str, Any]:
    return {**pod, "spec": {**pod["spec"], "nodeName": node}}


def test_policies_filter_traffic_between_nodes(nodes: Any) -> None:
    c = nodes
    apply(c, on("node-1", WEB), on("node-2", client("allowed", {"access": "true"})),
          on("node-2", client("blocked", {})))
    for pod in ("web", "allowed", "blocked"):
        c.kubectl("wait", "--for=condition=Ready", f"pod/{pod}", "--timeout=180s", timeout=190)
    web = c.kubectl_json("get", "pod", "web")["status"]["podIP"]
    wait_for(lambda: reaches(c, "blocked", web), 60, "nginx on node-1 from node-2")
    apply(c, DENY)
    wait_for(lambda: not reaches(c, "blocked", web), 30, "the default deny on node-1")
    assert not reaches(c, "allowed", web)
    apply(c, ALLOW)
    wait_for(lambda: reaches(c, "allowed", web), 30, "the allow rule on node-1")
    assert not reaches(c, "blocked", web)
