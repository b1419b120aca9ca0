"""CustomResourceDefinitions with the real kubectl: the Kubernetes documentation's CronTab
walkthrough ("Extend the Kubernetes API with CustomResourceDefinitions") as written, then
an operator written with kopf (PyPI) against the same cluster. The tests run in order on
one shared cluster; each section applies the documentation's CRD of that section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from e2e_harness import K8pyServer, wait_for

pytestmark = pytest.mark.e2e

CRD_NAME = "crontabs.stable.example.com"

# "Create a CustomResourceDefinition": resourcedefinition.yaml
BASIC_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                cronSpec:
                  type: string
                image:
                  type: string
                replicas:
                  type: integer
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames:
    - ct
"""

MY_CRONTAB = """\
apiVersion: "stable.example.com/v1"
kind: CronTab
metadata:
  name: my-new-cron-object
spec:
  cronSpec: "* * * * */5"
  image: my-awesome-cron-image
"""


def _crd_with(spec_props: dict[str, object], **version: object) -> str:
    """The documentation's CRD of a later section: the basic one with other spec properties
    and more fields on its version (subresources, additionalPrinterColumns)."""
    crd = yaml.safe_load(BASIC_CRD)
    v = crd["spec"]["versions"][0]
    v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"] = spec_props
    v.update(version)
    return yaml.safe_dump(crd)


# "Validation": cronSpec must match a pattern, replicas between 1 and 10.
VALIDATION_PROPS = {
    "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
    "image": {"type": "string"},
    "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
}
# "Defaulting"
DEFAULT_PROPS = {
    "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$",
                 "default": "5 0 * * *"},
    "image": {"type": "string"},
    "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
}
# "Additional printer columns"
COLUMNS = [{"name": "Spec", "type": "string", "description": "The cron spec defining the interval a CronJob is run",
            "jsonPath": ".spec.cronSpec"},
           {"name": "Replicas", "type": "integer", "description": "The number of jobs launched by the CronJob",
            "jsonPath": ".spec.replicas"},
           {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
# "Subresources": status and scale
SUBRESOURCES = {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                        "statusReplicasPath": ".status.replicas",
                                        "labelSelectorPath": ".status.labelSelector"}}
SUBRESOURCE_PROPS = {"cronSpec": {"type": "string"}, "image": {"type": "string"}, "replicas": {"type": "integer"}}
STATUS_SCHEMA = {"type": "object", "properties": {"replicas": {"type": "integer"},
                                                  "labelSelector": {"type": "string"}}}


def _apply_crd(cluster: K8pyServer, manifest: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=manifest)
    cluster.kubectl("wait", "--for", "condition=established", "--timeout=30s", f"crd/{CRD_NAME}")


def test_create_crd_and_custom_object(cluster: K8pyServer) -> None:
    _apply_crd(cluster, BASIC_CRD)
    crd = cluster.kubectl_json("get", "crd", CRD_NAME)
    conds = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conds["NamesAccepted"] == "True" and conds["Established"] == "True"
    crds = cluster.kubectl("get", "crd").stdout.split("\n")
    assert crds[0].split() == ["NAME", "CREATED", "AT"] and crds[1].startswith(CRD_NAME)
    cluster.kubectl("apply", "-f", "-", input=MY_CRONTAB)
    out = cluster.kubectl("get", "crontab").stdout
    assert out.split("\n")[0].split() == ["NAME", "AGE"] and "my-new-cron-object" in out
    obj = yaml.safe_load(cluster.kubectl("get", "ct", "-o", "yaml").stdout)["items"][0]
    assert obj["apiVersion"] == "stable.example.com/v1" and obj["kind"] == "CronTab"
    assert obj["spec"] == {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image"}
    assert "crontabs" in cluster.kubectl("api-resources", "--api-group=stable.example.com").stdout
    explain = cluster.kubectl("explain", "crontab.spec").stdout
    assert "cronSpec" in explain and "<string>" in explain


def test_field_selector_and_patch(cluster: K8pyServer) -> None:
    names = cluster.kubectl("get", "ct", "--field-selector", "metadata.name=my-new-cron-object",
                            "-o", "name").stdout.split()
    assert names == ["crontab.stable.example.com/my-new-cron-object"]
    cluster.kubectl("patch", "ct", "my-new-cron-object", "--type=merge", "-p", '{"spec":{"image":"other"}}')
    cluster.kubectl("patch", "ct", "my-new-cron-object", "--type=json",
                    "-p", '[{"op":"add","path":"/spec/replicas","value":2}]')
    assert cluster.kubectl_json("get", "ct", "my-new-cron-object")["spec"]["replicas"] == 2
    smp = cluster.kubectl("patch", "ct", "my-new-cron-object", "-p", '{"spec":{"image":"x"}}', check=False)
    assert smp.returncode != 0 and "strategic-merge-patch+json is not supported" in smp.stderr, smp


def test_delete_crd_deletes_objects(cluster: K8pyServer) -> None:
    cluster.kubectl("delete", "-f", "-", input=BASIC_CRD)
    p = cluster.kubectl("get", "crontabs", check=False)
    assert p.returncode != 0
    assert "the server doesn't have a resource type" in p.stderr or "NotFound" in p.stderr, p.stderr


def test_validation(cluster: K8pyServer) -> None:
    _apply_crd(cluster, _crd_with(VALIDATION_PROPS))
    bad = MY_CRONTAB.replace('"* * * * */5"', '"* * * *"') + "  replicas: 15\n"
    p = cluster.kubectl("apply", "-f", "-", input=bad, check=False)
    assert p.returncode != 0
    assert 'The CronTab "my-new-cron-object" is invalid' in p.stderr, p.stderr
    assert "spec.cronSpec in body should match" in p.stderr
    assert "spec.replicas in body should be less than or equal to 10" in p.stderr
    assert cluster.kubectl("get", "ct", "-o", "name").stdout.strip() == ""
    cluster.kubectl("apply", "-f", "-", input=MY_CRONTAB)


def test_pruning_and_unknown_fields(cluster: K8pyServer) -> None:
    extra = MY_CRONTAB.replace("metadata:", "someRandomField: 42\nmetadata:")
    p = cluster.kubectl("apply", "-f", "-", input=extra, check=False)
    assert p.returncode != 0 and 'unknown field "someRandomField"' in p.stderr, p.stderr
    cluster.kubectl("apply", "--validate=false", "-f", "-", input=extra)
    assert "someRandomField" not in cluster.kubectl_json("get", "ct", "my-new-cron-object")


def test_defaulting_and_printer_columns(cluster: K8pyServer) -> None:
    _apply_crd(cluster, _crd_with(DEFAULT_PROPS, additionalPrinterColumns=COLUMNS))
    cluster.kubectl("delete", "ct", "my-new-cron-object")
    cluster.kubectl("apply", "-f", "-", input=MY_CRONTAB.replace('  cronSpec: "* * * * */5"\n', ""))
    obj = cluster.kubectl_json("get", "crontab", "my-new-cron-object")
    assert obj["spec"] == {"cronSpec": "5 0 * * *", "image": "my-awesome-cron-image", "replicas": 1}
    lines = cluster.kubectl("get", "crontab", "my-new-cron-object").stdout.strip().split("\n")
    assert lines[0].split() == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert lines[1].split()[:7] == ["my-new-cron-object", "5", "0", "*", "*", "*", "1"]


def test_scale_subresource(cluster: K8pyServer) -> None:
    schema_crd = yaml.safe_load(_crd_with(SUBRESOURCE_PROPS, subresources=SUBRESOURCES))
    schema_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"] = STATUS_SCHEMA
    _apply_crd(cluster, yaml.safe_dump(schema_crd))
    cluster.kubectl("scale", "--replicas=5", "crontabs/my-new-cron-object")
    out = cluster.kubectl("get", "crontabs", "my-new-cron-object", "-o", "jsonpath={.spec.replicas}").stdout
    assert out == "5"
    # status writes go through the status subresource only
    cluster.kubectl("patch", "ct", "my-new-cron-object", "--subresource=status", "--type=merge",
                    "-p", '{"status":{"replicas":5,"labelSelector":"app=cron"}}')
    scale = json.loads(cluster.kubectl("get", "--raw", "/apis/stable.example.com/v1/namespaces/default/"
                                       "crontabs/my-new-cron-object/scale").stdout)
    assert scale["status"] == {"replicas": 5, "selector": "app=cron"}


def test_server_side_apply_and_categories(cluster: K8pyServer) -> None:
    crd = yaml.safe_load(_crd_with(SUBRESOURCE_PROPS, subresources=SUBRESOURCES))
    crd["spec"]["names"]["categories"] = ["all"]
    _apply_crd(cluster, yaml.safe_dump(crd))
    ssa = MY_CRONTAB.replace("my-new-cron-object", "ssa-cron").replace("my-awesome-cron-image", "img-1")
    cluster.kubectl("apply", "--server-side", "--field-manager=first", "-f", "-", input=ssa)
    cluster.kubectl("apply", "--server-side", "--field-manager=first", "-f", "-",
                    input=ssa.replace("img-1", "img-2"))
    obj = cluster.kubectl_json("get", "ct", "ssa-cron", "--show-managed-fields")
    assert obj["spec"]["image"] == "img-2"
    assert any(m["manager"] == "first" and m["operation"] == "Apply" for m in obj["metadata"]["managedFields"])
    clash = cluster.kubectl("apply", "--server-side", "--field-manager=second", "-f", "-",
                            input=ssa.replace("img-1", "img-3"), check=False)
    assert clash.returncode != 0 and "conflict" in clash.stderr.lower(), clash.stderr
    cluster.kubectl("api-resources")  # refreshes kubectl's discovery cache, which predates the new category
    assert "crontab.stable.example.com/ssa-cron" in cluster.kubectl("get", "all", "-o", "name").stdout
    cluster.kubectl("delete", "ct", "ssa-cron")


# -- a kopf operator -----------------------------------------------------------------------
OPERATOR = '''
import pathlib
import kopf

OUT = pathlib.Path(__file__).with_name("deleted.txt")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.watching.server_timeout = 30
    settings.peering.standalone = True


@kopf.on.create("stable.example.com", "v1", "crontabs")
def on_create(spec, patch, **_):
    patch.status["replicas"] = spec.get("replicas", 0)
    patch.status["labelSelector"] = "seen-by=kopf"
    return {"image": spec.get("image")}


@kopf.on.delete("stable.example.com", "v1", "crontabs")
def on_delete(name, **_):
    OUT.write_text(name)
'''


@pytest.fixture
def operator(cluster: K8pyServer, tmp_path: Path) -> Iterator[Path]:
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    log = open(tmp_path / "operator.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "kopf", "run", "--standalone", "--namespace=default",
                             str(script)], env=cluster.env() | {"PYTHONPATH": os.environ.get("PYTHONPATH", "")},
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        yield tmp_path
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_kopf_operator(cluster: K8pyServer, operator: Path) -> None:
    pytest.importorskip("kopf")
    # kopf keeps its handlers' results in status: the status schema must preserve them (as on Kubernetes)
    crd = yaml.safe_load(_crd_with(SUBRESOURCE_PROPS, subresources=SUBRESOURCES))
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"] = {
        **STATUS_SCHEMA, "x-kubernetes-preserve-unknown-fields": True}
    _apply_crd(cluster, yaml.safe_dump(crd))
    cluster.kubectl("apply", "-f", "-", input=MY_CRONTAB.replace("my-new-cron-object", "kopf-cron"))

    def handled() -> dict[str, object] | None:
        obj = cluster.kubectl_json("get", "ct", "kopf-cron")
        st = obj.get("status") or {}
        return obj if st.get("labelSelector") == "seen-by=kopf" and "on_create" in st else None

    log = operator / "operator.log"
    try:
        obj = wait_for(handled, timeout=90, what="kopf to handle the CronTab")
    except AssertionError:
        raise AssertionError(log.read_text(errors="replace")[-4000:]) from None
    assert obj["status"]["on_create"] == {"image": "my-awesome-cron-image"}
    assert "kopf.zalando.org/KopfFinalizerMarker" in obj["metadata"]["finalizers"]
    cluster.kubectl("delete", "ct", "kopf-cron", "--timeout=90s")
    assert (operator / "deleted.txt").read_text() == "kopf-cron"
    assert cluster.kubectl("get", "ct", "kopf-cron", check=False).returncode != 0
