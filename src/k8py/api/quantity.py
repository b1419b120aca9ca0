"""Kubernetes resource quantities ("250m", "128Mi", "1e3", "1.5Gi").

A quantity is an exact rational number (fractions.Fraction): no float rounding ever
enters resource arithmetic. Parsing accepts exactly what Kubernetes' resource.ParseQuantity
accepts: an optional sign, a decimal number, then one suffix — binary (Ki Mi Gi Ti Pi Ei),
decimal SI (n u m "" k M G T P E) or a decimal exponent (e3, E-2). Bad input raises
QuantityError with Kubernetes' own message. Conversions round up, as Kubernetes'
MilliValue()/Value() do.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from k8py.api.errors import QuantityError

__all__ = [
    "QuantityError",
    "FORMAT_ERROR",
    "parse_quantity",
    "quantity_format",
    "to_milli",
    "to_int",
    "format_quantity",
]

FORMAT_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
SUFFIX_ERROR = "unable to parse quantity's suffix"

_SHAPE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
_EXPONENT = re.compile(r"^[eE]([+-]?[0-9]+)$")

_BINARY: dict[str, int] = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL: dict[str, int] = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP: dict[int, str] = {e: s for s, e in _DECIMAL.items()}

BINARY_SI = "BinarySI"
DECIMAL_SI = "DecimalSI"
DECIMAL_EXPONENT = "DecimalExponent"


def _split(v: str) -> tuple[Fraction, str, str]:
    """(number, suffix, format) of a quantity string, or QuantityError."""
    m = _SHAPE.match(v)
    if m is None:
        raise QuantityError(FORMAT_ERROR)
    num, suffix = m.group(1), m.group(2)
    if not _NUMBER.match(num):  # "1.2.3", "."
        raise QuantityError(FORMAT_ERROR)
    number = Fraction(num)
    if suffix in _BINARY:
        return number * (1024 ** _BINARY[suffix]), suffix, BINARY_SI
    if suffix in _DECIMAL:
        return number * Fraction(10) ** _DECIMAL[suffix], suffix, DECIMAL_SI
    em = _EXPONENT.match(suffix)
    if em:
        return number * Fraction(10) ** int(em.group(1)), suffix, DECIMAL_EXPONENT
    raise QuantityError(SUFFIX_ERROR)


def parse_quantity(v: str | int | float | Fraction) -> Fraction:
    """Exact value of a quantity: "250m" -> 1/4, "1Ki" -> 1024, 2 -> 2."""
    if isinstance(v, bool):
        raise QuantityError(FORMAT_ERROR)
    if isinstance(v, Fraction):
        return v
    if isinstance(v, int):
        return Fraction(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise QuantityError(FORMAT_ERROR)
        return Fraction(repr(v))
    if not isinstance(v, str):
        raise QuantityError(FORMAT_ERROR)
    return _split(v)[0]


def quantity_format(v: str | int | float) -> str:
    """Kubernetes' format of a quantity: "BinarySI", "DecimalSI" or "DecimalExponent"."""
    if isinstance(v, str):
        return _split(v)[2]
    return DECIMAL_SI


def to_milli(v: str | int | float | Fraction) -> int:
    """Value in thousandths, rounded up (cpu "250m" -> 250, "1" -> 1000, "0.1m" -> 1)."""
    return math.ceil(parse_quantity(v) * 1000)


def to_int(v: str | int | float | Fraction) -> int:
    """Integer value, rounded up (memory "128Mi" -> 134217728, "1.5" -> 2)."""
    return math.ceil(parse_quantity(v))


def _decimal(value: Fraction, exponent_form: bool) -> str:
    # Kubernetes keeps at most nano precision and rounds up beyond it.
    nanos = math.ceil(value * 10**9)
    if nanos == 0:
        return "0"
    sign = "-" if nanos < 0 else ""
    mantissa, exp = abs(nanos), -9
    while exp < 18 and mantissa % 1000 == 0:
        mantissa //= 1000
        exp += 3
    if exponent_form:
        return f"{sign}{mantissa}" + (f"e{exp}" if exp else "")
    return f"{sign}{mantissa}{_DECIMAL_BY_EXP[exp]}"


def _already_canonical(v: str) -> bool:
    """Kubernetes keeps a decimal quantity's own string when it is already canonical:
    whole digits not starting with 0 nor ending in 000, and a power of ten multiple of 3
    no smaller than nano ("1500e0" and "1e+3" stay as written)."""
    m = _SHAPE.match(v)
    if m is None:
        return False
    digits, suffix = m.group(1).lstrip("+-"), m.group(2)
    if "." in digits or digits.startswith("0") or digits.endswith("000"):
        return False
    em = _EXPONENT.match(suffix)
    exp = int(em.group(1)) if em else _DECIMAL.get(suffix)
    return exp is not None and exp % 3 == 0 and exp >= -9


def format_quantity(v: str | int | float | Fraction, fmt: str | None = None) -> str:
    """Canonical form of a quantity, as Kubernetes serializes it.

    fmt is BinarySI, DecimalSI or DecimalExponent; by default the format of the input
    string's suffix (DecimalSI for numbers). "1.5Gi" -> "1536Mi", "0.5" -> "500m",
    "1000" -> "1k", "1e3" -> "1e3". BinarySI values below 1024 or not whole are written
    in DecimalSI, as Kubernetes does.
    """
    value = parse_quantity(v)
    if fmt is None:
        fmt = quantity_format(v) if isinstance(v, str) else DECIMAL_SI
        if isinstance(v, str) and fmt != BINARY_SI and _already_canonical(v):
            return v
    if fmt == BINARY_SI:
        if value.denominator == 1 and abs(value) >= 1024:
            n, power = abs(value.numerator), 0
            while power < 6 and n % 1024 == 0:
                n //= 1024
                power += 1
            sign = "-" if value < 0 else ""
            suffix = next(s for s, p in _BINARY.items() if p == power) if power else ""
            return f"{sign}{n}{suffix}"
        return _decimal(value, exponent_form=False)
    if fmt == DECIMAL_EXPONENT:
        return _decimal(value, exponent_form=True)
    if fmt == DECIMAL_SI:
        return _decimal(value, exponent_form=False)
    raise QuantityError(f"unknown quantity format {fmt!r}")
