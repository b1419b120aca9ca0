"""Logs and exec for the agent's pods: the `NodeStreams` of this node (api/streaming.py),
served to the API server in-process (its node proxy) or through `KubeletServer`.

`node_proxy(req, pod, sub)` answers GET pods/<name>/log
from the CRI log files: container (default: the only one), previous, follow,
tailLines, sinceSeconds/sinceTime, timestamps, limitBytes. A followed log streams
until the container stops running.

`upgrade_handler(request, req, user)` serves
pods/<name>/exec over WebSocket with the Kubernetes channel protocols
`v5.channel.k8s.io` / `v4.channel.k8s.io`: each binary message starts with its
channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize, 255 close-stream in v5),
in binary or text frames (channels.py);
when the command ends, channel 3 carries a Status (Success, or NonZeroExitCode
with the exit code in details.causes) and the socket closes. pods/<name>/portforward
speaks SPDY/3.1 tunnelled in a WebSocket (kubectl, portforward.py) or the plain channel
protocol (`v4.channel.k8s.io`, the Python client, wsportforward.py); pods/<name>/attach uses the
same channels as exec on the container's main process. Plain SPDY upgrades are
answered with an error Status (kubectl 1.32 tries WebSocket first).
Invariant: the process of an exec is killed when its client goes away.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from k8py.api import jsonwire
from k8py.api.request import ApiRequest, ApiResponse
from k8py.api.streaming import (
    CHANNEL_PROTOCOLS,
    CLOSE,
    ERROR,
    POD_UPGRADE_PATH,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    failure_status,
)
from k8py.api.types import Obj
from k8py.client.client import Client
from k8py.client.errors import ApiError
from k8py.clock import Clock, parse_rfc3339
from k8py.kubelet import channels, wsportforward
from k8py.kubelet.portforward import PortForwardSession
from k8py.runtime.attach import AttachSession
from k8py.runtime.exec_session import ExecSession
from k8py.runtime.logs import read_log
from k8py.runtime.protocol import ContainerRuntime, ContainerState, ContainerStatus

log = logging.getLogger(__name__)


def _bad(message: str, code: int = 400, reason: str = "BadRequest") -> ApiResponse:
    return ApiResponse(code, failure_status(code, reason, message))


# (namespace, name, user) -> (HTTP status, pod or Status)
PodGetter = Callable[[str, str, str], Awaitable[tuple[int, Obj]]]


def api_pod_getter(api: Any) -> PodGetter:
    """Reads pods through an in-process ApiServer, as the requesting user."""
    async def get(ns: str, name: str, user: str) -> tuple[int, Obj]:
        resp = await api.handle(ApiRequest("GET", f"/api/v1/namespaces/{ns}/pods/{name}", user=user))
        return resp.status, resp.body
    return get


def client_pod_getter(client: Client) -> PodGetter:
    """Reads pods with the agent's own client (the API server checked the user already)."""
    async def get(ns: str, name: str, user: str) -> tuple[int, Obj]:
        try:
            return 200, await client.get("pods", name, ns)
        except ApiError as e:
            return e.status, e.body
    return get


class Streaming:
    """The streams of the pods of node `node_name`, whose containers run in `runtime`;
    `get_pod` reads a pod as the requesting user."""

    def __init__(self, runtime: ContainerRuntime, node_name: str, clock: Clock, get_pod: PodGetter) -> None:
        self.runtime = runtime
        self.node_name = node_name
        self.clock = clock
        self.get_pod = get_pod
        self.follow_poll = 0.2

    async def stats_summary(self) -> Obj:
        """The node's Summary API document (kubelet/stats.py)."""
        from k8py.kubelet.stats import summary
        return await summary(self.runtime, self.node_name)

    # ------------------------------------------------------------- containers of a pod
    async def _containers(self, pod: Obj, name: str) -> list[ContainerStatus]:
        uid = str(pod["metadata"].get("uid"))
        rt = self.runtime
        out: list[ContainerStatus] = []
        for sb in await rt.list_pod_sandboxes():
            if sb.uid == uid:
                out += [c for c in await rt.list_containers(sb.id) if c.name == name]
        return sorted(out, key=lambda c: (c.attempt, c.created_at))

    def _container_name(self, pod: Obj, asked: str | None) -> tuple[str | None, str]:
        spec = pod.get("spec") or {}
        names = [c["name"] for c in spec.get("containers") or []]
        inits = [c["name"] for c in spec.get("initContainers") or []]
        pname = pod["metadata"]["name"]
        if asked:
            if asked not in names + inits:
                return None, f"container {asked} is not valid for pod {pname}"
            return asked, ""
        if len(names) == 1:
            return names[0], ""
        msg = f"a container name must be specified for pod {pname}, choose one of: [{' '.join(names)}]"
        if inits:
            msg += f" or one of the init containers: [{' '.join(inits)}]"
        return None, msg

    # ------------------------------------------------------------- logs
    async def node_proxy(self, req: ApiRequest, pod: Obj, sub: str) -> ApiResponse:
        if (pod.get("spec") or {}).get("nodeName") != self.node_name:
            return _bad(f"pod {pod['metadata']['name']} runs on node {pod['spec'].get('nodeName')}, which this "
                        "server cannot reach (only the embedded agent's node serves logs and exec)")
        if sub != "log":
            return _bad("Upgrade request required", 400)
        q = req.query
        name, err = self._container_name(pod, q.get("container"))
        if name is None:
            return _bad(err)
        cs = await self._containers(pod, name)
        pname = pod["metadata"]["name"]
        if q.get("previous") in ("true", "1"):
            if len(cs) < 2:
                return _bad(f'previous terminated container "{name}" in pod "{pname}" not found')
            target = cs[-2]
        else:
            if not cs:
                reason = "ContainerCreating"
                for st in ((pod.get("status") or {}).get("containerStatuses") or []) + \
                        ((pod.get("status") or {}).get("initContainerStatuses") or []):
                    if st.get("name") == name and (st.get("state") or {}).get("waiting"):
                        reason = st["state"]["waiting"].get("reason", reason)
                return _bad(f'container "{name}" in pod "{pname}" is waiting to start: {reason}')
            target = cs[-1]
        timestamps = q.get("timestamps") in ("true", "1")
        tail = int(q["tailLines"]) if q.get("tailLines") else None
        limit = int(q["limitBytes"]) if q.get("limitBytes") else None
        since: float | None = None
        if q.get("sinceSeconds"):
            since = self.clock.now() - int(q["sinceSeconds"])
        elif q.get("sinceTime"):
            since = parse_rfc3339(q["sinceTime"])
        path = target.log_path or self.runtime.log_path(target.id)
        follow = q.get("follow") in ("true", "1") and target is cs[-1] and target.state == ContainerState.RUNNING
        cid = target.id

        async def running() -> bool:
            try:
                return (await self.runtime.container_status(cid)).state == ContainerState.RUNNING
            except Exception:  # noqa: BLE001 - removed: stop following
                return False

        it = read_log(path, follow=follow, tail=tail, since=since, timestamps=timestamps, limit_bytes=limit,
                      still_running=running, poll=self.follow_poll)
        if not follow:
            return ApiResponse(200, b"".join([chunk async for chunk in it]), content_type="text/plain")
        return ApiResponse(200, None, content_type="text/plain", stream=it)

    # ------------------------------------------------------------- exec
    async def upgrade_handler(self, request: web.Request, req: ApiRequest, user: Any) -> web.StreamResponse:
        m = POD_UPGRADE_PATH.match(request.path)
        if not m:
            return _json(400, failure_status(400, "BadRequest", f"no upgradable resource at {request.path}"))
        ns, name, sub = m.groups()
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _json(400, failure_status(400, "BadRequest", "k8py serves exec over WebSocket only (no SPDY)"))
        code, pod = await self.get_pod(ns, name, req.user)
        if code != 200:
            return _json(code, pod)
        if (pod.get("spec") or {}).get("nodeName") != self.node_name:
            return _json(400, failure_status(400, "BadRequest", "the pod's node is not reachable from this server"))
        if sub == "portforward":
            return await self._port_forward(request, pod)
        cname, err = self._container_name(pod, request.query.get("container"))
        if cname is None:
            return _json(400, failure_status(400, "BadRequest", err))
        cs = await self._containers(pod, cname)
        if not cs or cs[-1].state != ContainerState.RUNNING:
            return _json(400, failure_status(400, "BadRequest",
                                      f"unable to upgrade connection: container not found (\"{cname}\")"))
        command = request.query.getall("command", [])
        if sub == "exec" and not command:
            return _json(400, failure_status(400, "BadRequest", "you must specify at least 1 command"))
        tty = request.query.get("tty") in ("true", "1")
        want_stdin = request.query.get("stdin") in ("true", "1")
        ws = web.WebSocketResponse(protocols=CHANNEL_PROTOCOLS, max_msg_size=0, autoping=True)
        await ws.prepare(request)
        v5 = ws.ws_protocol == "v5.channel.k8s.io"
        proc: ExecSession | AttachSession
        try:
            if sub == "attach":
                proc = await self.runtime.attach(cs[-1].id)
                want_stdin = want_stdin and proc.has_stdin
                command = [cname]
            else:
                proc = await self.runtime.exec(cs[-1].id, command, tty=tty, stdin=want_stdin)
        except Exception as e:  # noqa: BLE001
            await ws.send_bytes(channels.frame(ERROR, jsonwire.marshal(_internal_error(f"{e}"))))
            await ws.close()
            return ws
        await self._pump(ws, proc, command, want_stdin, v5)
        return ws

    async def _port_forward(self, request: web.Request, pod: Obj) -> web.StreamResponse:
        """kubectl's SPDY/3.1 tunnelled in a WebSocket, else the plain channel protocol."""
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        tunnels = [p for p in offered if p.startswith("SPDY/3.1+")]
        ports: list[int] = []
        if not tunnels:
            if offered and not set(offered) & set(wsportforward.PROTOCOLS):
                return _json(400, failure_status(400, "BadRequest", "port-forward speaks SPDY/3.1 tunnelled over "
                                                 f"WebSocket or {', '.join(wsportforward.PROTOCOLS)}"))
            parsed = channels.parse_ports(request.query.getall("ports", []) or request.query.getall("port", []))
            if isinstance(parsed, str):
                return _json(400, failure_status(400, "BadRequest", parsed))
            ports = parsed
        ip = (pod.get("status") or {}).get("podIP") or ""
        if not ip:
            return _json(400, failure_status(400, "BadRequest", f"pod {pod['metadata']['name']} has no IP yet"))
        if (pod.get("spec") or {}).get("hostNetwork"):
            ip = "127.0.0.1"
        name, uid = pod["metadata"]["name"], str(pod["metadata"].get("uid"))
        ws = web.WebSocketResponse(protocols=tunnels[:1] or wsportforward.PROTOCOLS, max_msg_size=0, autoping=True)
        await ws.prepare(request)
        if tunnels:
            await PortForwardSession(ws, ip, name, uid).run()
        else:
            await wsportforward.ChannelPortForward(ws, ip, ports, name, uid).run()
        return ws

    async def _pump(self, ws: web.WebSocketResponse, proc: ExecSession | AttachSession, command: list[str],
                    want_stdin: bool, v5: bool) -> None:
        async def out(stream: asyncio.StreamReader | None, ch: int) -> None:
            if stream is None:
                return
            while True:
                data = await stream.read(32 * 1024)
                if not data:
                    return
                await ws.send_bytes(bytes([ch]) + data)

        async def inp() -> None:
            async for msg in ws:
                got = channels.decode(msg)  # binary, or text (the Python client's str)
                if got is None:
                    continue
                ch, data = got
                try:
                    if ch == STDIN and want_stdin:
                        if data:
                            await proc.write(data)
                    elif ch == CLOSE and v5 and data[:1] == bytes([STDIN]) and want_stdin:
                        await proc.close_stdin()
                    elif ch == RESIZE:
                        size = json.loads(data or b"{}")
                        proc.resize(int(size.get("Width", 80)), int(size.get("Height", 24)))
                except (ConnectionError, BrokenPipeError, OSError, ValueError, RuntimeError):
                    pass
            if proc.returncode is None:  # the client went away
                proc.kill()

        reader: asyncio.Future[Any] = asyncio.ensure_future(inp())
        outs: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(out(proc.stdout, STDOUT), out(proc.stderr, STDERR)))
        try:
            await asyncio.wait({reader, outs}, return_when=asyncio.FIRST_COMPLETED)
            if not outs.done():  # the client went away first
                proc.kill()
                return
            code = await proc.wait()
            if code == 0 or (code < 0 and isinstance(proc, AttachSession)):
                st: Obj = {"metadata": {}, "status": "Success"}  # an attach whose end has no exit code
            elif code < 0:
                st = _internal_error(f"error executing command [{' '.join(command)}]: the exit code is unknown")
            else:
                st = {"metadata": {}, "status": "Failure",
                      "message": f"command terminated with non-zero exit code: error executing command "
                                 f"[{' '.join(command)}], exit code {code}",
                      "reason": "NonZeroExitCode",
                      "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
            if not ws.closed:
                await ws.send_bytes(channels.frame(ERROR, jsonwire.marshal(st)))
                await ws.close()
        except (ConnectionResetError, asyncio.CancelledError):
            proc.kill()
            raise
        finally:
            reader.cancel()
            outs.cancel()


def _internal_error(why: str) -> Obj:
    """The kubelet's channel-3 Status of an exec that failed to run (apierrors.NewInternalError)."""
    msg = f"error executing command in container: {why}"
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {msg}",
            "reason": "InternalError", "details": {"causes": [{"message": msg}]}, "code": 500}


def _json(code: int, body: Any) -> web.Response:
    return web.Response(status=code, body=jsonwire.encode(body), content_type="application/json")
