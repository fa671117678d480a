"""Stage 4, evaluation: every cell through the target, compared with the oracle.

The :class:`Runner` turns each cell into a :class:`~harness.targets.Query`
(the profile's fake platform, the cell's variables, its layer and mocks),
asks the target what its selection does, and compares that with the oracle's
expectation (and the golden case's, for cases). Mismatches that are a
known failure of the matrix (a real finding: matching cell id, actual and
expected outcome) are reported on their own and do not fail the run; a known
failure that no cell shows any more does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import time
from collections.abc import Iterable, Iterator, Mapping

from harness.errors import MatrixError
from harness.evaluate.cells import Cell, expand
from harness.evaluate.compare import DECOY, CellResult, compare, golden_problems
from harness.evaluate.detection import (
    DETECTION_GROUP,
    detection_cells,
    detection_problems,
    fake_machine,
    interpreter_expected,
)
from harness.evaluate.oracle import Expected, Oracle
from harness.load import Matrix
from harness.models import KnownFailure
from harness.targets import Outcome, Query, Target, get_target
from harness.targets.environment import ENV_VARIABLES, isolated_environ
from harness.targets.native import NativeTarget, decoy_platform, quiet_selection_logs
from kernels.platform import Platform

__all__ = ["DECOY", "RunResult", "Runner", "clean_environment", "decoy_environment"]


def decoy_environment(matrix: Matrix) -> dict[str, str]:
    """Values for every selection variable that would change any cell they reached.

    A boolean or integer flag gets a value no grammar accepts, a backend-name
    variable a name no backend has (both make the selection refuse the
    environment), and the disabled-kernels list names every kernel (automatic
    selection then finds nothing). Options such as ``--linear-backend`` are not
    environment variables and get none.
    """
    decoys: dict[str, str] = {}
    if matrix.precedence is None:
        return decoys
    for rule in matrix.precedence.forcing:
        if rule.variable in ENV_VARIABLES:
            decoys[rule.variable] = f"{DECOY}-{rule.value}"
    auto = matrix.precedence.auto
    if auto.disabled_by in ENV_VARIABLES:
        decoys[auto.disabled_by] = ",".join(
            [spec.kernel for spec in matrix.backends.values()] + [DECOY]
        )
    return decoys


@contextlib.contextmanager
def clean_environment(decoys: Mapping[str, str] | None = None) -> Iterator[None]:
    """The process environment while cells run (restored afterwards).

    Without ``decoys``, no selection variable is in ``os.environ``. With them,
    every selection variable holds a decoy value (:func:`decoy_environment`):
    a target handed each cell's environment as a mapping must never read
    ``os.environ``, and one that falls back to it (for a variable the cell
    leaves unset, or when the mapping is empty) reads a decoy and fails the
    cell. Targets that read ``os.environ`` by design set each cell's variables
    there themselves (:func:`~harness.targets.environment.isolated_environ`),
    which removes the decoys for that cell.
    """
    with isolated_environ(decoys), quiet_selection_logs():
        yield


@dataclasses.dataclass
class RunResult:
    """Every cell's result, and the known failures that no cell showed."""

    results: list[CellResult]
    seconds: float
    target: str = "nvfp4-matrix"
    stale_known: list[str] = dataclasses.field(default_factory=list)

    @property
    def failures(self) -> list[CellResult]:
        """Mismatches that fail the run (known failures excluded)."""
        return [r for r in self.results if not r.ok and r.known is None]

    @property
    def known(self) -> list[CellResult]:
        """Mismatches listed as known failures: reported, not failing."""
        return [r for r in self.results if r.known is not None]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.stale_known

    def groups(self) -> dict[str, tuple[int, int, int]]:
        """group -> (cells, mismatches, known failures)."""
        out: dict[str, list[int]] = {}
        for r in self.results:
            entry = out.setdefault(r.cell.group, [0, 0, 0])
            entry[0] += 1
            entry[1] += not r.ok and r.known is None
            entry[2] += r.known is not None
        return {k: (v[0], v[1], v[2]) for k, v in out.items()}

    def verdict(self) -> str:
        n = len(self.results)
        known = f", {len(self.known)} known failures" if self.known else ""
        stale = f", {len(self.stale_known)} stale known-failure entries" if self.stale_known else ""
        word = "PASS" if self.ok else "FAIL"
        return (
            f"{word}: {n} cells, {len(self.failures)} mismatches{known}{stale} "
            f"({self.seconds:.2f} s, target {self.target})"
        )


def matches(known: KnownFailure, cell: Cell, expected: Expected, actual: Outcome) -> bool:
    """Is this mismatch the finding ``known`` describes?"""
    return (
        (fnmatch.fnmatchcase(cell.id, known.cells) or fnmatch.fnmatchcase(cell.nodeid, known.cells))
        and fnmatch.fnmatchcase(actual.summary(), known.got)
        and fnmatch.fnmatchcase(expected.summary(), known.expected)
    )


class Runner:
    """Evaluates cells of one matrix against one target.

    Args:
        matrix: the loaded matrix.
        target: the system under test (default: the matrix's ``target:``, else
            this project's kernels). Its :meth:`~harness.targets.Target.check_matrix`
            problems are raised here as a :class:`~harness.errors.MatrixError`.
        golden_via_init: also run golden cases through this project's
            ``init_nvfp4_linear_kernel`` (default: when checking its real selection).
        decoys: run the cells with decoy values of every selection variable left
            in ``os.environ`` (:func:`clean_environment`), so that a selection
            that reads the process environment instead of the mapping it was
            handed fails. Default: for this project's ``decide()``, the one
            entry point that takes the environment as a mapping.
        detection: add one detection cell per profile
            (:mod:`harness.evaluate.detection`): the machine faked where
            ``kernels.platform.detect_platform`` reads it. Default: when
            checking this project's real selection.
        seam: also run golden cases with no platform argument, the cell's
            platform installed with ``use_platform`` over a decoy platform in a
            fresh context (:meth:`via_seam`): the selection must read the
            innermost override. Default: when checking this project's real
            selection.
    """

    def __init__(
        self,
        matrix: Matrix,
        target: Target | None = None,
        golden_via_init: bool | None = None,
        decoys: bool | None = None,
        detection: bool | None = None,
        seam: bool | None = None,
    ) -> None:
        self.matrix = matrix
        self.target = target if target is not None else get_target(matrix.target_name)
        problems = self.target.check_matrix(matrix)
        if problems:
            raise MatrixError(problems)
        self.oracle = Oracle(matrix)
        native = isinstance(self.target, NativeTarget)
        real_native = native and self.target.real and self.target.entry != "init"  # type: ignore[attr-defined]
        self.golden_via_init = real_native if golden_via_init is None else golden_via_init
        takes_mapping = native and self.target.entry == "decide"  # type: ignore[attr-defined]
        use_decoys = takes_mapping if decoys is None else decoys
        self.decoys: dict[str, str] = decoy_environment(matrix) if use_decoys else {}
        self.detection = real_native if detection is None else detection
        self.seam = real_native if seam is None else seam

    # --- one cell ------------------------------------------------------------------------
    def platform(self, cell: Cell) -> Platform:
        profile = self.matrix.profiles[cell.profile]
        platform = profile.platform(cell.packages)
        if cell.triton_interpret is not None:  # a detection cell sets TRITON_INTERPRET itself
            on = interpreter_expected(self.matrix, profile, cell.triton_interpret)
            platform = platform.replace(triton_interpret=on)
        return platform

    def query(self, cell: Cell) -> Query:
        return Query(
            self.platform(cell),
            cell.env_dict,
            self.matrix.layers[cell.layer],
            cell.mock_dict,
        )

    def expected(self, cell: Cell) -> Expected:
        return self.oracle.expect(
            self.platform(cell), cell.env_dict, self.matrix.layers[cell.layer], cell.mock_dict
        )

    def detect(self, cell: Cell) -> tuple[Platform, list[str]]:
        """The platform ``detect_platform()`` reports on the cell's profile's faked machine."""
        from kernels.platform import detect_platform

        profile = self.matrix.profiles[cell.profile]
        value = cell.triton_interpret
        with fake_machine(profile, value):
            detected = detect_platform()
        on = None if value is None else self.platform(cell).triton_interpret  # the table's answer
        return detected, detection_problems(profile, detected, on)

    def via_seam(self, cell: Cell) -> Outcome:
        """The selection with ``platform=None``, reading the cell's platform through the seam.

        Runs in a fresh :mod:`contextvars` context holding three overrides: two
        decoy platforms (a profile of the other device type, then
        :func:`~harness.targets.native.decoy_platform`), then the cell's own.
        ``decide()`` must take the innermost one, not the first or the second.
        """
        import contextvars

        from kernels.linear.select import decide
        from kernels.platform import use_platform

        query = self.query(cell)
        kind = self.matrix.profiles[cell.profile].device_type
        decoy = next(
            (p.platform() for p in self.matrix.profiles.values() if p.device_type != kind),
            query.platform,
        )

        def through_seam(config, platform=None, environ=None, backends=None):  # noqa: ANN001, ANN202
            def inner():  # noqa: ANN202
                with use_platform(decoy), use_platform(decoy_platform(platform)), use_platform(platform):
                    return decide(config, None, environ, backends)

            return contextvars.Context().run(inner)

        return NativeTarget(select=through_seam).evaluate(query, self.matrix)

    def check(self, cell: Cell) -> CellResult:
        expected = self.expected(cell)
        query = self.query(cell)
        problems: list[str] = []
        if cell.group == DETECTION_GROUP:
            try:
                detected, problems = self.detect(cell)
            except Exception as exc:  # a broken detection may raise anything
                detected, problems = query.platform, [
                    f"detection raised {type(exc).__name__}: {exc}"
                ]
            query = dataclasses.replace(query, platform=detected)
        actual = self.target.evaluate(query, self.matrix)
        problems += compare(expected, actual, self.matrix)
        if cell.golden is not None:
            problems += golden_problems(cell.golden, expected, actual, oracle_side=True)
            if cell.golden.warnings is not None and not self.target.observes_log:
                problems.append(
                    f"golden: 'warnings' cannot be checked: target {self.target.describe()} does "
                    "not observe the log of its selection"
                )
            if self.seam:
                problems += [
                    f"through the platform seam (no platform argument): {p}"
                    for p in compare(expected, self.via_seam(cell), self.matrix)
                ]
            if self.golden_via_init:
                via_init = self.target.evaluate(self.query(cell), self.matrix, entry="init")  # type: ignore[call-arg]
                problems += [
                    f"via init_nvfp4_linear_kernel: {p}"
                    for p in compare(expected, via_init, self.matrix)
                    + golden_problems(cell.golden, expected, via_init, oracle_side=False)
                ]
        known = None
        if problems:
            known = next(
                (k for k in self.matrix.known_failures if matches(k, cell, expected, actual)),
                None,
            )
        if not problems:
            return CellResult(cell, expected, actual, ())
        platform = self.platform(cell).describe()
        return CellResult(
            cell,
            expected,
            actual,
            tuple(problems),
            platform,
            self._rules(expected, actual),
            known,
        )

    def _rules(self, expected: Expected, actual: Outcome) -> tuple[str, ...]:
        """The matrix rules behind a mismatch: the precedence rule, then each support
        rule whose candidate differs (for a target without a record: the expected
        and the actual backend's)."""
        m = self.matrix
        out = []
        if expected.outcome == "invalid-env":
            out.append("every selection variable is validated before any rule runs")
        elif expected.rule is not None:
            out.append(
                f"precedence rule {expected.rule} at {m.forcing_rule_location(expected.rule)}"
                + (f" ({expected.variable})" if expected.variable else "")
            )
        exp = dict(expected.candidates)
        act = dict(actual.candidates) if actual.candidates is not None else None
        for name in m.backends:
            if name not in exp:
                continue
            if act is not None:
                differs = exp[name] != act.get(name)
            else:
                differs = name in (expected.backend, actual.backend)
            if differs:
                out.append(
                    f"support rule of {name} at {m.where('backend', name, 'support')}: "
                    f"{m.backends[name].describe_support()}"
                )
        return tuple(out)

    # --- every cell ----------------------------------------------------------------------
    def cells(self, files: set[str] | None = None) -> list[Cell]:
        cells = [cell for _, group in expand(self.matrix, files) for cell in group]
        if self.detection and self.matrix.precedence is not None:
            cells += [
                c
                for c in detection_cells(self.matrix)
                if files is None or (c.location is not None and c.location.file in files)
            ]
        return cells

    def run(self, cells: Iterable[Cell] | None = None, fail_fast: bool = False) -> RunResult:
        """Check ``cells`` (default: every cell); ``fail_fast`` stops at the first failure."""
        start = time.perf_counter()
        everything = cells is None
        cells = self.cells() if cells is None else list(cells)
        results = []
        with clean_environment(self.decoys):
            for cell in cells:
                results.append(self.check(cell))
                if fail_fast and not results[-1].ok and results[-1].known is None:
                    break
        stale = []
        if everything:
            shown = {id(r.known) for r in results if r.known is not None}
            for index, known in enumerate(self.matrix.known_failures):
                if id(known) not in shown:
                    stale.append(
                        f"known failure at {self.matrix.where('known_failure', str(index))} "
                        f"(got {known.got!r}: {known.reason}) is shown by no cell any more: "
                        "the code was fixed or the entry no longer matches; remove or fix it"
                    )
        return RunResult(results, time.perf_counter() - start, self.target.describe(), stale)
