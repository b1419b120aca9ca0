"""Resource quantities parse, convert and print as Kubernetes' resource.Quantity does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from fractions import Fraction
from typing import Any

import pytest

from k8py.api.errors import QuantityError
from k8py.api.quantity import FORMAT_ERROR, format_quantity, parse_quantity, quantity_format, to_int, to_milli


@pytest.mark.parametrize(
    "text,value",
    [
        ("0", Fraction(0)),
        ("1", Fraction(1)),
        ("250m", Fraction(1, 4)),
        ("1.5", Fraction(3, 2)),
        ("0.1", Fraction(1, 10)),
        (".5", Fraction(1, 2)),
        ("1.", Fraction(1)),
        ("+2", Fraction(2)),
        ("-2", Fraction(-2)),
        ("100n", Fraction(100, 10**9)),
        ("3u", Fraction(3, 10**6)),
        ("2k", Fraction(2000)),
        ("2M", Fraction(2 * 10**6)),
        ("2G", Fraction(2 * 10**9)),
        ("2T", Fraction(2 * 10**12)),
        ("2P", Fraction(2 * 10**15)),
        ("2E", Fraction(2 * 10**18)),
        ("1Ki", Fraction(1024)),
        ("128Mi", Fraction(128 * 1024**2)),
        ("1.5Gi", Fraction(3 * 1024**3, 2)),
        ("1Ti", Fraction(1024**4)),
        ("1Pi", Fraction(1024**5)),
        ("1Ei", Fraction(1024**6)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("5e-3", Fraction(5, 1000)),
        ("12e+2", Fraction(1200)),
    ],
)
def test_parse(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("number,value", [(2, Fraction(2)), (0.5, Fraction(1, 2)), (0.1, Fraction(1, 10))])
def test_parse_numbers(number: int | float, value: Fraction) -> None:
    assert parse_quantity(number) == value


@pytest.mark.parametrize("text", ["12XB", "", "abc", "1 Gi", "Mi", "1GB", "--1", "1Mi ", True])
def test_bad_shape_uses_kubernetes_message(text: str) -> None:
    with pytest.raises(QuantityError) as e:
        parse_quantity(text)
    assert str(e.value) == FORMAT_ERROR
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("text", ["1kk", "1e", "1Mii", "1.2.3", "1-3"])
def test_bad_suffix_or_number(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


@pytest.mark.parametrize(
    "value,milli",
    [("250m", 250), ("1", 1000), ("0.5", 500), ("2", 2000), ("100n", 1), ("1.0001m", 2), (1, 1000), ("-1m", -1)],
)
def test_to_milli_rounds_up(value: str | int, milli: int) -> None:
    assert to_milli(value) == milli


@pytest.mark.parametrize(
    "value,n",
    [("128Mi", 134217728), ("1Gi", 1073741824), ("1k", 1000), ("1.5", 2), ("100m", 1), ("64M", 64000000), (7, 7)],
)
def test_to_int_rounds_up(value: str | int, n: int) -> None:
    assert to_int(value) == n


@pytest.mark.parametrize(
    "value,fmt,text",
    [
        ("128Mi", None, "128Mi"),
        ("1.5Gi", None, "1536Mi"),
        ("0.5Gi", None, "512Mi"),
        ("1024Ki", None, "1Mi"),
        ("1000Ki", None, "1000Ki"),
        ("1025", "BinarySI", "1025"),
        ("0.5", None, "500m"),
        ("1.5", None, "1500m"),
        ("1000", None, "1k"),
        ("1500", None, "1500"),
        ("2000m", None, "2"),
        ("0", None, "0"),
        ("1e3", None, "1e3"),
        ("1500e0", None, "1500e0"),  # already canonical: kept as written
        ("12e2", None, "1200"),
        ("5e-3", None, "5e-3"),
        ("-250m", None, "-250m"),
        (Fraction(1, 3), None, "333333334n"),
        (3, None, "3"),
        (1073741824, "BinarySI", "1Gi"),
    ],
)
def test_format_canonical(value: str | int | Fraction, fmt: str | None, text: str) -> None:
    assert format_quantity(value, fmt) == text
    assert parse_quantity(text) == parse_quantity(value) or isinstance(value, Fraction)


@pytest.mark.parametrize("text,fmt", [("1Ki", "BinarySI"), ("1k", "DecimalSI"), ("1", "DecimalSI"),
                                      ("1e3", "DecimalExponent")])
def test_quantity_format(text: str, fmt: str) -> None:
    assert quantity_format(text) == fmt


# kubectl parses and re-serializes quantities with Kubernetes' own code, offline:
# `kubectl set resources --local` prints the canonical form we must produce.
KUBECTL = shutil.which("kubectl")
ORACLE_CASES = ["1e0", "1200e0", "12e2", "1.2e3", "1e+3", "0e3", "1e-10", "100e-3", "1000e-3", "+5", "-5", "5000",
                "1000k", "1.0", "-0", "3Gi", "1025Ki", "1.5Gi", "1024Ki", "1.5", "250m", "0.1m", "1.0001m",
                "0.333333333333"]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_format_matches_kubectl(tmp_path: Any) -> None:
    pod = tmp_path / "pod.json"
    pod.write_text(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                               "spec": {"containers": [{"name": "c", "image": "x"}]}}))
    limits = ",".join(f"example.com/r{i}={q}" for i, q in enumerate(ORACLE_CASES))
    r = subprocess.run(
        [str(KUBECTL), "set", "resources", "-f", str(pod), "--local", f"--limits={limits}", "-o", "json"],
        capture_output=True, text=True, env={**os.environ, "KUBECONFIG": os.devnull}, timeout=60, check=True,
    )
    got = json.loads(r.stdout)["spec"]["containers"][0]["resources"]["limits"]
    names = (f"example.com/r{i}" for i in range(len(ORACLE_CASES)))
    assert {k: format_quantity(q) for k, q in zip(names, ORACLE_CASES)} == got
