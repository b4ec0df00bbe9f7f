"""The shape of the tree: every module imports on its own, imports point down the layers of
docs/DESIGN.md, no import cycle, no module over 400 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("session_store", "projections")
MAX_LINES = 400

LAYERS = (
    ("session_store.errors", "session_store.gc_pause", "session_store.logs",
     "session_store.futures"),
    ("session_store.domain",),
    ("session_store.storage",),
    ("session_store.log",),
    ("projections",),
    ("session_store.reads", "session_store.replay", "session_store.audit",
     "session_store.hooks", "session_store.appending", "session_store.store",
     "session_store.sync", "session_store"),
    ("session_store.cli", "session_store.adapters", "session_store.web",
     "session_store.compat"),
)
"""Lowest first. A module may import its own layer and the layers below it."""
ENTRY_POINTS_MAY_NOT_IMPORT = ("session_store.storage", "session_store.log",
                               "session_store.reads", "session_store.replay")
"""The command line and the adapters call the facade, not what lies under it."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for package in PACKAGES
           for path in sorted((ROOT / package).rglob("*.py"))}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _layer(name: str) -> int:
    found = [(len(prefix), rank) for rank, prefixes in enumerate(LAYERS)
             for prefix in prefixes if _within(name, prefix)]
    assert found, f"{name} is in no layer of LAYERS: add it"
    return max(found)[1]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, *, deferred: bool) -> set[str]:
    """The project modules `module` imports when it is imported, and with `deferred` also
    those its functions import when they run (typing-only imports never run)."""
    found: set[str] = set()
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if not deferred and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join([*package.split(".")[:len(package.split(".")) - child.level
                                                        + 1], *([base] if base else [])])
                for alias in child.names:  # a submodule, else a name of the module `base`
                    submodule = f"{base}.{alias.name}"
                    found.add(submodule if submodule in MODULES else base)
            visit(child)

    visit(tree)
    return {name for name in found if name in MODULES and name != module}


TREES = {name: ast.parse(path.read_text()) for name, path in MODULES.items()}
GRAPH = {name: _imports(tree, name, deferred=False) for name, tree in TREES.items()}
"""What importing each module imports: where a cycle would bite."""
EVERY_IMPORT = {name: _imports(tree, name, deferred=True) for name, tree in TREES.items()}
"""Every import a module makes, at its top or in a function: what the layers constrain."""


def test_the_tree_is_read() -> None:
    assert {"session_store.store", "session_store.domain.lifecycle",
            "session_store.storage.sqlite", "projections.heads"} <= set(GRAPH)
    assert "session_store.domain.events" in GRAPH["session_store.storage.codec"]


def test_packages_import_lazily() -> None:
    """Importing any module runs its packages' `__init__` first: they import nothing of the
    project when they run, so no module drags the facade in by its path."""
    eager = {name: sorted(GRAPH[name]) for name, path in MODULES.items()
             if path.name == "__init__.py" and GRAPH[name]}
    assert eager == {}


def test_imports_point_down_the_layers() -> None:
    upward = [f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
              for module, targets in EVERY_IMPORT.items() for target in targets
              if _layer(target) > _layer(module)]
    assert upward == []


def test_entry_points_call_the_facade() -> None:
    reaching = [f"{module} imports {target}" for module, targets in EVERY_IMPORT.items()
                if _layer(module) == len(LAYERS) - 1 for target in targets
                if any(_within(target, below) for below in ENTRY_POINTS_MAY_NOT_IMPORT)]
    assert reaching == []


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def walk(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (found := walk(target)) is not None:
                return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(GRAPH):
        if name not in state and (found := walk(name)) is not None:
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycle() is None, " -> ".join(_cycle() or [])


def test_a_cycle_would_be_found() -> None:
    """The check above can fail: a graph with a back edge has a cycle."""
    GRAPH["session_store.domain.ids"].add("session_store.domain.events")
    try:
        assert _cycle() == ["session_store.domain.events", "session_store.domain.ids",
                            "session_store.domain.events"]
    finally:
        GRAPH["session_store.domain.ids"].discard("session_store.domain.events")


def test_no_module_is_over_400_lines() -> None:
    long = {name: lines for name, path in MODULES.items()
            if (lines := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def _import_alone(module: str) -> tuple[str, int, str]:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    return module, done.returncode, done.stderr[-2000:]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports_on_its_own(package: str) -> None:
    """Each in a fresh interpreter: no module relies on another having been imported first."""
    names = [name for name in MODULES if _within(name, package)
             and not name.endswith(".__main__")]  # that one runs the program, by design
    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [(name, err) for name, code, err in pool.map(_import_alone, names) if code]
    assert failed == []
