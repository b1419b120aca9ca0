"""CEL expressions (CRDs' x-kubernetes-validations, webhooks' matchConditions,
ValidatingAdmissionPolicy), with cel-python.

`compile_error(expr)` says why an expression does not compile ("" when it does);
`evaluate(expr, variables)` runs it on JSON values (compiled programs are cached by text)
and returns its value as Python (bool, str, ...), raising `CelError` when it fails (a
missing field, a type error). Pure; the library is cel-python (Google's CEL, in Python).
"""

from __future__ import annotations

import functools
from typing import Any

import celpy


class CelError(ValueError):
    """An expression that does not compile or fails at evaluation."""


@functools.lru_cache(maxsize=1024)
def _program(expr: str) -> Any:
    env = celpy.Environment()
    try:
        return env.program(env.compile(expr))
    except celpy.CELParseError as e:
        raise CelError(f"ERROR: <input>:{e.line}:{e.column}: Syntax error") from None
    except Exception as e:  # noqa: BLE001 - any compiler complaint is the expression's
        raise CelError(str(e)) from None


def compile_error(expr: str) -> str:
    try:
        _program(expr)
    except CelError as e:
        return str(e)
    return ""


def evaluate(expr: str, variables: dict[str, Any]) -> Any:
    prg = _program(expr)
    try:
        out = prg.evaluate({k: celpy.json_to_cel(v) for k, v in variables.items()})
    except celpy.CELEvalError as e:
        raise CelError(str(e.args[0]) if e.args else str(e)) from None
    except Exception as e:  # noqa: BLE001 - evaluation errors of any kind are the expression's
        raise CelError(str(e)) from None
    if isinstance(out, celpy.CELEvalError):
        raise CelError(str(out.args[0]) if out.args else str(out))
    return bool(out) if isinstance(out, celpy.celtypes.BoolType) else out
