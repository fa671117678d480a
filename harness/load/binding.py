"""Binding a matrix to the target it describes: what depends on the target, checked with file and line.

The format says how a selection input or a package is spelled, not which ones
exist: each target brings its own vocabulary (the variables and engine
options its selection reads, the optional packages its fake machines may
have), so an engine with other variable names plugs in without editing the
format. When a matrix is bound to a target (:class:`~harness.evaluate.session.Session`),
every name it uses must be in that vocabulary, and, for a target whose
profiles declare its support, each profile's ``supported`` list must agree with
the backends' rules (:mod:`harness.load.declared`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from harness.errors import Problem
from harness.load.declared import check_declared_support
from harness.load.problems import closest
from harness.load.yamlsrc import PathKey, Source

if TYPE_CHECKING:
    from harness.load.matrix import Matrix

__all__ = ["NamesOf", "binding_problems"]


class NamesOf(Protocol):
    """What a target understands (:class:`~harness.targets.protocol.Vocabulary`)."""

    @property
    def inputs(self) -> tuple[str, ...]: ...

    @property
    def packages(self) -> tuple[str, ...]: ...


def binding_problems(
    matrix: Matrix, target: str, vocabulary: NamesOf, declared_support: bool
) -> list[Problem]:
    """Every problem with ``matrix`` as a description of target ``target``."""
    problems: list[Problem] = []
    inputs, packages = vocabulary.inputs, vocabulary.packages

    def need_input(name: str, src: Source, path: PathKey) -> None:
        if name in inputs:
            return
        close = closest(name, inputs)
        hint = f"; did you mean {close!r}?" if close else ""
        problems.append(
            src.problem(
                path,
                f"unknown selection input {name!r}{hint} (target {target} reads: "
                f"{', '.join(inputs)})",
            )
        )

    def need_packages(names: Sequence[str], src: Source, path: PathKey) -> None:
        for index, name in enumerate(names):
            if name not in packages:
                problems.append(
                    src.problem(
                        path + (index,),
                        f"{name!r} is not one of: {', '.join(packages)} (the packages target "
                        f"{target} knows)",
                    )
                )

    for pid, profile in matrix.profiles.items():
        src, path = matrix.source_of("profile", pid)
        need_packages(profile.packages, src, path + ("packages",))
    for name, spec in matrix.backends.items():
        src, path = matrix.source_of("backend", name)
        for index, support in enumerate(spec.support):
            need_packages(support.packages, src, path + ("support", index, "packages"))
    if matrix.precedence is not None:
        src, path = matrix.source_of("precedence", "")
        for index, rule in enumerate(matrix.precedence.forcing):
            need_input(rule.variable, src, path + ("forcing", index, "variable"))
        need_input(matrix.precedence.auto.disabled_by, src, path + ("auto", "disabled_by"))
    for sweep in matrix.sweeps:
        src, path = matrix.source_of("sweep", sweep.id)
        for variable in sweep.cross:
            need_input(variable, src, path + ("cross", variable))
        for index, env in enumerate(sweep.envs):
            for variable in env:
                need_input(variable, src, path + ("envs", index, variable))
        for index, names in enumerate(sweep.packages or []):
            need_packages(names, src, path + ("packages", index))
    for case in matrix.cases:
        src, path = matrix.source_of("case", case.id)
        for variable in case.env:
            need_input(variable, src, path + ("env", variable))
        need_packages(case.packages or [], src, path + ("packages",))
    if not problems and declared_support:
        check_declared_support(matrix, problems)
    return problems
