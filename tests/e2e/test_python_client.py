# mypy: disable-error-code="union-attr,index,arg-type"
"""The official `kubernetes` Python client, used as a user would: typed CRUD, patch, selectors,
and a watch that survives 410 Gone by relisting."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from e2e_harness import K8pyServer, wait_for

pytestmark = pytest.mark.e2e

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from kubernetes.stream import portforward, stream  # noqa: E402


@pytest.fixture(scope="module")
def small_history_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8pyServer]:
    # A 2-event watch cache: old resourceVersions fall through to the (compacted) store.
    s = K8pyServer(tmp_path_factory.mktemp("k8py-410") / "data", env={"K8PY_WATCH_HISTORY": "2"}).start()
    yield s
    s.stop()


def api_client(s: K8pyServer) -> Any:
    return config.new_client_from_config(config_file=str(s.kubeconfig))


def test_typed_crud_patch_and_selectors(cluster: K8pyServer) -> None:
    with api_client(cluster) as ac:
        core = client.CoreV1Api(ac)
        apps = client.AppsV1Api(ac)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="pyclient")))
        cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c1", labels={"team": "a"}), data={"k": "v"})
        created = core.create_namespaced_config_map("pyclient", cm)
        assert created.metadata.uid and created.metadata.resource_version
        core.create_namespaced_config_map("pyclient", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="c2", labels={"team": "b"})))
        got = core.read_namespaced_config_map("c1", "pyclient")
        got.data["k"] = "v2"
        replaced = core.replace_namespaced_config_map("c1", "pyclient", got)
        assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
        patched = core.patch_namespaced_config_map("c1", "pyclient", {"metadata": {"labels": {"extra": "yes"}}})
        assert patched.metadata.labels == {"team": "a", "extra": "yes"}
        names = [i.metadata.name for i in core.list_namespaced_config_map("pyclient", label_selector="team=b").items]
        assert names == ["c2"]
        names = [i.metadata.name for i in core.list_namespaced_config_map(
            "pyclient", field_selector="metadata.name=c1").items]
        assert names == ["c1"]
        dep = client.V1Deployment(
            metadata=client.V1ObjectMeta(name="d"),
            spec=client.V1DeploymentSpec(
                replicas=2, selector=client.V1LabelSelector(match_labels={"app": "d"}),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels={"app": "d"}),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]))))
        d = apps.create_namespaced_deployment("pyclient", dep)
        assert d.spec.template.spec.containers[0].image_pull_policy == "Always"  # defaulted
        scale = apps.patch_namespaced_deployment_scale("d", "pyclient", {"spec": {"replicas": 3}})
        assert scale.spec.replicas == 3
        core.delete_namespaced_config_map("c2", "pyclient")
        with pytest.raises(ApiException) as e:
            core.read_namespaced_config_map("c2", "pyclient")
        assert e.value.status == 404


def test_watch_survives_410_by_relisting(small_history_cluster: K8pyServer) -> None:
    s = small_history_cluster
    with api_client(s) as ac:
        core = client.CoreV1Api(ac)
        old_rv = core.list_namespaced_config_map("default").metadata.resource_version
        for i in range(5):
            core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"w{i}")))
        r = ac.call_api("POST", ac.configuration.host + "/debug/k8py/compact",
                        header_params={"Content-Type": "application/json", "Accept": "application/json"})
        assert r.status == 200
        seen: list[str] = []
        gone = 0
        rv = old_rv
        created_late = False
        for _attempt in range(4):
            w = watch.Watch()
            try:
                for ev in w.stream(core.list_namespaced_config_map, "default", resource_version=rv,
                                   timeout_seconds=20):
                    seen.append(ev["object"].metadata.name)
                    if ev["object"].metadata.name == "late":
                        w.stop()
                        break
                if "late" in seen:
                    break
            except ApiException as e:
                assert e.status == 410, e
                gone += 1
                rv = core.list_namespaced_config_map("default").metadata.resource_version  # fresh list
                if not created_late:
                    # Created after the fresh list: the next watch (from that list's rv) must deliver it.
                    core.create_namespaced_config_map(
                        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late")))
                    created_late = True
        assert gone >= 1 and "late" in seen


# ----------------------------------------------------------------- wire protocols (a real node agent)
# exec, attach and port-forward over WebSocket as the Python client speaks them, Status bodies
# byte for byte, and a deleted pod's Ready=False while it drains.

def _agent_pod(c: Any, name: str, container: dict, **spec: Any) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"nodeName": c.node_name, "terminationGracePeriodSeconds": 2, "containers": [container],
                     **spec}}
    c.kubectl("apply", "-f", "-", input=json.dumps(body))
    wait_for(lambda: any(x["type"] == "Ready" and x["status"] == "True"
                         for x in (c.kubectl_json("get", "pod", name).get("status") or {}).get("conditions") or []),
             90, f"pod {name} ready")


@pytest.fixture(scope="module")
def shell_pod(agent_cluster: Any) -> Any:
    _agent_pod(agent_cluster, "sh-target", {"name": "main", "image": "busybox", "command": ["sleep", "3600"]})
    return client.CoreV1Api(api_client(agent_cluster))


@pytest.mark.root
def test_interactive_exec_answers_line_by_line(shell_pod: Any) -> None:
    ws = stream(shell_pod.connect_get_namespaced_pod_exec, "sh-target", "default", command=["sh"],
                stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)
    try:
        ws.write_stdin("echo hello\n")  # a text frame, as the client sends a str
        assert ws.readline_stdout(timeout=30) == "hello"
        ws.write_stdin(b"echo $((6 * 7)) >&2\n")  # a binary frame
        assert ws.readline_stderr(timeout=30) == "42"
        ws.write_stdin("exit 3\n")
        ws.run_forever(timeout=30)
        assert not ws.is_open()
        # channel 3: the Status as the kubelet marshals it (CRI's message), then the client's exit code
        assert ws.peek_channel(3) == (
            '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error '
            'executing command [sh], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":'
            '"ExitCode","message":"3"}]}}')
        assert ws.returncode == 3
    finally:
        ws.close()


@pytest.mark.root
def test_exec_over_the_v4_protocol(shell_pod: Any) -> None:
    from kubernetes.stream import ws_client

    conf = shell_pod.api_client.configuration
    url = ws_client.get_websocket_url(conf.host + "/api/v1/namespaces/default/pods/sh-target/exec", [
        ("command", ["sh", "-c", "read x; echo got $x; read y; exit 2"]), ("stdin", "true"), ("stdout", "true"),
        ("stderr", "true")])
    ws = ws_client.WSClient(conf, url, {"sec-websocket-protocol": "v4.channel.k8s.io"}, capture_all=True)
    try:
        assert ws.subprotocol == "v4.channel.k8s.io"
        ws.write_stdin("v4\n")
        assert ws.readline_stdout(timeout=30) == "got v4"
        ws.write_stdin("bye\n")
        ws.run_forever(timeout=30)
        assert not ws.is_open() and ws.returncode == 2
    finally:
        ws.close()


@pytest.mark.root
def test_exec_with_a_tty_follows_resizes(shell_pod: Any) -> None:
    ws = stream(shell_pod.connect_get_namespaced_pod_exec, "sh-target", "default", command=["sh"],
                stdin=True, stdout=True, stderr=False, tty=True, _preload_content=False)
    out: list[str] = []

    def seen(text: str) -> bool:
        ws.update(timeout=0.5)
        out.append(ws.read_stdout() if ws.peek_stdout() else "")
        return text in "".join(out)

    def resized() -> bool:  # a resize is applied beside stdin, not in order with it (as in Kubernetes)
        ws.write_channel(4, json.dumps({"Width": 101, "Height": 33}))  # resize, a text frame
        ws.write_stdin("stty size\n")
        return seen("33 101")

    try:
        wait_for(lambda: seen("# "), 30, "the shell's prompt")
        wait_for(resized, 30, "stty to report the new size")
        ws.write_stdin("exit\n")
        ws.run_forever(timeout=30)
        assert ws.peek_channel(3) == '{"metadata":{},"status":"Success"}' and ws.returncode == 0
    finally:
        ws.close()


@pytest.mark.root
def test_attach_with_stdin_line_by_line(agent_cluster: Any) -> None:
    c = agent_cluster
    _agent_pod(c, "att-target", {"name": "main", "image": "busybox", "stdin": True,
                                 "command": ["sh", "-c", "while read line; do echo got $line; done"]})
    core = client.CoreV1Api(api_client(c))
    ws = stream(core.connect_get_namespaced_pod_attach, "att-target", "default",
                stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)
    try:
        ws.write_stdin("one\n")
        assert ws.readline_stdout(timeout=30) == "got one"
        ws.write_stdin("two\n")
        assert ws.readline_stdout(timeout=30) == "got two"
    finally:
        ws.close()


@pytest.mark.root
def test_v5_close_of_stdin_ends_cat(shell_pod: Any) -> None:
    ws = stream(shell_pod.connect_get_namespaced_pod_exec, "sh-target", "default", command=["cat"],
                stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)
    try:
        assert ws.subprotocol == "v5.channel.k8s.io"
        ws.write_stdin("first line\n")
        assert ws.readline_stdout(timeout=30) == "first line"
        ws.write_stdin("no newline")
        ws.close_channel(0)  # v5 CLOSE: cat sees the end of its stdin and exits 0
        ws.run_forever(timeout=30)
        assert not ws.is_open()
        assert ws.read_stdout() == "no newline"
        assert ws.returncode == 0
    finally:
        ws.close()


@pytest.mark.root
def test_port_forward_over_websocket_to_nginx(agent_cluster: Any) -> None:
    c = agent_cluster
    _agent_pod(c, "pf-ws", {"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}],
                            "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1}})
    core = client.CoreV1Api(api_client(c))
    for i in range(2):  # one TCP connection per port and WebSocket: a second WebSocket, a second connection
        pf = portforward(core.connect_get_namespaced_pod_portforward, "pf-ws", "default", ports="80")
        sock = pf.socket(80)
        sock.settimeout(30)
        sock.sendall(f"GET /?ws={i} HTTP/1.0\r\nHost: pf\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        sock.close()
        assert data.startswith(b"HTTP/1.1 200 OK") and b"Welcome to nginx!" in data, data[:300]
        assert pf.error(80) is None
    # a port nothing listens on: the error channel says so, as the kubelet does
    pf = portforward(core.connect_get_namespaced_pod_portforward, "pf-ws", "default", ports="81")
    sock = pf.socket(81)
    sock.settimeout(30)
    assert sock.recv(1024) == b""
    wait_for(lambda: pf.error(81) is not None, 30, "the error channel")
    assert pf.error(81).startswith("error forwarding port 81 to pod ")


def test_status_bodies_byte_for_byte(cluster: K8pyServer) -> None:
    with api_client(cluster) as ac:
        core = client.CoreV1Api(ac)
        apps = client.AppsV1Api(ac)
        cm = core.create_namespaced_config_map("default", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="bytes"), data={"a": "1"}))
        core.patch_namespaced_config_map("bytes", "default", {"data": {"a": "2"}})

        def body(call: Any, *args: Any) -> str:
            with pytest.raises(ApiException) as e:
                call(*args)
            b = e.value.body
            return b.decode() if isinstance(b, bytes) else b

        assert body(core.replace_namespaced_config_map, "bytes", "default", cm) == (
            '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Operation cannot be '
            'fulfilled on configmaps \\"bytes\\": the object has been modified; please apply your changes to the '
            'latest version and try again","reason":"Conflict","details":{"name":"bytes","kind":"configmaps"},'
            '"code":409}\n')
        assert body(core.create_namespaced_config_map, "default", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="bytes"))) == (
            '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \\"bytes\\" '
            'already exists","reason":"AlreadyExists","details":{"name":"bytes","kind":"configmaps"},"code":409}\n')
        assert body(apps.read_namespaced_deployment, "none", "default") == (
            '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps '
            '\\"none\\" not found","reason":"NotFound","details":{"name":"none","group":"apps","kind":"deployments"},'
            '"code":404}\n')
        assert body(core.delete_namespace, "kube-system") == (
            '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"namespaces '
            '\\"kube-system\\" is forbidden: this namespace may not be deleted","reason":"Forbidden",'
            '"details":{"name":"kube-system","kind":"namespaces"},"code":403}\n')
        assert body(core.create_namespaced_config_map, "default", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="Bad<Name>"))) == (
            '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"ConfigMap '
            '\\"Bad\\u003cName\\u003e\\" is invalid: metadata.name: Invalid value: \\"Bad\\u003cName\\u003e\\": a '
            'lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\', and '
            'must start and end with an alphanumeric character (e.g. \'example.com\', regex used for validation '
            'is \'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\')","reason":"Invalid",'
            '"details":{"name":"Bad\\u003cName\\u003e","kind":"ConfigMap","causes":[{"reason":"FieldValueInvalid",'
            '"message":"Invalid value: \\"Bad\\u003cName\\u003e\\": a lowercase RFC 1123 subdomain must consist of '
            'lower case alphanumeric characters, \'-\' or \'.\', and must start and end with an alphanumeric '
            'character (e.g. \'example.com\', regex used for validation is '
            '\'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\')","field":"metadata.name"}]},'
            '"code":422}\n')


@pytest.mark.root
def test_a_deleted_pod_turns_unready_and_drains_from_its_endpoints(agent_cluster: Any) -> None:
    c = agent_cluster
    c.kubectl("create", "service", "clusterip", "drain", "--tcp=80:80")
    _agent_pod(c, "drain", {
        "name": "main", "image": "busybox",
        "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"],
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}}}, terminationGracePeriodSeconds=20)

    def endpoint() -> dict:
        slices = c.kubectl_json("get", "endpointslices", "-l", "kubernetes.io/service-name=drain")["items"]
        eps = [e for s in slices for e in s.get("endpoints") or []]
        return eps[0] if len(eps) == 1 else {}

    wait_for(lambda: endpoint().get("conditions", {}).get("ready") is True, 30, "the pod's endpoint ready")
    waiter = subprocess.Popen([c.kubectl_bin, "wait", "--for=condition=Ready=false", "pod/drain", "--timeout=90s"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=c.env())
    try:
        c.kubectl("delete", "pod", "drain", "--wait=false")
        # draining (the preStop hook runs, the container still serves): an endpoint that is not ready,
        # terminating, and serving (the pod's readiness), as in Kubernetes' termination tutorial
        conds = wait_for(lambda: (e := endpoint()) and e["conditions"].get("terminating") and e["conditions"], 30,
                         "a terminating endpoint")
        assert conds["ready"] is False and conds["serving"] is True
        # once its container has stopped, the pod reports Ready=False before it goes
        out, err = waiter.communicate(timeout=90)
        assert waiter.returncode == 0, (out, err)
        assert "pod/drain condition met" in out
        wait_for(lambda: not c.kubectl("get", "pod", "drain", "--ignore-not-found", "-o", "name").stdout, 30,
                 "the pod gone")
        wait_for(lambda: not endpoint(), 30, "its endpoint gone")
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()


@pytest.mark.root
def test_a_failing_readiness_probe_turns_a_draining_pod_unready(agent_cluster: Any) -> None:
    c = agent_cluster
    _agent_pod(c, "drain-probe", {
        "name": "main", "image": "busybox",
        "command": ["sh", "-c", "touch /tmp/ready; trap 'exit 0' TERM; while true; do sleep 0.2; done"],
        "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1, "failureThreshold": 1},
        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "rm /tmp/ready; sleep 8"]}}}},
        terminationGracePeriodSeconds=30)
    c.kubectl("delete", "pod", "drain-probe", "--wait=false")
    # readiness is still probed while the pod drains: it fails, so the pod is Ready=False while its
    # container still runs (the preStop hook sleeps)
    r = c.kubectl("wait", "--for=condition=Ready=false", "pod/drain-probe", "--timeout=60s", timeout=90)
    assert "condition met" in r.stdout
    p = c.kubectl_json("get", "pod", "drain-probe")
    assert p["metadata"].get("deletionTimestamp") and "running" in p["status"]["containerStatuses"][0]["state"]
