"""Real containers through the embedded node agent, driven by the real kubectl.

One cluster per module (`agent_cluster`); pods are bound straight to the agent's node
(spec.nodeName) so these tests do not depend on the scheduler. Teardown asserts
that nothing (runc containers, netns, cgroups, mounts, pod addresses) is left.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e_harness import wait_for

pytestmark = pytest.mark.root

# small node limits for this module's cluster, so that rotation and the pids limit show quickly
LOG_MAX_SIZE, LOG_MAX_FILES, POD_MAX_PIDS = 256 << 10, 3, 256
AGENT_ENV = {"K8PY_AGENT_CONTAINER_LOG_MAX_SIZE": "256Ki", "K8PY_AGENT_CONTAINER_LOG_MAX_FILES": str(LOG_MAX_FILES),
             "K8PY_AGENT_POD_MAX_PIDS": str(POD_MAX_PIDS)}


def pod(c: Any, name: str, containers: list[dict], **spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"test": name}},
            "spec": {"nodeName": c.node_name, "terminationGracePeriodSeconds": 2, "containers": containers, **spec}}


def apply(c: Any, *objs: dict) -> None:
    c.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs))


def get_pod(c: Any, name: str) -> dict:
    return c.kubectl_json("get", "pod", name)


def cstatus(p: dict, name: str | None = None) -> dict:
    for s in (p.get("status") or {}).get("containerStatuses") or []:
        if name is None or s["name"] == name:
            return s
    return {}


def wait_phase(c: Any, name: str, phase: str, timeout: float = 90) -> dict:
    return wait_for(lambda: (p := get_pod(c, name))["status"].get("phase") == phase and p, timeout,
                    f"pod {name} {phase}")


def wait_running_ready(c: Any, name: str, timeout: float = 90) -> dict:
    def ok() -> Any:
        p = get_pod(c, name)
        conds = {x["type"]: x["status"] for x in p["status"].get("conditions") or []}
        return p["status"].get("phase") == "Running" and conds.get("Ready") == "True" and p
    return wait_for(ok, timeout, f"pod {name} running and ready")


def http_get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - a pod IP on our bridge
        return r.read().decode()


def test_node_registered_with_real_capacity(agent_cluster: Any) -> None:
    node = wait_for(lambda: agent_cluster.kubectl("get", "node", agent_cluster.node_name, "-o", "json",
                                                  check=False).stdout, 30, "node registered")
    node = json.loads(node)
    cap = node["status"]["capacity"]
    assert int(cap["cpu"]) >= 1 and cap["memory"].endswith("Ki") and cap["pods"] == "110"
    conds = {x["type"]: x["status"] for x in node["status"]["conditions"]}
    assert conds == {"Ready": "True", "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False"}
    assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.37")
    lease = agent_cluster.kubectl_json("get", "lease", "-n", "kube-node-lease", agent_cluster.node_name)
    assert lease["spec"]["holderIdentity"] == agent_cluster.node_name


def test_pod_runs_to_completion_and_logs(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "hello", [{"name": "hello", "image": "busybox",
                               "command": ["sh", "-c", "echo err >&2; echo one; echo two"]}],
                 restartPolicy="Never"))
    p = wait_phase(c, "hello", "Succeeded")
    st = cstatus(p)
    assert st["state"]["terminated"]["exitCode"] == 0 and st["state"]["terminated"]["reason"] == "Completed"
    assert p["status"]["qosClass"] == "BestEffort"
    out = c.kubectl("logs", "hello").stdout
    assert sorted(out.splitlines()) == ["err", "one", "two"] and out.index("one") < out.index("two")
    ts = c.kubectl("logs", "hello", "--timestamps").stdout.splitlines()
    assert len(ts) == 3 and all(t[:4].isdigit() and t[4] == "-" for t in ts)
    assert sorted(t.split(" ", 1)[1] for t in ts) == ["err", "one", "two"]
    assert c.kubectl("logs", "hello", "--tail=2").stdout.splitlines() == out.splitlines()[-2:]
    events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=hello", "-o", "json")
    reasons = {e["reason"] for e in json.loads(events.stdout)["items"]}
    assert {"Pulled", "Created", "Started"} <= reasons


def test_exec_returns_exit_code_and_output(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "sleeper", [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]))
    wait_running_ready(c, "sleeper")
    r = c.kubectl("exec", "sleeper", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert r.returncode == 3, r
    assert r.stdout == "out\n" and "err" in r.stderr
    r = c.kubectl("exec", "-i", "sleeper", "--", "cat", input="piped stdin\n")
    assert r.stdout == "piped stdin\n"
    assert c.kubectl("exec", "sleeper", "-c", "main", "--", "hostname").stdout.strip() == "sleeper"


def test_nginx_pods_answer_http_on_pod_ips_and_log_requests(agent_cluster: Any) -> None:
    c = agent_cluster
    names = ["web-a", "web-b"]
    apply(c, *(pod(c, n, [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}],
                           "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1}}])
               for n in names))
    ips = set()
    for n in names:
        p = wait_running_ready(c, n)
        ip = p["status"]["podIP"]
        assert p["status"]["podIPs"] == [{"ip": ip}] and p["status"]["hostIP"]
        ips.add(ip)
        assert "Welcome to nginx!" in http_get(f"http://{ip}/?from={n}")
        wait_for(lambda n=n: f"GET /?from={n} " in c.kubectl("logs", n).stdout, 10, f"{n} logs the request")
    assert len(ips) == 2


def test_two_containers_share_localhost_and_an_empty_dir(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "duo", [
        {"name": "web", "image": "nginx:1.14.2",
         "volumeMounts": [{"name": "html", "mountPath": "/usr/share/nginx/html"}]},
        {"name": "writer", "image": "busybox",
         "command": ["sh", "-c", "echo written-by-writer > /html/index.html; sleep 3600"],
         "volumeMounts": [{"name": "html", "mountPath": "/html"}]},
    ], volumes=[{"name": "html", "emptyDir": {}}]))
    wait_running_ready(c, "duo")
    out = wait_for(lambda: c.kubectl("exec", "duo", "-c", "writer", "--", "wget", "-qO-", "http://localhost/",
                                     check=False).stdout, 20, "nginx over localhost")
    assert out == "written-by-writer\n"


def test_volume_item_paths_out_of_the_volume_are_refused_with_422(agent_cluster: Any) -> None:
    """Issue 10 (a safe node): a downwardAPI or projected item path with `..` is refused as
    Kubernetes' validateLocalNonReservedPath refuses it, naming the field; no pod is created."""
    c = agent_cluster
    item = {"path": "../../etc/x", "fieldRef": {"fieldPath": "metadata.name"}}
    for name, vol, field in [
        ("badpath-downward", {"downwardAPI": {"items": [item]}}, "spec.volumes[0].downwardAPI.items[0].path"),
        ("badpath-projected", {"projected": {"sources": [{"downwardAPI": {"items": [item]}}]}},
         "spec.volumes[0].projected.sources[0].downwardAPI.items[0].path"),
    ]:
        r = c.kubectl("apply", "-f", "-", check=False, input=yaml.safe_dump(pod(c, name, [
            {"name": "main", "image": "busybox", "command": ["sleep", "3600"],
             "volumeMounts": [{"name": "v", "mountPath": "/v"}]}], volumes=[{"name": "v", **vol}])))
        assert r.returncode != 0
        assert f'The Pod "{name}" is invalid: {field}: Invalid value: "../../etc/x": must not contain \'..\'' \
            in r.stderr, r.stderr
        assert c.kubectl("get", "pod", name, check=False).returncode != 0


def test_a_subpath_symlink_planted_to_the_host_root_is_refused(agent_cluster: Any) -> None:
    """Issue 10 (CVE-2017-1002101): a first container plants `esc -> /` in an emptyDir; the next
    container mounting `subPath: esc` does not start (CreateContainerConfigError, Kubernetes'
    message) and nothing is written on the host's root."""
    import uuid
    from pathlib import Path

    c = agent_cluster
    marker = f"k8py-subpath-escape-{uuid.uuid4().hex[:8]}"
    apply(c, pod(c, "subpath-esc", [
        {"name": "victim", "image": "busybox", "command": ["sh", "-c", f"touch /host/{marker}; sleep 3600"],
         "volumeMounts": [{"name": "data", "mountPath": "/host", "subPath": "esc"}]},
    ], initContainers=[{"name": "planter", "image": "busybox", "command": ["ln", "-s", "/", "/data/esc"],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        volumes=[{"name": "data", "emptyDir": {}}]))
    # a symlink that stays inside the volume is followed, as Kubernetes does (and the subPath is pinned)
    apply(c, pod(c, "subpath-in", [
        {"name": "main", "image": "busybox", "command": ["sh", "-c", "cat /sub/f; sleep 3600"],
         "volumeMounts": [{"name": "data", "mountPath": "/sub", "subPath": "inside"}]},
    ], initContainers=[{"name": "prep", "image": "busybox", "command": [
        "sh", "-c", "mkdir /data/real && echo in-volume > /data/real/f && ln -s real /data/inside"],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        volumes=[{"name": "data", "emptyDir": {}}]))
    try:
        wait_running_ready(c, "subpath-in")
        assert wait_for(lambda: c.kubectl("logs", "subpath-in", "-c", "main", check=False).stdout, 30,
                        "main's output") == "in-volume\n"
        p = wait_for(lambda: (q := get_pod(c, "subpath-esc")) and cstatus(q, "victim").get("state", {})
                     .get("waiting", {}).get("reason") == "CreateContainerConfigError" and q, 90,
                     "the victim refused its subPath")
        assert cstatus(p, "victim")["state"]["waiting"]["message"] == \
            'failed to prepare subPath for volumeMount "data" of container "victim"'
        assert p["status"]["phase"] == "Pending" and not cstatus(p, "victim").get("ready")
        events = c.kubectl("get", "events", "--field-selector", "involvedObject.name=subpath-esc").stdout
        assert "failed to prepare subPath" in events, events
        assert not Path("/", marker).exists()
    finally:
        c.kubectl("delete", "pod", "subpath-esc", "subpath-in", "--wait=false", check=False)
        Path("/", marker).unlink(missing_ok=True)


def _container_pid(c: Any, p: dict, name: str) -> int:
    cid = cstatus(p, name)["containerID"].split("://", 1)[1]
    rec = json.loads((c.state / "containers" / cid / "container.json").read_text())
    return int(rec["pid"])


def test_kill_9_of_the_process_restarts_the_container(agent_cluster: Any) -> None:
    import os
    import signal

    c = agent_cluster
    apply(c, pod(c, "victim", [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]))
    p = wait_running_ready(c, "victim")
    os.kill(_container_pid(c, p, "main"), signal.SIGKILL)
    p = wait_for(lambda: (q := get_pod(c, "victim")) and cstatus(q).get("restartCount", 0) >= 1
                 and "running" in cstatus(q)["state"] and q, 30, "a restart")
    last = cstatus(p)["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (137, "Error")
    row = c.kubectl("get", "pod", "victim", "--no-headers").stdout.split()
    assert row[3].startswith("1"), row  # RESTARTS column


def test_logs_previous_shows_the_last_run(agent_cluster: Any) -> None:
    c = agent_cluster
    script = "n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; echo run $n; sleep 1; exit 1"
    apply(c, pod(c, "crasher", [{"name": "main", "image": "busybox", "command": ["sh", "-c", script],
                                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 volumes=[{"name": "data", "emptyDir": {}}]))
    wait_for(lambda: (q := get_pod(c, "crasher")) and cstatus(q).get("restartCount", 0) >= 2 and q, 60,
             "two restarts")
    cur = c.kubectl("logs", "crasher").stdout.strip()
    prev = c.kubectl("logs", "crasher", "--previous").stdout.strip()
    assert cur.startswith("run ") and prev.startswith("run ")
    assert int(prev.split()[1]) == int(cur.split()[1]) - 1
    wait_for(lambda: cstatus(get_pod(c, "crasher"))["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff",
             30, "CrashLoopBackOff")
    events = json.loads(c.kubectl("get", "events", "--field-selector", "involvedObject.name=crasher,reason=BackOff",
                                  "-o", "json").stdout)["items"]
    assert events and events[0]["message"].startswith("Back-off restarting failed container main in pod crasher")
    assert events[0]["source"]["component"] == "kubelet"


def test_failing_liveness_probe_restarts_the_container(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "unhealthy", [{
        "name": "main", "image": "busybox",
        "command": ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600"],
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 2}}]))
    wait_for(lambda: cstatus(get_pod(c, "unhealthy")).get("restartCount", 0) >= 1, 60, "a liveness restart")
    events = json.loads(c.kubectl("get", "events", "--field-selector", "involvedObject.name=unhealthy",
                                  "-o", "json").stdout)["items"]
    msgs = {(e["reason"], e["message"].split(":")[0]) for e in events}
    assert ("Unhealthy", "Liveness probe failed") in msgs
    assert ("Killing", "Container main failed liveness probe, will be restarted") in msgs


@pytest.mark.parametrize("limit, oom", [("128Mi", True), ("256Mi", False)])
def test_memory_hog_is_oom_killed_under_its_limit(agent_cluster: Any, limit: str, oom: bool) -> None:
    c = agent_cluster
    name = f"hog-{limit.lower()}"
    apply(c, pod(c, name, [{"name": "hog", "image": "stress", "command": ["stress"],
                            "args": ["--vm", "1", "--vm-bytes", "150M", "--vm-hang", "1"],
                            "resources": {"limits": {"memory": limit}, "requests": {"memory": "64Mi"}}}]))
    if oom:
        p = wait_for(lambda: (q := get_pod(c, name)) and cstatus(q).get("restartCount", 0) >= 2 and q, 90,
                     "OOM kills and restarts")
        last = cstatus(p)["lastState"]["terminated"]
        assert (last["reason"], last["exitCode"]) == ("OOMKilled", 137)
        wait_for(lambda: cstatus(get_pod(c, name))["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff",
                 30, "CrashLoopBackOff")
        assert get_pod(c, name)["status"]["qosClass"] == "Burstable"
    else:
        wait_for(lambda: "stress: allocated" in c.kubectl("logs", name, check=False).stdout, 60, "the hog allocated")
        p = get_pod(c, name)
        assert "running" in cstatus(p)["state"] and cstatus(p)["restartCount"] == 0


def _mysql_pod(c: Any, name: str, limit: str, volumes: list[dict] | None = None,
               mounts: list[dict] | None = None) -> dict:
    return pod(c, name, [{
        "name": "mysql", "image": "mysql:5.6", "ports": [{"containerPort": 3306}],
        "env": [{"name": "MYSQL_ROOT_PASSWORD",
                 "valueFrom": {"secretKeyRef": {"name": "mysql-pass", "key": "password"}}}],
        "resources": {"limits": {"memory": limit}},
        "readinessProbe": {"exec": {"command": ["sh", "-c", 'mariadb -uroot -p"$MYSQL_ROOT_PASSWORD" -e "SELECT 1"']},
                           "periodSeconds": 2, "timeoutSeconds": 5},
        "volumeMounts": mounts or []}], volumes=volumes or [])


def _sql(c: Any, name: str, q: str) -> str:
    return c.kubectl("exec", name, "--", "sh", "-c", f'mariadb -uroot -p"$MYSQL_ROOT_PASSWORD" -N -e "{q}"').stdout


def test_mysql_needs_256mi_and_gets_its_password_from_a_secret(agent_cluster: Any) -> None:
    c = agent_cluster
    password = "s3cr3t-pw-Zq9"
    c.kubectl("create", "secret", "generic", "mysql-pass", f"--from-literal=password={password}")
    apply(c, _mysql_pod(c, "mysql-small", "128Mi"), _mysql_pod(c, "mysql-big", "256Mi"))
    wait_for(lambda: (cstatus(get_pod(c, "mysql-small")).get("lastState") or {}).get("terminated", {})
             .get("reason") == "OOMKilled", 120, "mysql with 128Mi OOMKilled")
    wait_running_ready(c, "mysql-big", 180)
    assert _sql(c, "mysql-big", "SELECT 40+2").strip() == "42"
    assert password not in c.kubectl("get", "pod", "mysql-big", "-o", "yaml").stdout
    assert _sql(c, "mysql-big", "SELECT 1").strip() == "1"
    c.kubectl("delete", "pod", "mysql-small", "mysql-big", "--wait=false")


def test_mysql_data_survives_the_pod_on_a_local_path_claim(agent_cluster: Any) -> None:
    """The claim uses the default StorageClass (local-path, WaitForFirstConsumer): the
    scheduler picks the node, the binder provisions a hostPath PV there, the agent makes
    its directory; a second pod on the claim reads what the first one wrote."""
    import shutil

    c = agent_cluster
    c.kubectl("create", "secret", "generic", "mysql-pass", "--from-literal=password=pw", check=False)
    apply(c, {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "mysql-data"},
              "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    vols = [{"name": "data", "persistentVolumeClaim": {"claimName": "mysql-data"}}]
    mounts = [{"name": "data", "mountPath": "/var/lib/mysql"}]

    def scheduled(p: dict) -> dict:
        del p["spec"]["nodeName"]  # through the scheduler, which triggers the provisioning
        return p

    apply(c, scheduled(_mysql_pod(c, "mysql-pv", "512Mi", vols, mounts)))
    path = ""
    try:
        wait_running_ready(c, "mysql-pv", 180)
        pv = c.kubectl_json("get", "pvc", "mysql-data")["spec"]["volumeName"]
        path = c.kubectl_json("get", "pv", pv)["spec"]["hostPath"]["path"]
        _sql(c, "mysql-pv", "CREATE DATABASE k; CREATE TABLE k.t (v VARCHAR(20)); INSERT INTO k.t VALUES ('kept-row')")
        c.kubectl("delete", "pod", "mysql-pv", "--wait=true", timeout=120)
        apply(c, scheduled(_mysql_pod(c, "mysql-pv2", "512Mi", vols, mounts)))
        wait_running_ready(c, "mysql-pv2", 180)
        assert _sql(c, "mysql-pv2", "SELECT v FROM k.t").strip() == "kept-row"
    finally:
        c.kubectl("delete", "pod", "mysql-pv", "mysql-pv2", "--ignore-not-found", "--wait=true", check=False,
                  timeout=120)
        c.kubectl("delete", "pvc", "mysql-data", "--ignore-not-found", check=False)
        if path.startswith("/var/lib/k8py/storage/pvc-"):
            shutil.rmtree(path, ignore_errors=True)


def test_logs_follow_streams_until_the_container_exits(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "ticker", [{"name": "main", "image": "busybox",
                                "command": ["sh", "-c", "for i in 1 2 3 4 5; do echo tick $i; sleep 0.5; done"]}],
                 restartPolicy="Never"))
    wait_for(lambda: "running" in cstatus(get_pod(c, "ticker")).get("state", {}), 60, "ticker running")
    r = c.kubectl("logs", "-f", "ticker", timeout=60)
    assert r.stdout.splitlines() == [f"tick {i}" for i in range(1, 6)]


def test_kubectl_cp_through_exec_and_tar(agent_cluster: Any, tmp_path: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "cp-target", [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]))
    wait_running_ready(c, "cp-target")
    src = tmp_path / "hello.txt"
    src.write_text("copied by kubectl cp\n")
    c.kubectl("cp", str(src), "cp-target:/tmp/hello.txt")
    assert c.kubectl("exec", "cp-target", "--", "cat", "/tmp/hello.txt").stdout == "copied by kubectl cp\n"
    back = tmp_path / "back.txt"
    c.kubectl("cp", "cp-target:/tmp/hello.txt", str(back))
    assert back.read_text() == "copied by kubectl cp\n"


def test_configmap_volume_is_updated_in_place(agent_cluster: Any) -> None:
    c = agent_cluster
    c.kubectl("create", "configmap", "live", "--from-literal=greeting=hello")
    apply(c, pod(c, "cm-reader", [{"name": "main", "image": "busybox", "command": ["sleep", "3600"],
                                   "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]}],
                 volumes=[{"name": "cfg", "configMap": {"name": "live"}}]))
    wait_running_ready(c, "cm-reader")
    assert c.kubectl("exec", "cm-reader", "--", "cat", "/etc/cfg/greeting").stdout == "hello"
    c.kubectl("patch", "configmap", "live", "-p", '{"data":{"greeting":"updated"}}')
    wait_for(lambda: c.kubectl("exec", "cm-reader", "--", "cat", "/etc/cfg/greeting").stdout == "updated", 40,
             "the configMap update in the volume")


def test_delete_runs_pre_stop_then_sigterm(agent_cluster: Any) -> None:
    c = agent_cluster
    marker = c.agent_root / "prestop-marker"
    apply(c, pod(c, "graceful", [{
        "name": "main", "image": "busybox",
        "command": ["sh", "-c", "trap 'echo got TERM > /host/term; exit 0' TERM; while true; do sleep 0.2; done"],
        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo pre-stop > /host/prestop"]}}},
        "volumeMounts": [{"name": "host", "mountPath": "/host"}]}],
        volumes=[{"name": "host", "hostPath": {"path": str(marker), "type": "DirectoryOrCreate"}}],
        terminationGracePeriodSeconds=20))
    wait_running_ready(c, "graceful")
    c.kubectl("delete", "pod", "graceful", "--wait=true", timeout=60)
    assert (marker / "prestop").read_text() == "pre-stop\n"
    assert (marker / "term").read_text() == "got TERM\n"


def test_restarting_the_server_keeps_containers_running(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "survivor", [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]))
    before = cstatus(wait_running_ready(c, "survivor"))
    c.stop()
    c.start()
    p = wait_running_ready(c, "survivor")
    after = cstatus(p)
    assert after["containerID"] == before["containerID"] and after["restartCount"] == 0
    assert after["state"]["running"]["startedAt"] == before["state"]["running"]["startedAt"]
    assert c.kubectl("exec", "survivor", "--", "echo", "still here").stdout == "still here\n"


def test_ephemeral_storage_over_the_limit_evicts_the_pod(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "filler", [{"name": "main", "image": "busybox",
                                "command": ["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=20; sleep 3600"],
                                "resources": {"limits": {"ephemeral-storage": "10Mi"}}}]))
    p = wait_phase(c, "filler", "Failed", 60)
    assert p["status"]["reason"] == "Evicted"
    assert p["status"]["message"] == 'Container main exceeded its local ephemeral storage limit "10Mi". '


def test_dns_config_downward_env_and_host_network(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "dns-check", [{
        "name": "main", "image": "busybox", "command": ["sleep", "3600"],
        "env": [{"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "GREETING", "value": "hi from $(MY_NODE)"}]}]),
          pod(c, "hostnet", [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}], hostNetwork=True))
    p = wait_running_ready(c, "dns-check")
    resolv = c.kubectl("exec", "dns-check", "--", "cat", "/etc/resolv.conf").stdout.splitlines()
    assert resolv == [f"nameserver {c.cluster_dns}", "search default.svc.cluster.local svc.cluster.local cluster.local",
                      "options ndots:5"]
    env = dict(line.split("=", 1) for line in c.kubectl("exec", "dns-check", "--", "env").stdout.splitlines()
               if "=" in line)
    assert env["MY_POD_IP"] == p["status"]["podIP"] and env["GREETING"] == f"hi from {c.node_name}"
    hosts = c.kubectl("exec", "dns-check", "--", "cat", "/etc/hosts").stdout
    assert f"{p['status']['podIP']}\tdns-check" in hosts
    h = wait_running_ready(c, "hostnet")
    assert h["status"]["podIP"] == h["status"]["hostIP"]
    links = c.kubectl("exec", "hostnet", "--", "ip", "-o", "link").stdout
    assert c.bridge in links  # the host's network namespace


def test_exec_with_a_tty(agent_cluster: Any) -> None:
    import shutil

    c = agent_cluster
    if shutil.which("script") is None:
        pytest.skip("script(1) is needed to give kubectl a terminal")
    apply(c, pod(c, "tty-target", [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]))
    wait_running_ready(c, "tty-target")
    r = subprocess.run(["script", "-qec", "kubectl exec -it tty-target -- sh -c 'tty; exit 4'", "/dev/null"],
                       capture_output=True, text=True, env=c.env(), timeout=60, stdin=subprocess.DEVNULL)
    assert "/dev/pts/" in r.stdout, r
    assert r.returncode == 4


def test_deployment_of_nginx_serves_on_pod_ips(agent_cluster: Any) -> None:
    c = agent_cluster
    c.kubectl("create", "deployment", "web", "--image=nginx:1.14.2", "--replicas=2")
    pods = wait_for(lambda: (items := c.kubectl_json("get", "pods", "-l", "app=web")["items"]) and len(items) == 2
                    and all(p["status"].get("phase") == "Running" for p in items) and items, 120, "2 running pods")
    for p in pods:
        name, ip = p["metadata"]["name"], p["status"]["podIP"]
        wait_for(lambda ip=ip: _try_get(f"http://{ip}/?deploy=1"), 30, f"{name} serving")
        wait_for(lambda name=name: "GET /?deploy=1 " in c.kubectl("logs", name).stdout, 10, f"{name} logged it")
    c.kubectl("delete", "deployment", "web")


def _try_get(url: str) -> bool:
    try:
        return "nginx" in http_get(url, 2)
    except OSError:
        return False


def test_port_forward_reaches_nginx(agent_cluster: Any) -> None:
    import re
    import socket

    c = agent_cluster
    apply(c, pod(c, "pf-web", [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}],
                                "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1}}]))
    wait_running_ready(c, "pf-web")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([c.kubectl_bin, "port-forward", "pod/pf-web", f"{port}:80", "--address", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=c.env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert re.match(rf"Forwarding from 127.0.0.1:{port} -> 80", line), (line, proc.stderr and proc.stderr.read())
        for i in range(3):  # several connections over the one tunnel
            try:
                body = http_get(f"http://127.0.0.1:{port}/?pf={i}")
            except OSError as e:
                proc.terminate()
                raise AssertionError(f"{e}: kubectl said {proc.communicate(timeout=10)}\n{c.log()[-3000:]}") from e
            assert "Welcome to nginx!" in body
        wait_for(lambda: "GET /?pf=2 " in c.kubectl("logs", "pf-web").stdout, 10, "the forwarded request logged")
    finally:
        proc.terminate()
        proc.wait(10)


def test_security_context_and_memory_empty_dir(agent_cluster: Any) -> None:
    c = agent_cluster
    script = ("id -u; id -g; touch /rootfs-file 2>/dev/null && echo rw || echo ro; "
              "df -k /cache | tail -1 | awk '{print $2}'; mount | grep ' /cache ' | cut -d' ' -f5; sleep 3600")
    apply(c, pod(c, "secure", [{
        "name": "main", "image": "busybox", "command": ["sh", "-c", script],
        "securityContext": {"runAsUser": 1000, "runAsGroup": 2000, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]}],
        volumes=[{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}]))
    wait_running_ready(c, "secure")
    out = wait_for(lambda: (o := c.kubectl("logs", "secure").stdout.split()) and len(o) >= 5 and o, 20, "output")
    assert out[:3] == ["1000", "2000", "ro"]
    assert int(out[3]) == 16384 and out[4] == "tmpfs"
    caps = c.kubectl("exec", "secure", "--", "grep", "CapEff", "/proc/1/status").stdout.split()
    assert caps[1] == "0000000000000000"


def test_attach_to_the_main_process(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "attached", [{"name": "main", "image": "busybox", "stdin": True, "stdinOnce": True,
                                  "command": ["sh", "-c", "read line; echo got $line"]}], restartPolicy="Never"))
    wait_running_ready(c, "attached")
    r = c.kubectl("attach", "-i", "attached", input="hello\n", check=False, timeout=60)
    assert r.returncode == 0, r
    # the process got kubectl's stdin (its output may race the end of the attach stream)
    wait_phase(c, "attached", "Succeeded")
    assert c.kubectl("logs", "attached").stdout == "got hello\n"


def test_python_client_exec_and_logs(agent_cluster: Any) -> None:
    from kubernetes import client, config
    from kubernetes.stream import stream

    c = agent_cluster
    apply(c, pod(c, "py-target", [{"name": "main", "image": "busybox",
                                   "command": ["sh", "-c", "echo from-main; sleep 3600"]}]))
    wait_running_ready(c, "py-target")
    api = client.CoreV1Api(config.new_client_from_config(str(c.kubeconfig)))
    out = stream(api.connect_get_namespaced_pod_exec, "py-target", "default",
                 command=["sh", "-c", "echo out; echo err >&2"], stderr=True, stdin=False, stdout=True, tty=False)
    assert "out" in out
    resp = stream(api.connect_get_namespaced_pod_exec, "py-target", "default", command=["sh", "-c", "exit 5"],
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=30)
    assert resp.returncode == 5
    wait_for(lambda: api.read_namespaced_pod_log("py-target", "default") == "from-main\n", 20, "the pod's log")


def test_image_pull_errors_and_init_containers(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "no-image", [{"name": "main", "image": "k8py-no-such-image:1.0"}]),
          pod(c, "with-init", [{"name": "main", "image": "busybox",
                                "command": ["sh", "-c", "cat /scratch/msg; sleep 3600"],
                                "volumeMounts": [{"name": "work", "mountPath": "/scratch"}]}],
              initContainers=[{"name": "first", "image": "busybox", "command": ["sh", "-c", "echo a > /scratch/msg"],
                               "volumeMounts": [{"name": "work", "mountPath": "/scratch"}]},
                              {"name": "second", "image": "busybox", "command": ["sh", "-c", "echo b >> /scratch/msg"],
                               "volumeMounts": [{"name": "work", "mountPath": "/scratch"}]}],
              volumes=[{"name": "work", "emptyDir": {}}]))
    p = wait_for(lambda: (q := get_pod(c, "no-image")) and cstatus(q).get("state", {}).get("waiting", {})
                 .get("reason") in ("ErrImagePull", "ImagePullBackOff") and q, 60, "a pull error")
    assert "k8py-no-such-image" in cstatus(p)["state"]["waiting"]["message"]
    wait_for(lambda: cstatus(get_pod(c, "no-image"))["state"]["waiting"]["reason"] == "ImagePullBackOff", 60,
             "ImagePullBackOff")
    assert c.kubectl("get", "pod", "no-image", "--no-headers").stdout.split()[2] in ("ErrImagePull",
                                                                                   "ImagePullBackOff")
    wait_running_ready(c, "with-init")
    assert wait_for(lambda: c.kubectl("logs", "with-init").stdout, 20, "main's output") == "a\nb\n"
    p = get_pod(c, "with-init")
    assert [s["state"]["terminated"]["reason"] for s in p["status"]["initContainerStatuses"]] == ["Completed"] * 2
    assert c.kubectl("logs", "with-init", "-c", "second").stdout == ""


def istatus(p: dict, name: str) -> dict:
    return next((s for s in (p.get("status") or {}).get("initContainerStatuses") or [] if s["name"] == name), {})


def _running_runc_containers(c: Any) -> set[str]:
    r = subprocess.run(["runc", "--root", str(c.state / "runc"), "list", "-f", "json"], capture_output=True,
                       text=True, check=True)
    return {x["id"] for x in json.loads(r.stdout or "null") or [] if x.get("status") == "running"}


SIDECAR_LOOP = "trap 'exit 0' TERM; while true; do date >> /shared/log; sleep 1; done"


def test_a_job_with_a_sidecar_completes_when_its_main_container_exits(agent_cluster: Any) -> None:
    c = agent_cluster
    shared = [{"name": "shared", "mountPath": "/shared"}]
    apply(c, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "with-sidecar"}, "spec": {
        "backoffLimit": 0, "template": {"spec": {
            "nodeName": c.node_name, "restartPolicy": "Never", "terminationGracePeriodSeconds": 10,
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "initContainers": [{"name": "logger", "image": "busybox", "restartPolicy": "Always",
                                "command": ["sh", "-c", SIDECAR_LOOP], "volumeMounts": shared}],
            "containers": [{"name": "main", "image": "busybox", "volumeMounts": shared, "command": [
                "sh", "-c", "until [ -s /shared/log ]; do sleep 1; done; echo the sidecar wrote: $(head -1 /shared/log)"
            ]}]}}}})
    c.kubectl("wait", "--for=condition=complete", "job/with-sidecar", "--timeout=90s", timeout=100)
    job = c.kubectl_json("get", "job", "with-sidecar")
    assert job["status"]["succeeded"] == 1 and not job["status"].get("failed")
    (p,) = c.kubectl_json("get", "pods", "-l", "job-name=with-sidecar")["items"]
    assert p["status"]["phase"] == "Succeeded"
    assert cstatus(p, "main")["state"]["terminated"]["exitCode"] == 0
    logger = istatus(p, "logger")
    assert "terminated" in logger["state"], logger  # stopped by the kubelet once main was done
    assert logger["restartCount"] == 0
    ids = {s["containerID"].split("://", 1)[1] for s in (cstatus(p, "main"), logger)}
    assert not {i for i in _running_runc_containers(c) if any(i.endswith(x) for x in ids)}
    logs = c.kubectl("logs", p["metadata"]["name"], "-c", "main").stdout
    assert logs.startswith("the sidecar wrote: ") and len(logs.strip()) > len("the sidecar wrote:")


def test_a_killed_sidecar_is_restarted_while_the_main_container_keeps_running(agent_cluster: Any) -> None:
    import os
    import signal

    c = agent_cluster
    apply(c, pod(c, "sidecar-kill", [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}],
                 restartPolicy="Never",
                 initContainers=[{"name": "side", "image": "busybox", "restartPolicy": "Always",
                                  "command": ["sleep", "3600"]}]))
    p = wait_running_ready(c, "sidecar-kill")
    assert "running" in istatus(p, "side")["state"] and istatus(p, "side")["started"] is True
    assert c.kubectl("get", "pod", "sidecar-kill", "--no-headers").stdout.split()[1] == "2/2"
    main_id = cstatus(p, "main")["containerID"]
    cid = istatus(p, "side")["containerID"].split("://", 1)[1]
    pid = int(json.loads((c.state / "containers" / cid / "container.json").read_text())["pid"])
    os.kill(pid, signal.SIGKILL)
    p = wait_for(lambda: (q := get_pod(c, "sidecar-kill")) and istatus(q, "side").get("restartCount", 0) >= 1
                 and "running" in istatus(q, "side")["state"] and q, 60, "the sidecar restarted")
    assert istatus(p, "side")["lastState"]["terminated"]["exitCode"] == 137
    assert cstatus(p, "main")["restartCount"] == 0 and cstatus(p, "main")["containerID"] == main_id
    assert "running" in cstatus(p, "main")["state"] and p["status"]["phase"] == "Running"
    c.kubectl("delete", "pod", "sidecar-kill", "--wait=true", "--timeout=60s", timeout=70)


def test_set_image_on_a_pod_restarts_its_container(agent_cluster: Any) -> None:
    c = agent_cluster
    apply(c, pod(c, "retag", [{"name": "web", "image": "nginx:1.14.2"}]))
    before = cstatus(wait_running_ready(c, "retag"))
    c.kubectl("set", "image", "pod/retag", "web=nginx:1.16.1")
    p = wait_for(lambda: (q := get_pod(c, "retag")) and cstatus(q).get("image") == "nginx:1.16.1"
                 and "running" in cstatus(q)["state"] and cstatus(q)["containerID"] != before["containerID"] and q,
                 60, "the container restarted with the new image")
    assert cstatus(p)["restartCount"] == 1


def test_crafted_images_end_in_pull_errors_and_write_nothing_outside(agent_cluster: Any, local_registry: Any) -> None:
    """Issue 10 (a safe node): images crafted to escape the image store, pushed to the local
    registry, leave their pods in ErrImagePull/ImagePullBackOff with the reason, and nothing
    is written outside the store (a sentinel directory keeps its one file)."""
    import asyncio
    import gzip
    import io
    import tarfile
    import tempfile
    import uuid
    from pathlib import Path

    from tests.runtime.oci_helpers import Layer, digest_of, image, layer, push

    c = agent_cluster
    outside = Path(tempfile.mkdtemp(prefix="k8py-e2e-outside-", dir="/var/tmp"))
    (outside / "sentinel").write_text("untouched\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        sym = tarfile.TarInfo("a")
        sym.type, sym.linkname = tarfile.SYMTYPE, str(outside)
        tf.addfile(sym)
        f = tarfile.TarInfo("a/pwned")
        f.size = 6
        tf.addfile(f, io.BytesIO(b"pwned\n"))
    raw = buf.getvalue()
    escape = Layer(gzip.compress(raw, mtime=0), digest_of(raw), "application/vnd.oci.image.layer.v1.tar+gzip")
    good = layer({"f": b"x"})
    repo = f"library/k8py-crafted-{uuid.uuid4().hex[:6]}"
    cases = {"symlink-escape": (image([escape]), "a symlink or not a directory"),
             "diffid-traversal": (image([Layer(good.blob, "sha256:../../etc", good.media_type)]),
                                  "invalid diff_id 'sha256:../../etc'")}
    try:
        for tag, (img, _) in cases.items():
            asyncio.run(push(local_registry.addr, repo, tag, img))
        apply(c, *[pod(c, f"crafted-{tag}", [{"name": "main", "image": f"{repo.split('/', 1)[1]}:{tag}"}])
                   for tag in cases])
        for tag, (_, why) in cases.items():
            p = wait_for(lambda t=tag: (q := get_pod(c, f"crafted-{t}")) and cstatus(q).get("state", {})
                         .get("waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff") and q, 60,
                         f"a pull error for {tag}")
            assert why in cstatus(p)["state"]["waiting"]["message"], cstatus(p)["state"]["waiting"]
            events = c.kubectl("get", "events", "--field-selector", f"involvedObject.name=crafted-{tag}").stdout
            assert why.split("'")[0].strip() in events, events
        assert sorted(p.name for p in outside.iterdir()) == ["sentinel"]
        assert (outside / "sentinel").read_text() == "untouched\n"
        layers = c.agent_root / "images" / "layers"
        assert not [p for p in layers.iterdir() if p.name.endswith(".partial") or p.name.startswith(".")]
    finally:
        c.kubectl("delete", "pod", *[f"crafted-{t}" for t in cases], "--wait=false", check=False)
        for p in outside.iterdir():
            p.unlink()
        outside.rmdir()


def _log_files(c: Any, pod_name: str, container: str) -> list[Any]:
    return [f for d in (c.agent_root / "pod-logs").glob(f"default_{pod_name}_*/{container}") for f in d.iterdir()]


def test_endless_logs_keep_at_most_the_rotated_size_on_disk(agent_cluster: Any) -> None:
    c = agent_cluster
    line = "x" * 200
    script = (f"i=0; while true; do i=$((i+1)); echo \"line $i {line}\"; "
              "if [ $((i % 500)) -eq 0 ]; then sleep 0.2; fi; done")
    apply(c, pod(c, "chatty", [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}]))
    wait_running_ready(c, "chatty")
    record = 31 + 7 + 10 + 200 + 8  # timestamp, stream, tag, "line N ", content, newline (N < 10**8)
    cap = LOG_MAX_SIZE * LOG_MAX_FILES + record

    def last_line() -> int:
        out = c.kubectl("logs", "chatty", "--tail", "1").stdout.split()
        return int(out[1]) if len(out) == 3 and out[0] == "line" else 0

    def rotated_twice_over() -> bool:  # far more written than the files may keep
        files = _log_files(c, "chatty", "main")
        assert sum(f.stat().st_size for f in files if f.exists()) <= cap, files
        return last_line() * (record - 8) > 3 * cap and any(f.name.endswith(".gz") for f in files)

    wait_for(rotated_twice_over, 120, "the log to be rotated several times over")
    files = _log_files(c, "chatty", "main")
    assert len([f for f in files if not f.name.endswith(".tmp")]) <= LOG_MAX_FILES
    assert sum(f.stat().st_size for f in files if f.exists()) <= cap
    first = last_line()
    wait_for(lambda: last_line() > first, 30, "kubectl logs --tail 1 to go on after rotations")
    c.kubectl("delete", "pod", "chatty", "--wait=true")


def test_a_fork_bomb_is_held_by_the_pod_pids_limit(agent_cluster: Any) -> None:
    c = agent_cluster
    bomb = "while true; do (sleep 1000 &) 2>/dev/null; done"
    apply(c, pod(c, "forkbomb", [{"name": "main", "image": "busybox", "command": ["sh", "-c", bomb],
                                  "resources": {"limits": {"cpu": "200m"}}}]))
    uid = wait_running_ready(c, "forkbomb")["metadata"]["uid"]
    pod_cg = Path("/sys/fs/cgroup/pids") / c.cgroup_parent / uid
    if not pod_cg.exists():  # cgroup v2
        pod_cg = Path("/sys/fs/cgroup") / c.cgroup_parent / uid
    assert (pod_cg / "pids.max").read_text().strip() == str(POD_MAX_PIDS)

    def held_at_the_limit() -> bool:
        current = int((pod_cg / "pids.current").read_text())
        assert current <= POD_MAX_PIDS
        # forks refused (EAGAIN): counted in the cgroup of the forking task, under the pod's
        refused = sum(int(f.read_text().split()[1]) for f in pod_cg.rglob("pids.events"))
        return current >= POD_MAX_PIDS - 5 and refused > 0

    wait_for(held_at_the_limit, 120, "the fork bomb to be held at the pids limit")
    node = c.kubectl_json("get", "node", c.node_name)
    assert {x["type"]: x["status"] for x in node["status"]["conditions"]}["Ready"] == "True"
    apply(c, pod(c, "after-bomb", [{"name": "main", "image": "busybox", "command": ["echo", "still here"]}],
                 restartPolicy="Never"))
    wait_phase(c, "after-bomb", "Succeeded")
    assert c.kubectl("logs", "after-bomb").stdout == "still here\n"
    c.kubectl("delete", "pod", "forkbomb", "after-bomb", "--wait=true", timeout=120)
