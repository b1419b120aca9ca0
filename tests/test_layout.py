"""The shape of the source tree: short functions, and no import cycle inside a package.

(a) No function or method in src/k8py is longer than `MAX_FUNCTION_LINES` lines, from
its `def` line to its last line (decorators not counted). (b) Within each package, its
modules (and its subpackages, each taken as a whole) import one another without a
cycle; every `import` counts: at the top, inside functions, under `if TYPE_CHECKING:`.
Between the components themselves (the subpackages of `k8py`) the layer contracts of
import-linter rule instead. Everything is read with `ast`; nothing is imported.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

MAX_FUNCTION_LINES = 80
SRC = Path(__file__).resolve().parent.parent / "src"
ROOT_PACKAGE = "k8py"


# --- the source tree -------------------------------------------------------------------


@functools.cache
def _modules() -> dict[str, Path]:
    """Every module of k8py by dotted name (a package by its own name: its __init__.py)."""
    out: dict[str, Path] = {}
    for path in sorted((SRC / ROOT_PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


@functools.cache
def _tree(module: str) -> ast.Module:
    return ast.parse(_modules()[module].read_text(), filename=str(_modules()[module]))


def _packages() -> list[str]:
    return sorted(m for m, p in _modules().items() if p.name == "__init__.py" and m != ROOT_PACKAGE)


# --- (a) function length ---------------------------------------------------------------


def _functions(node: ast.AST, prefix: str = "") -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, node) of every function and method below `node`, nested ones too."""
    out: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append((prefix + child.name, child))
            out.extend(_functions(child, f"{prefix}{child.name}."))
        elif isinstance(child, ast.ClassDef):
            out.extend(_functions(child, f"{prefix}{child.name}."))
        else:
            out.extend(_functions(child, prefix))
    return out


@functools.cache
def _long_functions() -> dict[str, str]:
    """`file::qualname` -> "file:line: qualname is N lines" for each function over the limit."""
    out: dict[str, str] = {}
    for module, path in _modules().items():
        rel = path.relative_to(SRC).as_posix()
        for name, fn in _functions(_tree(module)):
            length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if length > MAX_FUNCTION_LINES:
                out[f"{rel}::{name}"] = f"src/{rel}:{fn.lineno}: {name} is {length} lines"
    return out


def test_no_function_is_longer_than_the_limit() -> None:
    offenders = [msg for _key, msg in sorted(_long_functions().items())]
    assert not offenders, (f"functions longer than {MAX_FUNCTION_LINES} lines (split them into named steps):\n"
                           + "\n".join(offenders))


# --- (b) import cycles -----------------------------------------------------------------


def _imported(module: str) -> set[str]:
    """The k8py modules `module` imports anywhere in its body; `from p import m` counts as
    an import of the module p.m when there is one, else of p."""
    is_package = _modules()[module].name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in _modules() else base)
    return {m for m in out if m in _modules()}


def _node(package: str, module: str) -> str | None:
    """What `module` is within `package`: the package itself, one of its modules, or one of
    its subpackages (all of it); None when it lies outside."""
    if module == package:
        return module
    if not module.startswith(package + "."):
        return None
    return f"{package}.{module[len(package) + 1:].split('.')[0]}"


def _graph(package: str) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in _modules():
        src = _node(package, module)
        if src is None:
            continue
        graph.setdefault(src, set())
        for target in _imported(module):
            dst = _node(package, target)
            if dst is not None and dst != src:
                graph[src].add(dst)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def _one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """An import path around the component, from its first module back to it."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    todo = [start]
    while todo:  # breadth first, so that the path shown is a shortest one
        v = todo.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                todo.append(w)
    raise AssertionError(f"{component} is not a cycle")


def _short(package: str, module: str) -> str:
    return module[len(package) + 1:] if module != package else "__init__"


@pytest.mark.parametrize("package", _packages())
def test_no_import_cycle_within_the_package(package: str) -> None:
    graph = _graph(package)
    found = []
    for component in _cycles(graph):
        path = " -> ".join(_short(package, m) for m in _one_cycle(graph, component))
        found.append(f"{package}: {', '.join(_short(package, m) for m in component)} (e.g. {path})")
    assert not found, "import cycles between the modules of a package:\n" + "\n".join(found)
