"""Package layout rules, checked on the source tree by walking every module's AST.

* no import cycles between the package's modules (every import counts, also those
  inside functions and under ``TYPE_CHECKING``);
* ``operators/`` import no streaming or Kafka library (pure numpy/Python);
* no two modules share a basename across layers (one name per idea);
* no private name (``_x``) is imported from another module of the package;
* every module declares ``__all__`` and every name in it exists.

Module names come from the ``package-dir`` mapping in ``pyproject.toml``
(``flows/`` is ``phenoflow.flows``, ...).
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STREAMING_LIBS = {"bytewax", "confluent_kafka", "kafka", "quixstreams"}


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Module name → source file, for every module of the installed package."""
    mapping = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    out: dict[str, Path] = {}
    for pkg, folder in mapping.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            # a subfolder mapped separately wins (phenoflow.flows is flows/, not phenoflow/flows)
            out.setdefault(".".join([pkg, *parts]), path)
    return out


MODULES = modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def imports(name: str) -> list[tuple[str, list[str]]]:
    """Every import of one module as (absolute module, imported names); ``import x`` has no names."""
    is_pkg = MODULES[name].name == "__init__.py"
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, [a.name for a in node.names]))
    return out


def internal(target: str) -> str | None:
    """The package module an import target resolves to (longest known prefix), or None."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name in MODULES:
        for mod, names in imports(name):
            targets = [f"{mod}.{n}" if f"{mod}.{n}" in MODULES else mod for n in names] or [mod]
            for t in targets:
                hit = internal(t)
                if hit and hit != name:
                    graph[name].add(hit)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_known_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_module_map_follows_package_dir() -> None:
    assert MODULES["phenoflow.flows.logic"] == ROOT / "flows" / "logic.py"
    assert MODULES["phenoflow.core.state"] == ROOT / "phenoflow" / "core" / "state.py"
    assert "phenoflow.operators.hourly.aggregator" in MODULES
    # the graph sees imports inside functions too (cmd_data imports the simulator lazily)
    assert "phenoflow.simulate.simulator" in import_graph()["phenoflow.cli.cmd_data"]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles: " + "; ".join(" ↔ ".join(c) for c in found)


def test_operators_import_no_streaming_library() -> None:
    bad = [f"{name} imports {mod}" for name in MODULES if name.startswith("phenoflow.operators")
           for mod, _ in imports(name) if mod.split(".")[0] in STREAMING_LIBS]
    assert bad == []


def test_no_duplicate_basenames_across_layers() -> None:
    layers: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        if path.name != "__init__.py":
            layers[path.stem].add(name)
    assert {stem: sorted(names) for stem, names in layers.items() if len(names) > 1} == {}


def test_no_private_names_imported_across_modules() -> None:
    bad = []
    for name in MODULES:
        for mod, names in imports(name):
            source = internal(mod)
            if source is None or source == name:
                continue
            bad += [f"{name}: from {mod} import {n}" for n in names if n.startswith("_") and not n.startswith("__")]
    assert bad == []


def bound_names(body: list[ast.stmt]) -> set[str]:
    """Names a module's top level binds: defs, classes, assignments, imports (also inside if/try)."""
    out: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                out |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.If, ast.Try)):
            out |= bound_names(node.body + node.orelse + getattr(node, "finalbody", []))
    return out


def declared_all(name: str) -> list[str] | None:
    """The literal ``__all__`` of a module (None if it declares none)."""
    for node in TREES[name].body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                return list(ast.literal_eval(node.value))
    return None


def test_all_checker_sees_missing_names() -> None:
    tree = ast.parse("import os\nfrom a import b as c\nX, Y = 1, 2\nif True:\n    def f(): pass\nclass K: pass")
    assert bound_names(tree.body) == {"os", "c", "X", "Y", "f", "K"}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_declares_all(name: str) -> None:
    names = declared_all(name)
    assert names is not None, f"{MODULES[name]} declares no __all__"
    missing = sorted(set(names) - bound_names(TREES[name].body))
    assert missing == [], f"{name}.__all__ names what the module does not define: {missing}"
    assert len(set(names)) == len(names), f"{name}.__all__ has duplicates"
