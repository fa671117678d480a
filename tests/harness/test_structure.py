"""The shape of the code: modules of a readable size, and stages that never name a target.

The evaluation, output, loading and entry-point stages ask a target what it
can do (:class:`harness.targets.protocol.Capabilities`); they never import a
concrete target, name its class, or compare a target's id with a literal.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.targets import BUILTIN_TARGETS
from tests.support.paths import ROOT

#: The most lines a module may have (Triton kernel files aside: a kernel is one unit).
MAX_LINES = 450
#: The parts of the harness that must not know which target they run.
TARGET_BLIND = ("evaluate", "output", "cli", "plugin", "load", "rules", "diff")
CONCRETE_MODULES = ("harness.targets.project", "harness.targets.vllm")
CONCRETE_CLASSES = ("ProjectTarget", "VllmTarget")


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _is_triton_kernel_file(path: Path) -> bool:
    return "@triton.jit" in path.read_text()


@pytest.mark.parametrize("path", _python_files("harness", "kernels"), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_stay_readable(path: Path) -> None:
    if path.is_relative_to(ROOT / "kernels" / "gemm") and _is_triton_kernel_file(path):
        pytest.skip("a Triton kernel file: the kernel is one unit")
    lines = path.read_text().count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES})"


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    ids = set(BUILTIN_TARGETS)
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(CONCRETE_MODULES):
                found.append(f"{where}: imports {node.module}")
        elif isinstance(node, ast.Import):
            found += [f"{where}: imports {a.name}" for a in node.names
                      if a.name.startswith(CONCRETE_MODULES)]
        elif isinstance(node, ast.Name) and node.id in CONCRETE_CLASSES:
            found.append(f"{where}: names {node.id}")
        elif isinstance(node, ast.Compare):
            constants = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
            constants += [e.value for c in node.comparators if isinstance(c, (ast.Tuple, ast.List, ast.Set))
                          for e in c.elts if isinstance(e, ast.Constant)]
            found += [f"{where}: compares with the target id {v!r}" for v in constants if v in ids]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "get_target":
            found += [f"{where}: asks for target {a.value!r} by name" for a in node.args
                      if isinstance(a, ast.Constant) and a.value in ids]
    return found


def test_the_stages_never_name_a_target() -> None:
    offences = [o for p in _python_files(*(f"harness/{f}" for f in TARGET_BLIND)) for o in _offences(p)]
    assert not offences, "\n".join(offences)


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = ROOT / "harness" / "cli" / "_structure_probe.py"
    bad.write_text(
        "from harness.targets.vllm import VllmTarget\n"
        "def f(target):\n"
        "    if target.name == 'vllm' or target.name in ('kernels',):\n"
        "        return isinstance(target, VllmTarget)\n"
        "    return get_target('kernels')\n"
    )
    try:
        offences = _offences(bad)
    finally:
        bad.unlink()
    assert sorted(o.split(": ", 1)[1] for o in offences) == sorted([
        "imports harness.targets.vllm",
        "compares with the target id 'vllm'",
        "compares with the target id 'kernels'",
        "names VllmTarget",
        "asks for target 'kernels' by name",
    ])
