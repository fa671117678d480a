"""Run the selection for every cell on fake hardware and compare with the oracle.

Fakes go through the seam only: each cell's profile becomes a
:class:`~kernels.platform.Platform` installed with
:func:`~kernels.platform.use_platform` (and also passed explicitly), its
environment is a fresh dict holding only the cell's variables (the caller's
shell never leaks in; the selection variables are also removed from
``os.environ`` for the whole run, so code that wrongly reads the real
environment is caught), and mocked ``is_supported()`` results are subclasses
of the registered backend classes handed to the selection in ``backends=``
(or patched onto the classes, for the ``init`` entry point, which takes no
table).

The selection function is a parameter (default: the real
:func:`kernels.linear.select.decide`), so deliberately broken variants
(:mod:`harness.mutants`) can be run through the same matrix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal
from unittest import mock

from harness.cells import CASES_GROUP, Cell, expand
from harness.matrix import Matrix
from harness.models import GoldenExpect
from harness.oracle import Expected, Oracle
from kernels.envs import SELECTION_VARIABLES
from kernels.platform import Platform, use_platform

__all__ = [
    "CASES_GROUP",
    "Actual",
    "CellResult",
    "RunResult",
    "Runner",
    "SelectFn",
    "clean_environment",
    "compare",
    "golden_problems",
    "quiet_selection_logs",
]

#: ``select(config, platform, environ, backends) -> SelectionDecision`` (like ``decide``).
SelectFn = Callable[..., Any]
Entry = Literal["decide", "init"]


@dataclasses.dataclass(frozen=True)
class Actual:
    """What the selection did for one cell.

    ``kind`` is ``backend``, ``error`` (the decision carries an error),
    ``invalid-env`` (``InvalidEnvironmentError`` raised) or ``crash`` (any
    other exception: always a failure).
    """

    kind: Literal["backend", "error", "invalid-env", "crash"]
    backend: str | None = None
    rule: str | None = None
    error: str | None = None
    candidates: tuple[tuple[str, str], ...] = ()
    decision: Any = None
    entry: str = "decide"

    def summary(self) -> str:
        if self.kind == "backend":
            return f"backend {self.backend} by rule {self.rule}"
        if self.kind == "error":
            return f"error by rule {self.rule}: {_first_line(self.error)}"
        if self.kind == "invalid-env":
            return f"InvalidEnvironmentError: {_first_line(self.error)}"
        return f"crash: {_first_line(self.error)}"


def _first_line(text: str | None) -> str:
    return (text or "").splitlines()[0] if text else ""


@dataclasses.dataclass(frozen=True)
class CellResult:
    cell: Cell
    expected: Expected
    actual: Actual
    problems: tuple[str, ...]
    platform: str = ""
    #: the matrix rules behind the expectation: the precedence rule, then the
    #: support rule of every candidate whose verdict differs (failures only)
    rules: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def rule(self) -> str:
        """The precedence rule the oracle says decides this cell."""
        if self.expected.outcome == "invalid-env":
            return "environment validation"
        return str(self.expected.rule)

    def report(self) -> str:
        """The failure text: the cell, expected vs actual, the rule, the decision record."""
        c = self.cell
        lines = [
            f"MISMATCH {c.id}  [{c.group}, {c.location}]",
            f"  profile  : {c.profile} - {self.platform}",
            f"  env      : {c.env_text()}",
            f"  layer    : {c.layer}",
        ]
        if c.packages is not None:
            lines.append(
                f"  packages : {', '.join(c.packages) or 'none'} (replacing the profile's)"
            )
        if c.mocks:
            lines.append(
                "  mocked   : "
                + ", ".join(f"{n} {'supported' if ok else 'unsupported'}" for n, ok, _ in c.mocks)
            )
        golden = c.golden
        if golden is not None:
            lines.append(f"  golden   : {_golden_summary(golden)}")
        lines.append(f"  expected : {self.expected.summary()}")
        lines.append(
            f"  actual   : {self.actual.summary()}"
            + (f" (via {self.actual.entry})" if self.actual.entry != "decide" else "")
        )
        rules = list(self.rules) or [self.rule]
        lines.append(f"  rule     : {rules[0]}")
        lines += [f"             {r}" for r in rules[1:]]
        lines.append("  problems :")
        lines += [f"    - {p}" for p in self.problems]
        lines.append("  oracle (from the matrix rules alone):")
        lines += [f"    {b}" for b in self.expected.because]
        if self.actual.decision is not None:
            lines.append("  decision record:")
            lines += [f"    {line}" for line in self.actual.decision.format().splitlines()]
        elif self.actual.error:
            lines.append("  raised   : " + self.actual.error.replace("\n", "\n             "))
        return "\n".join(lines)


def _golden_summary(g: GoldenExpect) -> str:
    if g.backend is not None:
        return f"backend {g.backend}" + (f" by rule {g.rule}" if g.rule else "")
    kind = "InvalidEnvironmentError" if g.invalid_env else "error"
    return f"{kind} containing {g.error!r}" + (f" by rule {g.rule}" if g.rule else "")


@dataclasses.dataclass
class RunResult:
    results: list[CellResult]
    seconds: float

    @property
    def failures(self) -> list[CellResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    def groups(self) -> dict[str, tuple[int, int]]:
        """group -> (cells, mismatches)."""
        out: dict[str, list[int]] = {}
        for r in self.results:
            entry = out.setdefault(r.cell.group, [0, 0])
            entry[0] += 1
            entry[1] += not r.ok
        return {k: (v[0], v[1]) for k, v in out.items()}

    def verdict(self) -> str:
        n = len(self.results)
        if self.ok:
            return f"PASS: {n} cells, 0 mismatches ({self.seconds:.2f} s)"
        return f"FAIL: {n} cells, {len(self.failures)} mismatches ({self.seconds:.2f} s)"


@contextlib.contextmanager
def clean_environment(env: Mapping[str, str] | None = None) -> Iterator[None]:
    """``os.environ`` without any selection variable (plus ``env``), restored on exit."""
    saved = {k: os.environ[k] for k in SELECTION_VARIABLES if k in os.environ}
    for k in saved:
        del os.environ[k]
    try:
        if env:
            os.environ.update(env)
        yield
    finally:
        for k in SELECTION_VARIABLES:
            os.environ.pop(k, None)
        os.environ.update(saved)


class Runner:
    """Evaluates cells of one matrix with one selection function.

    Args:
        matrix: the loaded matrix.
        select: the selection under test, called as
            ``select(config, platform, environ, backends)``; default
            :func:`kernels.linear.select.decide`.
        backends: the backend table handed to ``select`` (default: the
            registry). Mocks subclass the classes found in it.
        entry: ``decide`` (default) or ``init``: go through
            :func:`~kernels.linear.select.init_nvfp4_linear_kernel`, which
            reads ``os.environ`` (set to exactly the cell's variables) and
            builds the kernel; only with the real selection and registry.
        golden_via_init: also run golden cases through ``init`` (default: when
            checking the real selection).
    """

    def __init__(
        self,
        matrix: Matrix,
        select: SelectFn | None = None,
        backends: Mapping[str, type] | None = None,
        entry: Entry = "decide",
        golden_via_init: bool | None = None,
    ) -> None:
        from kernels.linear import registry
        from kernels.linear import select as select_module

        self.matrix = matrix
        self.oracle = Oracle(matrix)
        self.real = select is None and backends is None
        if entry == "init" and not self.real:
            raise ValueError(
                "the init entry point checks the real selection only (no select/backends)"
            )
        self.select = select or select_module.decide
        self.backends = dict(registry.NVFP4_BACKENDS if backends is None else backends)
        self.entry = entry
        self.golden_via_init = self.real if golden_via_init is None else golden_via_init
        self._configs: dict[str, Any] = {}
        self._mock_classes: dict[tuple[str, bool, str], type] = {}
        self._tables: dict[tuple[tuple[str, bool, str], ...], dict[str, type]] = {}

    # --- cached fakes ------------------------------------------------------------------
    def platform(self, cell: Cell) -> Platform:
        return self.matrix.profiles[cell.profile].platform(cell.packages)

    def config(self, layer_id: str) -> Any:
        if layer_id not in self._configs:
            import torch

            from kernels.linear.base import NvFp4LinearConfig

            spec = self.matrix.layers[layer_id]
            self._configs[layer_id] = NvFp4LinearConfig(
                in_features=spec.in_features,
                out_features=spec.out_features,
                act_dtype=getattr(torch, spec.act_dtype),
                weight_only=spec.weight_only,
                has_bias=spec.has_bias,
            )
        return self._configs[layer_id]

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

    def table(self, mocks: tuple[tuple[str, bool, str], ...]) -> dict[str, type]:
        if mocks not in self._tables:
            table = dict(self.backends)
            for name, ok, reason in mocks:
                table[name] = self._mocked_class(name, ok, reason)
            self._tables[mocks] = table
        return self._tables[mocks]

    # --- evaluation ----------------------------------------------------------------------
    def expected(self, cell: Cell) -> Expected:
        return self.oracle.expect(
            self.platform(cell), cell.env_dict, self.matrix.layers[cell.layer], cell.mock_dict
        )

    def evaluate(self, cell: Cell, entry: Entry | None = None) -> Actual:
        entry = entry or self.entry
        platform = self.platform(cell)
        config = self.config(cell.layer)
        from kernels.errors import InvalidEnvironmentError, KernelSelectionError

        try:
            if entry == "init":
                decision = self._via_init(cell, config, platform)
            else:
                with use_platform(platform):
                    decision = self.select(config, platform, cell.env_dict, self.table(cell.mocks))
        except InvalidEnvironmentError as exc:
            return Actual("invalid-env", error=str(exc), entry=entry)
        except KernelSelectionError as exc:
            decision = exc.decision
            if decision is None:
                return Actual(
                    "crash", error=f"KernelSelectionError without a decision: {exc}", entry=entry
                )
        except Exception as exc:  # a broken selection may raise anything: report, don't stop
            return Actual("crash", error=f"{type(exc).__name__}: {exc}", entry=entry)
        candidates = tuple((c.backend, c.status) for c in decision.candidates)
        if decision.backend is not None:
            return Actual(
                "backend", decision.backend, decision.rule, None, candidates, decision, entry
            )
        return Actual("error", None, decision.rule, decision.error, candidates, decision, entry)

    def _via_init(self, cell: Cell, config: Any, platform: Platform) -> Any:
        from kernels.linear.select import init_nvfp4_linear_kernel

        with contextlib.ExitStack() as stack:
            for name, ok, reason in cell.mocks:
                verdict = (True, None) if ok else (False, reason)
                stack.enter_context(
                    mock.patch.object(
                        self.backends[name],
                        "is_supported",
                        classmethod(lambda cls, platform=None, _v=verdict: _v),
                    )
                )
            stack.enter_context(clean_environment(cell.env_dict))
            stack.enter_context(use_platform(platform))
            kernel, decision = init_nvfp4_linear_kernel(config)
        if decision.backend is None:  # init raises instead of returning a failed decision
            raise AssertionError("init_nvfp4_linear_kernel returned a decision without a backend")
        expected_class = self.backends[decision.backend]
        if type(kernel) is not expected_class:
            raise AssertionError(
                f"init_nvfp4_linear_kernel built {type(kernel).__name__}, but its decision names "
                f"{decision.backend} ({expected_class.__name__})"
            )
        return decision

    def check(self, cell: Cell) -> CellResult:
        expected = self.expected(cell)
        actual = self.evaluate(cell)
        problems = compare(expected, actual, self.matrix)
        if cell.golden is not None:
            problems += golden_problems(cell.golden, expected, actual, oracle_side=True)
            if self.golden_via_init and self.entry != "init":
                via_init = self.evaluate(cell, "init")
                problems += [
                    f"via init_nvfp4_linear_kernel: {p}"
                    for p in compare(expected, via_init, self.matrix)
                ]
                problems += [
                    f"via init_nvfp4_linear_kernel: {p}"
                    for p in golden_problems(cell.golden, expected, via_init, oracle_side=False)
                ]
        if not problems:
            return CellResult(cell, expected, actual, ())
        platform = self.platform(cell).describe()
        return CellResult(
            cell, expected, actual, tuple(problems), platform, self._rules(expected, actual)
        )

    def _rules(self, expected: Expected, actual: Actual) -> tuple[str, ...]:
        m = self.matrix
        out = []
        if expected.outcome == "invalid-env":
            out.append("every selection variable is validated before any rule runs")
        elif expected.rule is not None:
            out.append(
                f"precedence rule {expected.rule} at {m.forcing_rule_location(expected.rule)}"
            )
        exp, act = dict(expected.candidates), dict(actual.candidates)
        for name in m.backends:
            if name in exp and exp.get(name) != act.get(name):
                spec = m.backends[name]
                out.append(
                    f"support rule of {name} at {m.where('backend', name, 'support')}: {spec.describe_support()}"
                )
        return tuple(out)

    def cells(self, files: set[str] | None = None) -> list[Cell]:
        return [cell for _, group in expand(self.matrix, files) for cell in group]

    def run(self, cells: Iterable[Cell] | None = None) -> RunResult:
        start = time.perf_counter()
        cells = self.cells() if cells is None else list(cells)
        with clean_environment(), quiet_selection_logs():
            results = [self.check(cell) for cell in cells]
        return RunResult(results, time.perf_counter() - start)


@contextlib.contextmanager
def quiet_selection_logs() -> Iterator[None]:
    """Silence the selection's log lines while thousands of fake cells run.

    Each cell's notes are in its decision record already. The selection logs
    each distinct message once per process; what the fake cells logged is
    forgotten again on exit, so a real selection later in the same process
    still logs its first warning.
    """
    from kernels.linear import select as select_module

    logger = logging.getLogger(select_module.logger.name)
    seen = getattr(select_module, "_logged_once", None)
    before = set(seen) if isinstance(seen, set) else None
    disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = disabled
        if before is not None and isinstance(seen, set):
            seen.clear()
            seen.update(before)


def compare(expected: Expected, actual: Actual, matrix: Matrix) -> list[str]:
    """Every way ``actual`` differs from the oracle's ``expected`` (empty: agree)."""
    problems: list[str] = []
    if actual.kind == "crash":
        return [f"the selection raised {actual.error} (expected {expected.summary()})"]
    if expected.outcome != actual.kind or expected.backend != actual.backend:
        problems.append(f"outcome: expected {expected.summary()}, got {actual.summary()}")
    if expected.outcome == "invalid-env":
        if actual.kind == "invalid-env" and not any(
            v in (actual.error or "") for v in expected.error_mentions_any
        ):
            problems.append(
                f"the error must name {' or '.join(expected.error_mentions_any)}: {actual.error!r}"
            )
        return problems
    if actual.kind == "invalid-env":
        return problems
    if expected.rule != actual.rule:
        where = matrix.forcing_rule_location(expected.rule or "")
        problems.append(f"rule: expected {expected.rule} ({where}), got {actual.rule}")
    if expected.outcome == "error" and actual.kind == "error":
        text = actual.error or ""
        if expected.error_prefix and not text.startswith(expected.error_prefix):
            problems.append(
                f"error text: expected it to start with {expected.error_prefix!r}, got {_first_line(text)!r}"
            )
        missing = [s for s in expected.error_contains if s not in text]
        if missing:
            problems.append(
                f"error text: missing {', '.join(repr(s) for s in missing)} in {text!r}"
            )
    if expected.candidates != actual.candidates:
        problems.append("candidates: " + _candidate_diff(expected.candidates, actual.candidates))
    return problems


def _candidate_diff(
    expected: tuple[tuple[str, str], ...], actual: tuple[tuple[str, str], ...]
) -> str:
    exp, act = dict(expected), dict(actual)
    diffs = []
    for name in list(exp) + [n for n in act if n not in exp]:
        e, a = exp.get(name, "(absent)"), act.get(name, "(absent)")
        if e != a:
            diffs.append(f"{name} expected {e}, got {a}")
    if not diffs:
        return f"order: expected {[n for n, _ in expected]}, got {[n for n, _ in actual]}"
    return "; ".join(diffs)


def golden_problems(
    golden: GoldenExpect, expected: Expected, actual: Actual, *, oracle_side: bool
) -> list[str]:
    """A golden case checks the code (``actual``) and, once, the oracle (``expected``)."""
    problems: list[str] = []
    if oracle_side:
        # The oracle must reproduce the hand-written answer, or the matrix rules are wrong.
        if golden.backend is not None and (
            expected.outcome != "backend" or expected.backend != golden.backend
        ):
            problems.append(
                f"the matrix rules (oracle) predict {expected.summary()}, but the golden case says backend {golden.backend}: fix the rules or the case"
            )
        if golden.error is not None and expected.outcome == "backend":
            problems.append(
                f"the matrix rules (oracle) predict {expected.summary()}, but the golden case expects an error: fix the rules or the case"
            )
        if golden.invalid_env and expected.outcome != "invalid-env":
            problems.append(
                "the matrix rules (oracle) accept this environment, but the golden case expects it to be invalid"
            )
        if golden.rule is not None and expected.rule != golden.rule:
            problems.append(
                f"the matrix rules (oracle) decide by rule {expected.rule}, the golden case says {golden.rule}"
            )
    if actual.kind == "crash":
        return problems + [f"golden: the selection raised {actual.error}"]
    if golden.backend is not None and actual.backend != golden.backend:
        problems.append(f"golden: expected backend {golden.backend}, got {actual.summary()}")
    if golden.error is not None:
        if golden.invalid_env and actual.kind != "invalid-env":
            problems.append(
                f"golden: expected InvalidEnvironmentError containing {golden.error!r}, got {actual.summary()}"
            )
        elif not golden.invalid_env and actual.kind != "error":
            problems.append(
                f"golden: expected an error containing {golden.error!r}, got {actual.summary()}"
            )
        elif golden.error not in (actual.error or ""):
            problems.append(
                f"golden: the error must contain {golden.error!r}, got {actual.error!r}"
            )
    if (
        golden.rule is not None
        and actual.kind in ("backend", "error")
        and actual.rule != golden.rule
    ):
        problems.append(f"golden: expected rule {golden.rule}, got {actual.rule}")
    if golden.candidates:
        got = dict(actual.candidates)
        for name, status in golden.candidates.items():
            if got.get(name) != status:
                problems.append(
                    f"golden: candidate {name} expected {status}, got {got.get(name, '(absent)')}"
                )
    if golden.messages:
        notes = list(actual.decision.messages) if actual.decision is not None else []
        for text in golden.messages:
            if not any(text in note for note in notes):
                problems.append(f"golden: no note contains {text!r} (notes: {notes})")
    return problems
