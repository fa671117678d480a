"""Stage 3, targets: the systems under test.

Built in: ``kernels`` (this project's kernels, the default:
:mod:`harness.targets.project`) and ``vllm`` (the installed vLLM's
``init_nvfp4_linear_kernel``: :mod:`harness.targets.vllm`). Every other stage
asks a target what it can do (:mod:`harness.targets.protocol`), never which
one it is. Another engine plugs in
without a fork through the entry-point group ``nvfp4_matrix.targets``: an
entry point named after the target whose object is a :class:`Target` subclass
(or any callable returning a :class:`Target`), e.g. in its ``pyproject.toml``::

    [project.entry-points."nvfp4_matrix.targets"]
    myengine = "myengine_nvfp4_target:MyEngineTarget"
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from harness.errors import UsageError
from harness.targets.protocol import (
    CandidateRecord,
    Capabilities,
    CiLane,
    DecisionRecord,
    MutantInfo,
    Outcome,
    Query,
    Target,
    Vocabulary,
)

__all__ = [
    "BUILTIN_TARGETS",
    "DEFAULT_TARGET",
    "ENTRY_POINT_GROUP",
    "CandidateRecord",
    "Capabilities",
    "CiLane",
    "DecisionRecord",
    "MutantInfo",
    "Outcome",
    "Query",
    "Target",
    "Vocabulary",
    "available_targets",
    "get_target",
]

ENTRY_POINT_GROUP = "nvfp4_matrix.targets"
DEFAULT_TARGET = "kernels"
#: target id -> "module:attribute" (imported only when that target is asked for).
BUILTIN_TARGETS: dict[str, str] = {
    "kernels": "harness.targets.project:ProjectTarget",
    "vllm": "harness.targets.vllm:VllmTarget",
}


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_targets() -> list[str]:
    """Every target id: the built-in ones, then the plugins'."""
    return list(BUILTIN_TARGETS) + sorted(n for n in _plugins() if n not in BUILTIN_TARGETS)


def _factory(name: str) -> Callable[..., Any]:
    if name in BUILTIN_TARGETS:
        module, _, attribute = BUILTIN_TARGETS[name].partition(":")
        return getattr(importlib.import_module(module), attribute)
    plugins = _plugins()
    if name not in plugins:
        from harness.load.problems import unknown_name

        raise UsageError(unknown_name("target", name, available_targets()))
    try:
        return plugins[name].load()
    except Exception as exc:  # a broken plugin is the plugin's bug: say which one
        raise UsageError(
            f"target {name!r}: entry point {plugins[name].value!r} failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def get_target(name: str | None = None, **options: Any) -> Target:
    """The target called ``name`` (default: this project's kernels), built with ``options``."""
    name = name or DEFAULT_TARGET
    target = _factory(name)(**options)
    if not isinstance(target, Target):
        raise UsageError(
            f"target {name!r}: its entry point built a {type(target).__name__}, not a Target"
        )
    if target.name != name:
        raise UsageError(f"target {name!r}: its entry point built target {target.name!r}")
    if not isinstance(getattr(target, "vocabulary", None), Vocabulary):
        raise UsageError(
            f"target {name!r}: {type(target).__name__} states no vocabulary (a Vocabulary of the "
            "selection inputs it reads and the packages its machines may have)"
        )
    if not isinstance(getattr(target, "capabilities", None), Capabilities):
        raise UsageError(f"target {name!r}: {type(target).__name__}.capabilities is not a "
                         "Capabilities")
    return target
