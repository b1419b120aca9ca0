"""Secrets encrypted at rest, through the real kubectl and the `k8py` command: the value is
in no file of the data dir, reads after a restart and after `k8py secrets rotate`; the data
dir and its secrets are owner-only; a wrong key or a broken config fails clearly."""

from __future__ import annotations

import base64
import stat
import subprocess
from pathlib import Path

import pytest

from e2e_harness import K8PY, K8pyServer

pytestmark = pytest.mark.e2e

SECRET = "e2e-Walrus-Platypus-90210"
CANARY = "e2e-plain-Canary-31337"


def _files_holding(data_dir: Path, needle: str) -> list[str]:
    forms = (needle.encode(), base64.b64encode(needle.encode()))
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*")
                  if p.is_file() and any(f in p.read_bytes() for f in forms))


def _password(s: K8pyServer) -> str:
    return base64.b64decode(s.kubectl_json("get", "secret", "db")["data"]["password"]).decode()


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _key_names(data_dir: Path) -> list[str]:
    import yaml
    doc = yaml.safe_load((data_dir / "encryption-config.yaml").read_text())
    return [k["name"] for k in doc["resources"][0]["providers"][0]["aescbc"]["keys"]]


def test_secret_values_never_reach_the_disk_and_survive_restart_and_rotation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    s = K8pyServer(data).start()
    try:
        s.kubectl("create", "secret", "generic", "db", f"--from-literal=password={SECRET}")
        s.kubectl("create", "configmap", "canary", f"--from-literal=v={CANARY}")
        assert _mode(data) == 0o700 and _mode(data / "encryption-config.yaml") == 0o600
        for f in ("state.db", "state.db-wal", "state.db-shm", "kubeconfig"):
            assert _mode(data / f) == 0o600, f
        keys = [p for p in (data / "pki").iterdir() if p.suffix == ".key"]
        assert keys and all(_mode(p) == 0o600 for p in keys), [(p.name, oct(_mode(p))) for p in keys]
        assert _files_holding(data, CANARY) != []  # the grep sees what is not encrypted
        assert _files_holding(data, SECRET) == []
        assert s.stop() == 0
        assert _files_holding(data, SECRET) == []  # checkpointed into state.db: still nowhere

        s.start()
        assert _password(s) == SECRET
        assert s.stop() == 0

        old = _key_names(data)
        out = subprocess.run([*K8PY, "secrets", "rotate", "--data-dir", str(data)], capture_output=True, text=True,
                             timeout=60, env=s.env())
        assert out.returncode == 0, out.stderr
        new = _key_names(data)
        assert len(new) == 1 and new != old and f"rotated to key {new[0]}" in out.stdout
        assert _files_holding(data, SECRET) == []

        s.start()
        assert _password(s) == SECRET
        s.kubectl("create", "secret", "generic", "later", f"--from-literal=password={SECRET}")
        assert _files_holding(data, SECRET) == []
    finally:
        s.stop()


def test_a_wrong_key_or_a_broken_config_fails_clearly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    s = K8pyServer(data).start()
    try:
        s.kubectl("create", "secret", "generic", "db", f"--from-literal=password={SECRET}")
        assert s.stop() == 0
        import yaml
        cfg = (data / "encryption-config.yaml").read_text()
        doc = yaml.safe_load(cfg)
        key = doc["resources"][0]["providers"][0]["aescbc"]["keys"][0]
        name, key["secret"] = key["name"], base64.b64encode(b"w" * 32).decode()  # the right name, another key
        wrong = tmp_path / "wrong.yaml"
        wrong.write_text(yaml.safe_dump(doc))
        s.extra_args = ("--encryption-provider-config", str(wrong))
        s.start()
        p = s.kubectl("get", "secret", "db", check=False)
        assert p.returncode != 0
        assert "Error from server (InternalError)" in p.stderr and "unable to transform key" in p.stderr
        assert f"key '{name}' failed to decrypt" in p.stderr
        assert "Traceback" not in s.log()
        s.kubectl("get", "namespace", "default")  # everything else serves
        assert s.stop() == 0

        broken = tmp_path / "broken.yaml"
        broken.write_text(cfg.replace("aescbc", "secretbox"))
        out = subprocess.run([*K8PY, "server", "--no-agent", "--data-dir", str(data), "--port", "0",
                              "--encryption-provider-config", str(broken)], capture_output=True, text=True,
                             timeout=60, env=s.env())
        # (supervised: the API server process says it, its line prefixed with its name)
        assert out.returncode == 1 and out.stderr.removeprefix("[kube-apiserver] ").startswith(
            "k8py: cannot start: encryption provider config"), out.stderr
        assert "secretbox: Unsupported value" in out.stderr and "Traceback" not in out.stderr
    finally:
        s.stop()


def _etcd_registry(url: str, op: str) -> list[tuple[str, bytes]]:
    """`op` (range, deleterange) on every key under /registry/, straight on etcd's JSON gateway."""
    import json
    import urllib.request
    body = json.dumps({"key": base64.b64encode(b"/registry/").decode(),
                       "range_end": base64.b64encode(b"/registry0").decode()}).encode()
    req = urllib.request.Request(url.rstrip("/") + f"/v3/kv/{op}", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - our own etcd on loopback
        kvs = json.loads(r.read()).get("kvs", [])
    return [(base64.b64decode(kv["key"]).decode(), base64.b64decode(kv.get("value", ""))) for kv in kvs]


def test_on_etcd_the_value_is_in_no_key_and_reads_after_a_restart(tmp_path: Path, etcd_url: str) -> None:
    _etcd_registry(etcd_url, "deleterange")  # the session shares one etcd: start from an empty /registry
    s = K8pyServer(tmp_path / "data", store="etcd://" + etcd_url.split("://", 1)[-1].rstrip("/")).start()
    try:
        s.kubectl("create", "secret", "generic", "db", f"--from-literal=password={SECRET}")
        s.kubectl("create", "configmap", "canary", f"--from-literal=v={CANARY}")
        values = _etcd_registry(etcd_url, "range")
        forms = (SECRET.encode(), base64.b64encode(SECRET.encode()))
        assert any(CANARY.encode() in v for _, v in values)  # the check sees what is not encrypted
        assert [k for k, v in values if any(f in v for f in forms)] == []
        [(_, raw)] = [(k, v) for k, v in values if k == "/registry/core/secrets/default/db"]
        assert raw.startswith(b"k8s:enc:aescbc:v1:key-")
        assert s.stop() == 0
        s.start()
        assert _password(s) == SECRET
    finally:
        s.stop()
