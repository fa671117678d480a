"""Real regressions of vLLM's selection, put back into the installed release's own function.

``vllm-39129``: vLLM PR #39129 moved the NVFP4 backends into kernel classes and
dropped the ``VLLM_BATCH_INVARIANT`` branch; #39820 restored it. No PyPI release
shipped the regression, so it is rebuilt: the installed
``init_nvfp4_linear_kernel`` with #39820's hunk reversed (the branch removed,
the next ``elif`` made an ``if``), compiled against the imported module.
"""

from __future__ import annotations

import ast
import inspect
import types
from collections.abc import Callable
from typing import Any

from harness.targets.protocol import MutantInfo
from harness.targets.vllm.recompile import compile_functions

__all__ = ["REGRESSIONS", "MutantShapeError", "reverse_39820"]


class MutantShapeError(ValueError):
    """The installed selection function does not have the shape a regression rewrites."""


def _is_batch_invariant_test(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "VLLM_BATCH_INVARIANT"
        and isinstance(node.value, ast.Name)
        and node.value.id == "envs"
    )


def reverse_39820(func: Callable[..., Any]) -> Callable[..., Any]:
    """Rebuild ``func`` from its source without its ``if envs.VLLM_BATCH_INVARIANT:`` branch.

    The function body must hold exactly one top-level ``if envs.VLLM_BATCH_INVARIANT:``
    statement, followed by an ``elif``; that ``elif`` becomes the statement. Raises
    :class:`MutantShapeError` otherwise.
    """
    if not isinstance(func, types.FunctionType):
        raise MutantShapeError(f"{func!r} is not a Python function")
    filename = inspect.getsourcefile(func) or "<unknown>"
    try:
        source = inspect.getsource(func)
    except OSError as exc:
        raise MutantShapeError(f"cannot read the source of {func.__qualname__}: {exc}") from exc
    tree = ast.parse(source)
    fdef = tree.body[0]
    if not isinstance(fdef, ast.FunctionDef) or fdef.name != func.__name__:
        raise MutantShapeError(f"{filename}: the source of {func.__name__} is not a plain def")
    hits = [
        index
        for index, stmt in enumerate(fdef.body)
        if isinstance(stmt, ast.If) and _is_batch_invariant_test(stmt.test)
    ]
    where = f"{filename}:{func.__code__.co_firstlineno}"
    if len(hits) != 1:
        raise MutantShapeError(
            f"{where}: {func.__name__} has {len(hits)} top-level "
            "'if envs.VLLM_BATCH_INVARIANT:' statements; the vllm-39129 mutant needs exactly one "
            "(a release without the batch-invariant branch has nothing to remove)"
        )
    branch = fdef.body[hits[0]]
    assert isinstance(branch, ast.If)
    if len(branch.orelse) != 1 or not isinstance(branch.orelse[0], ast.If):
        raise MutantShapeError(
            f"{where}: the VLLM_BATCH_INVARIANT branch of {func.__name__} at line "
            f"{func.__code__.co_firstlineno + branch.lineno - 1} is not followed by an elif"
        )
    fdef.body[hits[0]] = branch.orelse[0]
    ast.increment_lineno(tree, func.__code__.co_firstlineno - 1)
    return compile_functions(tree, filename, [func.__name__], func.__globals__)[func.__name__]


#: name -> (what it is, the rebuild of the installed selection function).
REGRESSIONS: dict[str, tuple[MutantInfo, Callable[[Callable[..., Any]], Callable[..., Any]]]] = {
    "vllm-39129": (
        MutantInfo(
            "vllm-39129",
            "vLLM's init_nvfp4_linear_kernel with the #39820 hunk reversed (no "
            "VLLM_BATCH_INVARIANT branch)",
            "vLLM #39129 moved NVFP4 backends into kernel classes and dropped the batch-invariant "
            "branch; #39820 restored it; no vLLM test noticed in between",
            ("b200-VLLM_BATCH_INVARIANT=1", "VLLM_BATCH_INVARIANT"),
        ),
        reverse_39820,
    ),
}
