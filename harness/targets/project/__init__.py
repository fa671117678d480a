"""The default target: this project's own selection (:mod:`kernels.linear.select`).

Fakes go through the arguments: the cell's platform is passed explicitly while
the seam (:func:`~kernels.platform.use_platform`) holds a decoy that differs in
every fact a rule reads (:func:`~harness.targets.project.seam.decoy_platform`),
the environment is a fresh mapping holding only the cell's variables, and
mocked ``is_supported()`` results are subclasses of the registered backend
classes handed to the selection in ``backends=`` (or patched onto the classes,
for the ``init`` entry point, which takes no table, reads ``os.environ`` and
is judged on what a user sees: the kernel, the exception's message, the log).

Three entry points: ``decide`` (the pure decision, the default), ``init``
(:func:`~kernels.linear.select.init_nvfp4_linear_kernel`, called twice as an
engine calls it per layer) and ``seam`` (``decide`` with no platform
argument, reading the cell's platform through the seam). The real selection
runs golden cases through all three.

The selection function and the backend table are parameters, so deliberately
broken variants (:mod:`harness.targets.project.mutants`) run through the same
matrix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from harness.errors import Problem, UsageError
from harness.targets.environment import isolated_environ
from harness.targets.project.seam import decoy_platform, through_seam
from harness.targets.protocol import (
    CandidateRecord,
    Capabilities,
    DecisionRecord,
    MutantInfo,
    Outcome,
    Query,
    Target,
    Vocabulary,
)

if TYPE_CHECKING:
    from harness.load.matrix import Matrix
    from harness.models import LayerSpec
    from kernels.linear.base import NvFp4LinearKernel
    from kernels.linear.config import NvFp4LinearConfig
    from kernels.linear.decision import SelectionDecision
    from kernels.platform import MachineProbes, Platform

__all__ = ["ENTRIES", "ProjectTarget", "layer_config", "outcome_of_decision"]

#: ``select(config, platform, environ, backends) -> SelectionDecision`` (like ``decide``).
SelectFn = Callable[..., Any]
#: The entry points, the default first.
ENTRIES = ("decide", "init", "seam")


def _vocabulary() -> Vocabulary:
    from kernels.envs import SELECTION_VARIABLES
    from kernels.platform import OPTIONAL_PACKAGES

    return Vocabulary(inputs=SELECTION_VARIABLES, packages=OPTIONAL_PACKAGES)


def layer_config(layer: LayerSpec | None) -> NvFp4LinearConfig:
    """The :class:`~kernels.linear.config.NvFp4LinearConfig` of a matrix layer (default 4096^2)."""
    import torch

    from kernels.linear.config import NvFp4LinearConfig

    if layer is None:
        return NvFp4LinearConfig(4096, 4096, torch.bfloat16)
    return NvFp4LinearConfig(
        in_features=layer.in_features,
        out_features=layer.out_features,
        act_dtype=getattr(torch, layer.act_dtype),
        weight_only=layer.weight_only,
        has_bias=layer.has_bias,
    )


def record_of(decision: SelectionDecision) -> DecisionRecord:
    """The harness's view of a :class:`~kernels.linear.decision.SelectionDecision`."""
    return DecisionRecord(
        rule=decision.rule,
        variable=decision.variable,
        candidates=tuple(
            CandidateRecord(c.backend, c.kernel, c.status, c.reason) for c in decision.candidates
        ),
        consulted=tuple(decision.variables),
        text=decision.format(),
    )


def outcome_of_decision(
    decision: SelectionDecision, backends: Mapping[str, type], entry: str
) -> Outcome:
    """A :class:`~kernels.linear.decision.SelectionDecision` as an :class:`Outcome`."""
    common: dict[str, Any] = dict(
        record=record_of(decision), messages=tuple(decision.messages), entry=entry
    )
    if decision.backend is not None:
        cls = backends.get(decision.backend)
        kernel = cls.__name__ if cls is not None else None
        return Outcome("backend", decision.backend, kernel, **common)
    return Outcome("error", error=decision.error, error_type="KernelSelectionError", **common)


class ProjectTarget(Target):
    """This project's :func:`kernels.linear.select.decide` (or ``init_nvfp4_linear_kernel``).

    Args:
        select: the selection under test, called as
            ``select(config, platform, environ, backends)``; default
            :func:`kernels.linear.select.decide`.
        backends: the backend table handed to ``select`` (default: the
            registry). Mocks subclass the classes found in it.
        entry: one of :data:`ENTRIES`; ``init`` and ``seam`` check the real
            selection only.
        label: shown after the name (a mutant's).
    """

    name = "kernels"
    description = "this project's kernels (kernels.linear.select)"

    def __init__(
        self,
        select: SelectFn | None = None,
        backends: Mapping[str, type] | None = None,
        entry: str = "decide",
        label: str | None = None,
    ) -> None:
        if entry not in ENTRIES:
            raise UsageError(f"target {self.name} has no entry point {entry!r} "
                             f"(entries: {', '.join(ENTRIES)})")
        self.real = select is None and backends is None
        if entry != "decide" and not self.real:
            raise UsageError(
                f"the {entry} entry point checks the real selection only (no mutant, no backend "
                "table)"
            )
        # the selection and its table are imported when first asked (they import torch): a
        # matrix is loaded and bound to this target without them
        self._select = select
        self._backends = backends
        self.entry = entry
        self.label = label
        self.vocabulary = _vocabulary()
        checks_all = self.real and entry == "decide"
        self.capabilities = Capabilities(
            decision_record=True,
            observes_log=True,
            environment="process" if entry == "init" else "mapping",
            detection=checks_all,
            real_machine=self.real,
            declared_support=True,
            entries=ENTRIES,
            golden_entries=("seam", "init") if checks_all else (),
        )
        self._configs: dict[LayerSpec, NvFp4LinearConfig] = {}
        self._mock_classes: dict[tuple[str, bool, str], type] = {}
        self._tables: dict[tuple[tuple[str, bool, str], ...], dict[str, type]] = {}

    @functools.cached_property
    def select(self) -> SelectFn:
        """The selection under test (default :func:`kernels.linear.select.decide`)."""
        if self._select is not None:
            return self._select
        from kernels.linear import select as select_module

        return select_module.decide

    @functools.cached_property
    def backends(self) -> dict[str, type[NvFp4LinearKernel]]:
        """The backend table handed to the selection (default: the registry)."""
        if self._backends is not None:
            return dict(self._backends)
        from kernels.linear import registry

        return dict(registry.NVFP4_BACKENDS)

    def describe(self) -> str:
        entry = f" (entry {self.entry})" if self.entry != ENTRIES[0] else ""
        return self.name + (f" ({self.label})" if self.label else "") + entry

    def with_entry(self, entry: str) -> ProjectTarget:
        if not self.real:
            raise UsageError(f"the {entry} entry point checks the real selection only: drop "
                             "the mutant")
        return ProjectTarget(entry=entry)

    def default_matrix(self, root: Path, line: str | None = None) -> Sequence[Path]:
        from harness.load import DEFAULT_MATRIX_GLOB, default_matrix_paths

        if line is not None:
            raise UsageError(f"target {self.name} has no release lines: drop --line")
        found = default_matrix_paths(root)
        if not found:
            raise UsageError(
                f"no matrix file: {DEFAULT_MATRIX_GLOB} matches nothing in {root}; name the files"
            )
        return found

    # --- broken variants ----------------------------------------------------------------
    def mutants(self) -> Sequence[MutantInfo]:
        from harness.targets.project.mutants import MUTANTS

        return [m.info for m in MUTANTS]

    def mutant(self, name: str) -> ProjectTarget:
        from harness.targets.project.mutants import MUTANTS

        for m in MUTANTS:
            if m.info.name == name:
                select, backends = m.build()
                return ProjectTarget(select=select, backends=backends, label=f"mutant {name}")
        return super().mutant(name)  # type: ignore[return-value]  # raises UsageError

    # --- the machine ------------------------------------------------------------------------
    def detect(self, probes: MachineProbes) -> Platform:
        from kernels.platform import detect_platform

        return detect_platform(probes)

    def real_platform(self) -> Platform:
        from kernels.platform import detect_platform

        return detect_platform()

    def real_support(self, platform: Platform) -> dict[str, tuple[bool, str | None]]:
        return {name: cls.is_supported(platform) for name, cls in self.backends.items()}

    # --- the matrix as a description of the registry ------------------------------------
    def check_matrix(self, matrix: Matrix) -> list[Problem]:
        """The declared backends must be exactly the registered ones, with the same class
        names and batch-invariance claims."""
        if not matrix.backends:
            return []
        from kernels.linear.registry import NVFP4_BACKENDS

        problems: list[Problem] = []
        for name, spec in matrix.backends.items():
            src, path = matrix.source_of("backend", name)
            cls = NVFP4_BACKENDS.get(name)
            if cls is None:
                problems.append(
                    src.problem(
                        path,
                        f"backend {name!r} is not registered in kernels.linear.registry.NVFP4_BACKENDS "
                        f"(registered: {', '.join(NVFP4_BACKENDS)})",
                    )
                )
            elif cls.__name__ != spec.kernel:
                problems.append(
                    src.problem(
                        path + ("kernel",),
                        f"the registered {name} class is {cls.__name__}, not {spec.kernel}",
                    )
                )
            elif bool(getattr(cls, "batch_invariant", False)) != spec.batch_invariant:
                problems.append(
                    src.problem(
                        path + ("batch_invariant",),
                        f"{cls.__name__}.batch_invariant is {cls.batch_invariant}, the matrix "
                        f"says {spec.batch_invariant}",
                    )
                )
        missing = [name for name in NVFP4_BACKENDS if name not in matrix.backends]
        if missing:
            src = matrix.source_of("backend", next(iter(matrix.backends)))[0]
            problems.append(
                src.problem(
                    ("backends",),
                    f"registered backends missing from the matrix: {', '.join(missing)}",
                )
            )
        return problems

    # --- cached fakes ---------------------------------------------------------------------
    def config(self, layer: LayerSpec) -> NvFp4LinearConfig:
        if layer not in self._configs:
            self._configs[layer] = layer_config(layer)
        return self._configs[layer]

    def _mocked_class(self, name: str, ok: bool, reason: str) -> type:
        key = (name, ok, reason)
        if key not in self._mock_classes:
            base = self.backends[name]
            verdict = (True, None) if ok else (False, reason)

            def is_supported(
                cls: type, platform: Platform | None = None
            ) -> tuple[bool, str | None]:
                return verdict

            self._mock_classes[key] = type(
                base.__name__,
                (base,),
                {
                    "is_supported": classmethod(is_supported),
                    "__module__": base.__module__,
                    "__qualname__": base.__qualname__,
                    "__doc__": f"{base.__name__} with is_supported() forced to {verdict}.",
                },
            )
        return self._mock_classes[key]

    def table(self, mocks: Mapping[str, tuple[bool, str]]) -> dict[str, type]:
        key = tuple((n, ok, r) for n, (ok, r) in sorted(mocks.items()))
        if key not in self._tables:
            table = dict(self.backends)
            for name, ok, reason in key:
                table[name] = self._mocked_class(name, ok, reason)
            self._tables[key] = table
        return self._tables[key]

    # --- evaluation -------------------------------------------------------------------------
    def evaluate(self, query: Query, matrix: Matrix | None, entry: str | None = None) -> Outcome:
        from kernels.platform import use_platform

        entry = entry or self.entry
        label = "" if entry == ENTRIES[0] else entry  # the outcome names any other entry
        config = self.config(query.layer)
        if entry == "init":
            return self._via_init(query, config)
        select = self.select
        if entry == "seam":
            kind = query.platform.device_type
            profiles = matrix.profiles.values() if matrix is not None else ()
            other = next(
                (p.platform() for p in profiles if p.device_type != kind), query.platform
            )
            select = through_seam(select, other)
        try:
            with use_platform(decoy_platform(query.platform)):
                decision = select(config, query.platform, dict(query.env), self.table(query.mocks))
        except Exception as exc:  # a broken selection may raise anything: report, don't stop
            refused = _outcome_of_raise(exc, label)
            if refused is not None:
                return refused
            decision = exc.decision  # type: ignore[attr-defined]
        return outcome_of_decision(decision, self.backends, label)

    def _via_init(self, query: Query, config: NvFp4LinearConfig) -> Outcome:
        """``init_nvfp4_linear_kernel(config, platform)``, twice, as an engine calls it per layer.

        The environment is ``os.environ`` holding exactly the cell's variables;
        the seam holds a decoy platform (the explicit argument must win all the
        way down to the kernel's constructor). The outcome is what a user sees:
        the kernel built, or the message of the exception raised, and the log.
        The first call must log every note of its decision once; the second,
        identical call nothing (notes are logged once per :class:`NoteLog`).
        """
        from harness.targets.project.logs import CapturedNotes  # imports the selection (torch)
        from kernels.linear.select import init_nvfp4_linear_kernel
        from kernels.platform import use_platform

        calls: list[tuple[Any, Any, Exception | None]] = []
        records: list[list[tuple[int, str]]] = []  # what each call logged
        notes = CapturedNotes()
        with contextlib.ExitStack() as stack:
            for name, (ok, reason) in query.mocks.items():
                verdict = (True, None) if ok else (False, reason)
                stack.enter_context(
                    mock.patch.object(
                        self.backends[name],
                        "is_supported",
                        classmethod(lambda cls, platform=None, _v=verdict: _v),
                    )
                )
            stack.enter_context(isolated_environ(query.env, self.vocabulary.variables))
            stack.enter_context(use_platform(decoy_platform(query.platform)))
            for _ in range(2):
                kernel = decision = raised = None
                start = len(notes.records)
                try:
                    kernel, decision = init_nvfp4_linear_kernel(config, query.platform, notes=notes)
                except Exception as exc:  # judged below, like every other outcome
                    raised = exc
                calls.append((kernel, decision, raised))
                records.append(notes.records[start:])
        kernel, decision, raised = calls[0]
        if raised is not None:
            refused = _outcome_of_raise(raised, "init")
            if refused is not None:
                return refused
            decision = raised.decision  # type: ignore[attr-defined]
        problems = _init_problems(kernel, decision, records, self.backends)
        if problems:
            return Outcome("crash", error="; ".join(problems), entry="init")
        outcome = outcome_of_decision(decision, self.backends, "init")
        logged = tuple((level, text) for level, text in records[0] if level > logging.DEBUG)
        if raised is not None:  # what the user reads is the exception, not the record
            return dataclasses.replace(
                outcome, error=str(raised), error_type=type(raised).__name__, logged=logged
            )
        return dataclasses.replace(outcome, logged=logged)


def _outcome_of_raise(exc: BaseException, entry: str) -> Outcome | None:
    """The outcome of an exception the selection raised, or ``None`` for a
    :class:`~kernels.errors.KernelSelectionError` carrying its decision (the
    decision is then the outcome)."""
    from kernels.errors import InvalidEnvironmentError, KernelSelectionError

    if isinstance(exc, InvalidEnvironmentError):
        return Outcome("invalid-env", error=str(exc), error_type=type(exc).__name__, entry=entry)
    if isinstance(exc, KernelSelectionError):
        if exc.decision is None:
            return Outcome(
                "crash", error=f"KernelSelectionError without a decision: {exc}", entry=entry
            )
        return None
    return Outcome("crash", error=f"{type(exc).__name__}: {exc}", entry=entry)


def _init_problems(
    kernel: Any, decision: Any, records: list[list[tuple[int, str]]], backends: Mapping[str, type]
) -> list[str]:
    """How ``init_nvfp4_linear_kernel`` contradicts its own decision (kernel built, notes logged)."""
    problems = []
    if decision.backend is not None:
        expected_class = backends[decision.backend]
        if type(kernel) is not expected_class:
            problems.append(
                f"init_nvfp4_linear_kernel built {type(kernel).__name__}, but its decision "
                f"names {decision.backend} ({expected_class.__name__})"
            )
    first = [text for level, text in records[0] if level > logging.DEBUG]
    if first != list(decision.messages):
        problems.append(
            f"init_nvfp4_linear_kernel logged {first}, but its decision's notes are "
            f"{list(decision.messages)} (each once, in order)"
        )
    if len(records) > 1 and records[1]:
        problems.append(
            "init_nvfp4_linear_kernel logged again when called again for the same layer "
            f"({[text for _, text in records[1]]}): notes are logged once per process"
        )
    return problems
