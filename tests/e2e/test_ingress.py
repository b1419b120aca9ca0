"""Ingress with real containers, the real kubectl and k8py's nginx: two hosts and two
paths routed to two Services (busybox httpd pods answering distinct bodies), HTTPS with a
Secret's certificate (made here with `cryptography`) checked by `curl --resolve`, a
missing Service answering 503 while the others keep serving, the address in
`kubectl get ingress`, a change reloading nginx without failing requests in flight, and
no nginx left once the server stops."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e_harness import wait_for

pytestmark = pytest.mark.root

A, B, C = "a.ingress.test", "b.ingress.test", "c.ingress.test"


def httpd(name: str, pages: dict[str, str]) -> list[dict[str, Any]]:
    """A Deployment of one busybox httpd answering `pages` (path -> body) on 8080 (cgi-bin/slow
    answers after 3 s), and its Service on port 80."""
    script = "mkdir -p /www/cgi-bin && " + " && ".join(
        f"mkdir -p /www{p} && echo {body} > /www{p}/index.html" for p, body in pages.items())
    script += (" && printf '#!/bin/sh\\nsleep 3\\nprintf \"Content-Type: text/plain\\\\r\\\\n\\\\r\\\\nslow\\\\n\"\\n'"
               " > /www/cgi-bin/slow && chmod +x /www/cgi-bin/slow && exec httpd -f -p 8080 -h /www")
    labels = {"app": name}
    return [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
             "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels}, "spec": {
                          "terminationGracePeriodSeconds": 0,
                          "containers": [{"name": "httpd", "image": "busybox:1.28", "command": ["sh", "-c", script],
                                          "ports": [{"name": "http", "containerPort": 8080}],
                                          "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
             "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]}}]


def backend(svc: str) -> dict[str, Any]:
    return {"service": {"name": svc, "port": {"number": 80}}}


def ingress(extra_paths: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    a_paths = [{"path": "/", "pathType": "Prefix", "backend": backend("alpha")},
               {"path": "/beta", "pathType": "Prefix", "backend": backend("beta")}, *(extra_paths or [])]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
            "spec": {"tls": [{"hosts": [A], "secretName": "web-tls"}],
                     "rules": [{"host": A, "http": {"paths": a_paths}},
                               {"host": B, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                                                               "backend": backend("beta")}]}}]}}


BROKEN = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "broken"},
          "spec": {"rules": [{"host": C, "http": {"paths": [{"path": "/", "pathType": "Exact",
                                                             "backend": backend("nowhere")}]}}]}}


def certificate(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, A)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(A)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    crt, kf = tmp / "tls.crt", tmp / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kf.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return crt, kf


def curl(*args: str) -> tuple[int, str]:
    """(HTTP status, body) of a curl from the machine."""
    p = subprocess.run(["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", *args],
                       capture_output=True, text=True, timeout=30)
    body, _, code = p.stdout.rpartition("\n")
    return int(code or 0), body.strip()


@pytest.fixture(scope="module")
def nginx_pids() -> Iterator[list[int]]:
    """Set up before the cluster, so torn down after it: the ingress nginx is gone."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        wait_for(lambda p=pid: not Path(f"/proc/{p}").exists(), 30, f"nginx {pid} to exit")


@pytest.fixture(scope="module")
def web(nginx_pids: list[int], agent_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    c = agent_cluster
    crt, key = certificate(tmp_path_factory.mktemp("tls"))
    c.kubectl("create", "secret", "tls", "web-tls", f"--cert={crt}", f"--key={key}")
    wait_for(lambda: c.kubectl("get", "ingressclass", "k8py", check=False).returncode == 0, 60,
             "the default IngressClass")  # so that the Ingresses get it (DefaultIngressClass admission)
    objs = [*httpd("alpha", {"": "alpha"}), *httpd("beta", {"": "beta", "/beta": "beta-path", "/new": "beta-new"}),
            ingress(), BROKEN]
    c.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs))
    addr = str(ipaddress.ip_network(c.lb_pool).broadcast_address - 1)
    pid_file = c.data_dir / "ingress" / "nginx.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 60, "the ingress nginx")
    nginx_pids.append(int(pid_file.read_text()))
    return {"c": c, "addr": addr, "crt": crt}


def test_address_in_kubectl_get_ingress(web: dict[str, Any]) -> None:
    c, addr = web["c"], web["addr"]

    def shown() -> str | None:
        out: str = c.kubectl("get", "ingress", "web").stdout
        return out if addr in out else None

    out = wait_for(shown, 60, "the ingress address")
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert row.split()[:6] == ["web", "k8py", f"{A},{B}", addr, "80,", "443"]
    classes = c.kubectl("get", "ingressclass", "k8py", "-o", "yaml").stdout
    assert "is-default-class: \"true\"" in classes and "k8py.io/ingress-nginx" in classes


ROUTES = [(A, "/", "alpha"), (A, "/beta/", "beta-path"), (B, "/", "beta")]


@pytest.mark.parametrize("host,path,body", ROUTES, ids=[f"{h}{p}" for h, p, _ in ROUTES])
def test_hosts_and_paths_route_to_their_services(web: dict[str, Any], host: str, path: str, body: str) -> None:
    addr = web["addr"]
    wait_for(lambda: curl("--resolve", f"{host}:80:{addr}", f"http://{host}{path}") == (200, body), 120,
             f"{host}{path} -> {body}")


def test_https_with_the_secret_certificate(web: dict[str, Any]) -> None:
    addr = web["addr"]
    wait_for(lambda: curl("--resolve", f"{A}:443:{addr}", "--cacert", str(web["crt"]), f"https://{A}/")
             == (200, "alpha"), 120, "https through the ingress")


def test_missing_service_is_503_and_others_keep_serving(web: dict[str, Any]) -> None:
    addr = web["addr"]
    wait_for(lambda: curl("--resolve", f"{C}:80:{addr}", f"http://{C}/")[0] == 503, 60, "503 for a missing service")
    assert curl("--resolve", f"{A}:80:{addr}", f"http://{A}/") == (200, "alpha")


def _hammer(addr: str, stop: threading.Event, results: list[tuple[int, str]]) -> None:
    while not stop.is_set():
        try:
            conn = http.client.HTTPConnection(addr, 80, timeout=15)
            conn.request("GET", "/", headers={"Host": A})
            r = conn.getresponse()
            results.append((r.status, r.read().decode().strip()))
            conn.close()
        except OSError as e:
            results.append((0, str(e)))


def _slow(addr: str, out: list[tuple[int, str]]) -> None:
    conn = http.client.HTTPConnection(addr, 80, timeout=30)
    conn.request("GET", "/cgi-bin/slow", headers={"Host": A})
    r = conn.getresponse()
    out.append((r.status, r.read().decode().strip()))


def test_a_change_reloads_without_failing_requests_in_flight(web: dict[str, Any]) -> None:
    c, addr = web["c"], web["addr"]
    wait_for(lambda: curl("--resolve", f"{A}:80:{addr}", f"http://{A}/") == (200, "alpha"), 120, "alpha")
    pid = int((c.data_dir / "ingress" / "nginx.pid").read_text())
    stop, results, slow = threading.Event(), [], []
    threads = [threading.Thread(target=_hammer, args=(addr, stop, results)),
               threading.Thread(target=_slow, args=(addr, slow))]
    for t in threads:
        t.start()
    try:
        time.sleep(1)  # the slow request is at the pod
        new = {"path": "/new", "pathType": "Prefix", "backend": backend("beta")}
        c.kubectl("apply", "-f", "-", input=yaml.safe_dump(ingress([new])))
        wait_for(lambda: curl("--resolve", f"{A}:80:{addr}", f"http://{A}/new/") == (200, "beta-new"), 60,
                 "/new routed to beta")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert slow == [(200, "slow")]
    assert results and all(r == (200, "alpha") for r in results), [r for r in results if r != (200, "alpha")][:5]
    assert int((c.data_dir / "ingress" / "nginx.pid").read_text()) == pid  # reloaded, not restarted
    log = (c.data_dir / "ingress" / "logs" / "error.log").read_text()
    assert "reconfiguring" in log
    assert os.stat(c.data_dir / "ingress" / "certs").st_mode & 0o777 == 0o700


def test_kubectl_explain_and_a_bad_ingress_refused(web: dict[str, Any]) -> None:
    c = web["c"]
    assert "ImplementationSpecific" in c.kubectl("explain", "ingress.spec.rules.http.paths.pathType").stdout
    bad = ingress()
    bad["metadata"]["name"] = "bad"
    bad["spec"]["rules"][0]["http"]["paths"][0].update(path="relative", pathType="Regex")
    p = c.kubectl("apply", "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert p.returncode != 0
    assert 'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex"' in p.stderr, p.stderr
    assert 'spec.rules[0].http.paths[0].path: Invalid value: "relative": must be an absolute path' in p.stderr
    assert c.kubectl("get", "ing", "bad", check=False).returncode != 0
