"""The harness reads as stages: no import cycle, and no stage reaching into a later one.

Imports are counted at any depth, those under ``if TYPE_CHECKING`` included (a cycle
there is a cycle of the design, whatever the interpreter does at run time). A
``from package import module`` is an import of the module, not of the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import ROOT

PACKAGE = ROOT / "harness"
#: The packages checked for import cycles.
PACKAGES = ("harness", "kernels")

#: stage of each top-level part of the package; a module may import only from
#: its own stage or an earlier one (lower number).
STAGES = {
    "harness": 0,  # the package root: __init__, errors, models
    "harness.errors": 0,
    "harness.models": 0,
    "harness.rules": 1,
    "harness.load": 2,
    "harness.targets": 3,
    "harness.evaluate": 4,
    "harness.output": 5,
    "harness.plugin": 6,
    "harness.cli": 6,
    "harness.mutation": 6,
    "harness.diff": 5,
    "harness.__main__": 7,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _stage(module: str) -> int:
    best = ""
    for prefix in STAGES:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return STAGES[best]


def _imports(path: Path, packages: tuple[str, ...] = ("harness",)) -> set[str]:
    """Every module of ``packages`` that ``path`` imports, at any depth (TYPE_CHECKING too)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in packages:
                modules = [
                    f"{node.module}.{alias.name}"
                    for alias in node.names
                    if (ROOT / (f"{node.module}.{alias.name}".replace(".", "/") + ".py")).exists()
                    or (ROOT / f"{node.module}.{alias.name}".replace(".", "/")).is_dir()
                ]
                # `from package import module` imports the module; anything else the package
                found |= set(modules) if len(modules) == len(node.names) else {node.module, *modules}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in packages}
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.fixture(scope="module")
def whole_graph() -> dict[str, set[str]]:
    """Every module of every package, with the imports among them."""
    return {
        _module_name(p): _imports(p, PACKAGES)
        for package in PACKAGES
        for p in sorted((ROOT / package).rglob("*.py"))
    }


def test_no_stage_imports_a_later_one(graph: dict[str, set[str]]) -> None:
    backwards = [
        f"{module} (stage {_stage(module)}) imports {target} (stage {_stage(target)})"
        for module, targets in graph.items()
        for target in sorted(targets)
        if _stage(target) > _stage(module)
    ]
    assert not backwards, "\n".join(backwards)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> imported modules), or ``None``."""
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue
            if state.get(target) == 1:
                return trail[trail.index(target) :] + [target]
            if state.get(target) is None:
                found = visit(target, trail + [target])
                if found:
                    return found
        state[module] = 2
        return None

    for module in graph:
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_no_import_cycle(whole_graph: dict[str, set[str]]) -> None:
    cycle = find_cycle(whole_graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_kernels_never_imports_harness() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "kernels").rglob("*.py")
        if any(
            isinstance(n, (ast.Import, ast.ImportFrom))
            and any(
                (getattr(n, "module", None) or "").startswith("harness")
                or a.name.startswith("harness")
                for a in n.names
            )
            for n in ast.walk(ast.parse(p.read_text()))
        )
    ]
    assert not offenders
