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
from collections.abc import Iterable, Iterator

from harness.errors import MatrixError
from harness.evaluate.cells import Cell, expand
from harness.evaluate.compare import CellResult, compare, golden_problems
from harness.evaluate.oracle import Expected, Oracle
from harness.load import Matrix
from harness.models import KnownFailure
from harness.targets import Outcome, Query, Target, get_target
from harness.targets.environment import isolated_environ
from harness.targets.native import NativeTarget, quiet_selection_logs
from kernels.platform import Platform

__all__ = ["RunResult", "Runner", "clean_environment"]


@contextlib.contextmanager
def clean_environment() -> Iterator[None]:
    """No selection variable in ``os.environ`` while cells run (restored afterwards).

    Code under test that wrongly reads the real environment instead of the
    mapping it was handed then sees nothing, and is caught.
    """
    with isolated_environ(), quiet_selection_logs():
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
    """

    def __init__(
        self,
        matrix: Matrix,
        target: Target | None = None,
        golden_via_init: bool | None = None,
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

    # --- one cell ------------------------------------------------------------------------
    def platform(self, cell: Cell) -> Platform:
        return self.matrix.profiles[cell.profile].platform(cell.packages)

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

    def check(self, cell: Cell) -> CellResult:
        expected = self.expected(cell)
        actual = self.target.evaluate(self.query(cell), self.matrix)
        problems = compare(expected, actual, self.matrix)
        if cell.golden is not None:
            problems += golden_problems(cell.golden, expected, actual, oracle_side=True)
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
        return [cell for _, group in expand(self.matrix, files) for cell in group]

    def run(self, cells: Iterable[Cell] | None = None) -> RunResult:
        start = time.perf_counter()
        everything = cells is None
        cells = self.cells() if cells is None else list(cells)
        with clean_environment():
            results = [self.check(cell) for cell in cells]
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
