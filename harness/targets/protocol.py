"""The target protocol: the system under test, as every other stage of the harness sees it.

A :class:`Target` answers one question: given a fake machine, an environment,
a layer and mocked ``is_supported()`` results (a :class:`Query`), what does
this engine's selection do? The answer is an :class:`Outcome`: the chosen
backend or the error, with the decision record where the engine exposes one.

Everything else the harness needs to know about a target, it asks the target
instead of testing its type or name:

* :attr:`Target.vocabulary`: the selection inputs it reads (environment
  variables and engine options, in the order cell ids list them) and the
  optional packages a fake machine may have for it. A matrix describing the
  target may use these names and no other (checked with file and line when
  the matrix is bound to the target).
* :attr:`Target.capabilities`: whether outcomes carry a decision record,
  whether it observes its log, how a cell's variables reach it, whether it
  detects its platform (detection cells), whether it runs on the real
  machine (``explain`` without ``--gpu``, ``reality``), which profiles'
  ``supported`` lists describe it, and which other entry points golden cases
  go through.
* :meth:`Target.mutants` and :meth:`Target.mutant`: its deliberately broken
  variants; :meth:`Target.with_entry`: the same selection through another
  entry point.

A target that does not know how to do something optional says so in its
capabilities, and the session never asks.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from harness.errors import Problem, UsageError

if TYPE_CHECKING:
    from harness.load.matrix import Matrix
    from harness.models import LayerSpec
    from kernels.platform import MachineProbes, Platform

__all__ = [
    "CandidateRecord",
    "Capabilities",
    "CiLane",
    "DecisionRecord",
    "MutantInfo",
    "Outcome",
    "OutcomeKind",
    "Query",
    "Target",
    "Vocabulary",
    "first_line",
]

OutcomeKind = Literal["backend", "error", "invalid-env", "crash"]
#: The prefix that marks an engine option among a vocabulary's inputs (``--linear-backend``).
OPTION_PREFIX = "--"


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """The names a target understands.

    Attributes:
        inputs: the selection inputs the target reads, in the order cell ids
            list them: environment variables (``VLLM_BATCH_INVARIANT``) and
            engine options (``--linear-backend``, written with their dashes).
        packages: the optional packages a fake machine may have for it (what
            its support probes can be told is installed).
    """

    inputs: tuple[str, ...]
    packages: tuple[str, ...]

    @property
    def variables(self) -> tuple[str, ...]:
        """The inputs that live in the process environment."""
        return tuple(name for name in self.inputs if not name.startswith(OPTION_PREFIX))

    @property
    def options(self) -> tuple[str, ...]:
        """The inputs that are engine options."""
        return tuple(name for name in self.inputs if name.startswith(OPTION_PREFIX))

    def ordered(self, env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        """``env``'s pairs in the order of :attr:`inputs` (names it does not know last, sorted)."""
        known = [(name, env[name]) for name in self.inputs if name in env]
        return tuple(known + sorted((k, v) for k, v in env.items() if k not in self.inputs))


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a target can do, so that nothing outside it tests its type.

    Attributes:
        decision_record: outcomes carry the deciding rule and every
            candidate's verdict (otherwise outcomes are compared, never rules).
        observes_log: some entry point reports what the selection logged
            (:attr:`Outcome.logged`); golden ``warnings:`` need it.
        environment: how a cell's variables reach the selection: as a
            ``mapping`` handed to it (then every variable is left in
            ``os.environ`` with a decoy value, which a selection that reads the
            process environment instead reads and fails on), or through the
            ``process`` environment (set to exactly the cell's variables).
        detection: the target detects its platform through
            :func:`~kernels.platform.detect_platform`'s probes, so detection
            cells apply (:meth:`Target.detect`).
        real_machine: it can run on the machine the harness runs on
            (:meth:`Target.real_platform`, :meth:`Target.real_support`):
            ``explain`` without ``--gpu``, ``reality``.
        declared_support: the profiles' ``supported`` lists name this
            target's backends (checked against their rules when the matrix is
            bound; compared with the real machine by ``reality``).
        entries: the entry points :meth:`Target.with_entry` accepts, the
            default first.
        golden_entries: further entry points every golden case also goes
            through, each compared with the same expectation.
    """

    decision_record: bool = False
    observes_log: bool = False
    environment: Literal["mapping", "process"] = "process"
    detection: bool = False
    real_machine: bool = False
    declared_support: bool = False
    entries: tuple[str, ...] = ("select",)
    golden_entries: tuple[str, ...] = ()


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
class CandidateRecord:
    """One candidate's verdict in a decision record."""

    backend: str
    kernel: str
    status: str
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class DecisionRecord:
    """How a selection decided: the rule, the variable behind it, each candidate's verdict.

    ``consulted`` holds the inputs the selection read before deciding, in
    order, with their raw values (``None``: unset), where the engine reports
    them; ``text`` is the record as the engine prints it (``explain`` and
    failure reports show it).
    """

    rule: str
    variable: str | None
    candidates: tuple[CandidateRecord, ...]
    consulted: tuple[tuple[str, str | None], ...] | None = None
    text: str = ""

    def verdicts(self) -> tuple[tuple[str, str], ...]:
        """``(backend, status)`` of every candidate, in the order the rule consulted them."""
        return tuple((c.backend, c.status) for c in self.candidates)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the selection did for one query.

    ``kind`` is ``backend``, ``error`` (nothing could be selected, a message
    says why), ``invalid-env`` (a variable's value was refused) or ``crash``
    (anything else raised: always a failure). ``record`` is ``None`` when the
    target exposes no decision record. ``messages`` are the notes of the
    decision; ``logged`` what the entry point logged, ``(level, message)``
    from INFO up (``None`` when the target does not observe its log);
    ``warned`` the Python warnings it issued, ``(category, message)``.
    """

    kind: OutcomeKind
    backend: str | None = None
    kernel: str | None = None
    error: str | None = None
    error_type: str | None = None
    record: DecisionRecord | None = None
    messages: tuple[str, ...] = ()
    #: the entry point, when it is not the target's first
    entry: str = ""
    logged: tuple[tuple[int, str], ...] | None = None
    warned: tuple[tuple[str, str], ...] = ()

    @property
    def rule(self) -> str | None:
        return self.record.rule if self.record is not None else None

    @property
    def candidates(self) -> tuple[tuple[str, str], ...] | None:
        return self.record.verdicts() if self.record is not None else None

    @property
    def has_record(self) -> bool:
        return self.record is not None

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
        """The decision record as text (or the notes, for a target without one)."""
        if self.record is not None and self.record.text:
            return self.record.text.splitlines()
        return [f"log: {m}" for m in self.messages]


def first_line(text: str | None) -> str:
    return text.splitlines()[0] if text else ""


@dataclasses.dataclass(frozen=True)
class MutantInfo:
    """A deliberately broken variant of a target's selection.

    Attributes:
        name: short id (``nvfp4-matrix run --mutant NAME``).
        title: what is broken, in one line.
        story: where such a bug comes from.
        witness: a cell id the target's shipped matrix must fail on, and the
            rule (or, for a target without a decision record, the variable)
            its message must name (checked by the harness's own tests).
    """

    name: str
    title: str
    story: str
    witness: tuple[str, str]


@dataclasses.dataclass(frozen=True)
class CiLane:
    """A CI step a target needs beside the CPU suite: ``tox -e <tox_env> -- <arguments>``.

    ``key`` is the step's id (letters, digits, ``-``); ``label`` what CI shows.
    """

    tox_env: str
    key: str
    label: str
    arguments: tuple[str, ...] = ()


class Target(abc.ABC):
    """A system under test: one engine's selection.

    Subclasses set :attr:`name` (the id a matrix's ``target.name`` and
    ``--target`` use), :attr:`vocabulary` and :attr:`capabilities`, and
    implement :meth:`evaluate`. Third-party targets are registered under the
    entry-point group ``nvfp4_matrix.targets``.
    """

    #: the target id
    name: ClassVar[str]
    #: one line for ``--help`` and reports
    description: ClassVar[str] = ""
    #: the selection inputs and optional packages the target understands
    vocabulary: Vocabulary
    #: what the target can do (see :class:`Capabilities`)
    capabilities: Capabilities = Capabilities()

    # --- identity -------------------------------------------------------------------------
    def version(self) -> str | None:
        """The installed version of the system under test, when it has one."""
        return None

    def describe(self) -> str:
        version = self.version()
        return f"{self.name} {version}" if version else self.name

    # --- the matrix -----------------------------------------------------------------------
    def default_matrix(self, root: Path, line: str | None = None) -> Sequence[Path]:
        """The matrix files that describe this target (as installed), under ``root``; with
        ``line``, the files of that release line of the target.

        Raises :class:`~harness.errors.UsageError` when none does. A choice that does not
        describe the installed system (another release line's file) sets
        :attr:`matrix_notice`: the cells then run leniently (their mismatches are the news).
        """
        raise UsageError(f"target {self.name} has no default matrix: name the files")

    #: why the files :meth:`default_matrix` chose do not describe the installed system
    matrix_notice: str | None = None

    def check_matrix(self, matrix: Matrix) -> list[Problem]:
        """Problems with ``matrix`` as a description of this target (its backends, classes).

        What is worth saying but fails nothing (a class the engine defines and its selection
        cannot return) goes to :attr:`notes`."""
        return []

    #: notes of the last :meth:`check_matrix` (printed by ``run``, never a failure)
    notes: Sequence[str] = ()

    # --- evaluation -----------------------------------------------------------------------
    @abc.abstractmethod
    def evaluate(self, query: Query, matrix: Matrix | None, entry: str | None = None) -> Outcome:
        """Run the selection for ``query`` through ``entry`` (default: the first of
        :attr:`Capabilities.entries`); never raises for a bad selection.

        ``matrix`` is the matrix the query comes from (``None`` only for a target with
        :attr:`Capabilities.real_machine`, asked about the real machine without one)."""

    def with_entry(self, entry: str) -> Target:
        """This target, checked through another of its entry points."""
        if entry == self.capabilities.entries[0]:
            return self
        raise UsageError(
            f"target {self.name} has no entry point {entry!r} "
            f"(entries: {', '.join(self.capabilities.entries)})"
        )

    def ci_lanes(self, root: Path) -> Sequence[CiLane]:
        """The CI steps this target needs in the checkout ``root`` (the generated pipeline
        runs each on a CPU agent); none by default."""
        return ()

    # --- broken variants --------------------------------------------------------------------
    def mutants(self) -> Sequence[MutantInfo]:
        """The target's deliberately broken selections (``nvfp4-matrix mutants``)."""
        return ()

    def mutant(self, name: str) -> Target:
        """The broken target called ``name``."""
        from harness.load.problems import unknown_name

        raise UsageError(unknown_name(f"mutant of target {self.name}", name,
                                      [m.name for m in self.mutants()]))

    # --- the machine (capabilities.detection / real_machine) --------------------------------
    def detect(self, probes: MachineProbes) -> Platform:
        """The platform the target's own detection reports on the machine ``probes`` read."""
        raise UsageError(f"target {self.name} does not detect its platform")

    def real_platform(self) -> Platform:
        """The machine the harness runs on, as the target sees it."""
        raise UsageError(f"target {self.name} runs on fake hardware only: give --gpu PROFILE")

    def real_support(self, platform: Platform) -> Mapping[str, tuple[bool, str | None]]:
        """backend -> the target's own ``is_supported()`` on ``platform`` (a real machine)."""
        raise UsageError(f"target {self.name} cannot ask its backends about a real machine")
