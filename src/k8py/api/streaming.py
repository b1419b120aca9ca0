"""The wire vocabulary of a pod's streams (pods/log, exec, attach, portforward) shared by
the API server, which forwards them, and the node agent, which serves them.

- paths: the agent serves the API's own paths (`/api/v1/namespaces/<ns>/pods/<name>/<sub>`);
- `REMOTE_USER_HEADER`: the API server tells the agent who asked;
- exec and attach speak the channel protocols `v5.channel.k8s.io` / `v4.channel.k8s.io`:
  each binary message starts with its channel number;
- `failure_status`: the Status body of a refused stream;
- the seams: `NodeStreams` serves the streams of one node's pods; `LocalNodeHost` is
  where an agent running inside the API server's process offers its NodeStreams (the
  API server's node proxy), so that its pods are served without a network hop.

Invariant: definitions only; no other k8py package is imported.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.types import Obj
from k8py.api.wellknown import USER_SYSTEM_ADMIN

if TYPE_CHECKING:
    from aiohttp import web

# pods/<sub> a node agent serves; the upgrades among them (WebSocket) take over the connection
POD_STREAM_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/(log|exec|attach|portforward)$")
POD_UPGRADE_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/(exec|attach|portforward)$")

STATS_SUMMARY_PATH = "/stats/summary"  # the kubelet's Summary API (resource usage of the node and its pods)

REMOTE_USER_HEADER = "X-Remote-User"  # the user the API server forwards a request for
DEFAULT_REMOTE_USER = USER_SYSTEM_ADMIN

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255  # CLOSE (a stream's end): v5 only


def failure_status(code: int, reason: str, message: str) -> Obj:
    """A Kubernetes Status of failure (what a refused log or exec request answers)."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


class NodeStreams(Protocol):
    """Serves the streams of a node's pods."""

    async def node_proxy(self, req: ApiRequest, pod: Obj, sub: str) -> ApiResponse:
        """pods/<name>/log (`sub`) of `pod`."""
        ...

    async def upgrade_handler(self, request: web.Request, req: ApiRequest, user: Any) -> web.StreamResponse:
        """exec, attach or portforward: takes over the HTTP connection of `request`."""
        ...

    async def stats_summary(self) -> Obj:
        """The node's Summary API document (`STATS_SUMMARY_PATH`)."""
        ...


@runtime_checkable
class LocalNodeHost(Protocol):
    """Where an in-process node agent offers the streams of its node's pods."""

    def serve_local(self, node_name: str, streams: NodeStreams) -> None:
        """Answer requests for pods on `node_name` with `streams` (in-process)."""
        ...

    async def get_pod(self, namespace: str, name: str, user: str) -> tuple[int, Obj]:
        """(HTTP status, pod or Status) of a pod, read as the requesting user."""
        ...
