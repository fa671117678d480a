"""The target seam: the system under test, as the harness sees it.

A :class:`Target` answers one question for the evaluation stage: given a fake
machine, an environment, a layer and mocked ``is_supported()`` results (a
:class:`Query`), what does this engine's NVFP4 selection do? The answer is an
:class:`Outcome`: the chosen backend (by its matrix id and its class name) or
the error, and, where the engine exposes one, the rule that decided and every
candidate's verdict. A target that exposes no decision record leaves ``rule``
and ``candidates`` as ``None``; the comparison then checks outcomes only and
the report says so, instead of inventing a rule.

How a target installs the fake platform, applies the environment and mocks
support is its own business: this project's kernels take them as arguments
(:mod:`harness.targets.native`), vLLM needs its platform object replaced
before import and its variables in ``os.environ`` (:mod:`harness.targets.vllm`).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from harness.errors import Problem

if TYPE_CHECKING:
    from harness.load.matrix import Matrix
    from harness.models import LayerSpec
    from kernels.platform import Platform

__all__ = ["Outcome", "OutcomeKind", "Query", "Target"]

OutcomeKind = Literal["backend", "error", "invalid-env", "crash"]


@dataclasses.dataclass(frozen=True)
class Query:
    """One selection to perform.

    Attributes:
        platform: the (fake) machine.
        env: the selection inputs that are set (variables, and options such as
            ``--linear-backend``); nothing else of the process environment counts.
        layer: the layer to implement.
        mocks: backend id -> forced ``is_supported()`` result ``(ok, reason)``.
    """

    platform: Platform
    env: Mapping[str, str]
    layer: LayerSpec
    mocks: Mapping[str, tuple[bool, str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the selection did for one query.

    ``kind`` is ``backend``, ``error`` (nothing could be selected, a message
    says why), ``invalid-env`` (a variable's value was refused) or ``crash``
    (anything else raised: always a failure). ``rule`` and ``candidates`` are
    ``None`` when the target does not expose them.
    """

    kind: OutcomeKind
    backend: str | None = None
    kernel: str | None = None
    rule: str | None = None
    error: str | None = None
    error_type: str | None = None
    candidates: tuple[tuple[str, str], ...] | None = None
    record: Any = None
    messages: tuple[str, ...] = ()
    entry: str = "decide"
    #: what the entry point logged, ``(level, message)`` from INFO up; ``None``
    #: when the target does not observe its log
    logged: tuple[tuple[int, str], ...] | None = None

    @property
    def has_record(self) -> bool:
        return self.candidates is not None

    def summary(self) -> str:
        by = f" by rule {self.rule}" if self.rule else ""
        if self.kind == "backend":
            return f"backend {self.backend}{by}"
        if self.kind == "error":
            return f"error{by}: {first_line(self.error)}"
        if self.kind == "invalid-env":
            return f"{self.error_type or 'invalid environment'}: {first_line(self.error)}"
        return f"crash: {first_line(self.error)}"

    def record_lines(self) -> list[str]:
        """The decision record as text (or the log lines, for a target without one)."""
        if self.record is not None and hasattr(self.record, "format"):
            return str(self.record.format()).splitlines()
        return [f"log: {m}" for m in self.messages]


def first_line(text: str | None) -> str:
    return text.splitlines()[0] if text else ""


class Target(abc.ABC):
    """A system under test: one engine's NVFP4 selection.

    Subclasses set :attr:`name` (the id a matrix's ``target.name`` and
    ``--target`` use) and implement :meth:`evaluate`. Third-party targets are
    registered under the entry-point group ``nvfp4_matrix.targets``.
    """

    #: the target id
    name: ClassVar[str]
    #: one line for ``--help`` and reports
    description: ClassVar[str] = ""
    #: does :meth:`evaluate` report the deciding rule and each candidate's verdict?
    decision_record: ClassVar[bool] = False
    #: does the target report what its selection logs (``Outcome.logged``), on some entry
    #: point? Golden ``warnings:`` need it; without it they are a problem, never skipped.
    observes_log: ClassVar[bool] = False

    def version(self) -> str | None:
        """The installed version of the system under test, when it has one."""
        return None

    def describe(self) -> str:
        version = self.version()
        return f"{self.name} {version}" if version else self.name

    def default_matrix(self, root: Path) -> Sequence[Path]:
        """The matrix files that describe this target (as installed), under ``root``.

        Raises :class:`~harness.errors.UsageError` when none does.
        """
        raise NotImplementedError(f"target {self.name} has no default matrix: name the files")

    def check_matrix(self, matrix: Matrix) -> list[Problem]:
        """Problems with ``matrix`` as a description of this target (its backends, classes)."""
        return []

    @abc.abstractmethod
    def evaluate(self, query: Query, matrix: Matrix) -> Outcome:
        """Run the selection for ``query`` on fake hardware; never raises for a bad selection."""
