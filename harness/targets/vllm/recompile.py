"""Functions of an imported module, compiled anew from changed text: the one recompiler.

A mutant of vLLM's selection (a real regression put back, or a mutation
lane's stock mutant) is the module's own text, changed, with its functions
defined again against the *imported* module's globals: the new functions see
vLLM as it is loaded on the fake platform, the module itself is never
modified, and tracebacks point at the installed file's own lines.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

__all__ = ["RecompileError", "compile_functions"]


class RecompileError(ValueError):
    """The text does not define the functions asked for."""


def compile_functions(
    source: str | ast.Module, filename: str, names: Sequence[str], module_globals: dict[str, Any]
) -> dict[str, Any]:
    """The functions ``names`` defined anew from ``source`` (a module's text or tree).

    Their ``def`` statements (decorators and defaults included, under the source's own
    ``__future__`` imports) run in a fresh namespace whose globals are ``module_globals``.
    Line numbers are the source's own: pass the text at its place in ``filename`` (other
    lines blanked or commented), or a tree whose line numbers were moved there.
    """
    tree = ast.parse(source) if isinstance(source, str) else source
    body: list[ast.stmt] = [
        n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"
    ]
    defined = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    missing = sorted(set(names) - {n.name for n in defined})
    if missing:
        raise RecompileError(f"{filename}: no function {', '.join(missing)} in the text to compile")
    namespace: dict[str, Any] = {}
    code = compile(ast.Module(body=[*body, *defined], type_ignores=[]), filename, "exec")
    exec(code, module_globals, namespace)
    return {name: namespace[name] for name in names}
