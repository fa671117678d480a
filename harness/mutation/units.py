"""Which function or attribute a line of a module belongs to: the unit a mutant is named after.

Mutants are kept inside the selection code by unit (``[mutation.scope]`` of
``mutation/cosmic-ray.toml`` names them with fnmatch patterns), and named in
reports by unit, so that an equivalent stays listed across unrelated edits.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterable, Sequence

__all__ = ["annotation_spans", "in_annotation", "in_scope", "unit_at", "units_of"]


def units_of(source: str) -> list[tuple[int, int, str]]:
    """``(first line, last line, qualified name)`` of every unit of a module.

    A unit is a function or method (decorators included; nested functions and
    lambdas belong to it), or a class- or module-level statement, named after
    the attribute it assigns (``Class.ATTR``) or ``<module>``/``Class.<body>``.
    """
    out: list[tuple[int, int, str]] = []

    def walk(body: Sequence[ast.stmt], prefix: str) -> None:
        for node in body:
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            last = node.end_lineno or node.lineno
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((first, last, prefix + node.name))
            elif isinstance(node, ast.ClassDef):
                out.append((first, node.lineno, prefix + node.name))
                walk(node.body, prefix + node.name + ".")
            else:
                out.append((first, last, prefix + _assigned_name(node)))

    walk(ast.parse(source).body, "")
    return out


def _assigned_name(node: ast.stmt) -> str:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    return names[0] if names else "<body>"


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the annotations are, when the module never evaluates them.

    Under ``from __future__ import annotations`` an annotation is a string that
    nothing in the selection reads, so a mutant inside one (``str | None`` ->
    ``str % None``) is equivalent by construction: the lane does not generate
    them (it counts them). Empty when the module lacks the future import.
    """
    tree = ast.parse(source)
    lazy = any(
        isinstance(node, ast.ImportFrom) and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    if not lazy:
        return []
    spans = []
    for node in ast.walk(tree):
        found: list[ast.expr | None] = []
        if isinstance(node, ast.arg):
            found.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
        for ann in found:
            if ann is not None:
                spans.append(((ann.lineno, ann.col_offset),
                              (ann.end_lineno or ann.lineno, ann.end_col_offset or 0)))
    return spans


def in_annotation(spans: Sequence[tuple[tuple[int, int], tuple[int, int]]],
                  pos: tuple[int, int]) -> bool:
    return any(start <= tuple(pos) < end for start, end in spans)


def unit_at(units: Iterable[tuple[int, int, str]], line: int) -> str:
    """The innermost unit holding ``line`` (``<module>`` when none does)."""
    best: tuple[int, str] | None = None
    for first, last, name in units:
        if first <= line <= last and (best is None or last - first <= best[0]):
            best = (last - first, name)
    return best[1] if best else "<module>"


def in_scope(unit: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(unit, p) for p in patterns)
