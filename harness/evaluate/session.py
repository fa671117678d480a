"""Stage 4, evaluation: one session per matrix and target, the one path every entry point takes.

A :class:`Session` binds a matrix to the target it describes (the matrix may
use only the target's vocabulary; the target checks the matrix against what
it really has), then owns everything about running cells: the process
environment while they run (decoy values of every selection variable for a
target handed each cell's environment as a mapping), the detection cells
(for a target that detects its platform), the further entry points golden
cases go through, the comparison with the oracle and the golden cases, the
known-failure bookkeeping (an entry that no cell shows any more fails) and
the timing. ``nvfp4-matrix run``, the pytest plugin, ``table``, ``explain``,
``reality`` and both mutation lanes all evaluate through it, so none of them
is weaker than another; :mod:`harness.output` only renders what it returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import time
from collections.abc import Iterable, Iterator

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
from harness.load.binding import binding_problems
from harness.models import KnownFailure, LayerSpec
from harness.targets import Outcome, Query, Target, Vocabulary, get_target
from harness.targets.environment import isolated_environ
from kernels.platform import Platform

__all__ = ["RunResult", "Session", "cell_groups", "decoy_environment"]


def decoy_environment(matrix: Matrix, vocabulary: Vocabulary) -> dict[str, str]:
    """Values for every selection variable that would change any cell they reached.

    A boolean or integer flag gets a value no grammar accepts, a backend-name
    variable a name no backend has (both make the selection refuse the
    environment), and the disabled-kernels list names every kernel (automatic
    selection then finds nothing). Engine options such as ``--linear-backend``
    are not environment variables and get none.
    """
    decoys: dict[str, str] = {}
    if matrix.precedence is None:
        return decoys
    variables = vocabulary.variables
    for rule in matrix.precedence.forcing:
        if rule.variable in variables:
            decoys[rule.variable] = f"{DECOY}-{rule.value}"
    auto = matrix.precedence.auto
    if auto.disabled_by in variables:
        decoys[auto.disabled_by] = ",".join(
            [spec.kernel for spec in matrix.backends.values()] + [DECOY]
        )
    return decoys


@dataclasses.dataclass
class RunResult:
    """Every cell's result, and the known failures that no cell showed."""

    results: list[CellResult]
    seconds: float
    target: str
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


def cell_groups(
    matrix: Matrix, target: Target, files: set[str] | None = None
) -> list[tuple[str, list[Cell]]]:
    """``(group, cells)`` of ``matrix`` for ``target``: every sweep's, the golden cases', then,
    for a target that detects its platform, the detection cells (they belong to the matrix's
    first file). ``files`` keeps the sweeps and cases written in those files."""
    groups = list(expand(matrix, target.vocabulary, files))
    own = files is None or matrix.files[0].name in files
    if target.capabilities.detection and matrix.precedence is not None and own:
        groups.append((DETECTION_GROUP, detection_cells(matrix)))
    return groups


class Session:
    """Evaluates cells of one matrix against one target.

    Args:
        matrix: the loaded matrix.
        target: the system under test (default: the matrix's ``target:``, else
            the default target). The matrix is bound to it: a name outside the
            target's vocabulary, or a problem the target finds
            (:meth:`~harness.targets.Target.check_matrix`), is raised here as a
            :class:`~harness.errors.MatrixError`.
        lenient: the target's own problems with the matrix become :attr:`notes`
            (``diff``, and a release line's matrix run against another release:
            the cells still run, and what differs shows in them).
    """

    def __init__(
        self, matrix: Matrix, target: Target | None = None, *, lenient: bool = False
    ) -> None:
        self.matrix = matrix
        self.target = target if target is not None else get_target(matrix.target_name)
        caps = self.target.capabilities
        vocabulary = self.target.vocabulary
        problems = binding_problems(matrix, self.target.name, vocabulary, caps.declared_support)
        if problems:
            raise MatrixError(problems)
        described = self.target.check_matrix(matrix)
        #: the matrix need not describe the target (another release line's file): mismatches
        #: are what changed, and the command shows them grouped
        self.lenient = lenient
        if described and not lenient:
            raise MatrixError(described)
        #: what binding found worth saying that fails nothing (``lenient``: the target's
        #: objections to the matrix as a description of it, such as another release line's
        #: file, are notes too)
        self.notes: tuple[str, ...] = tuple(self.target.notes) + tuple(str(p) for p in described)
        self.oracle = Oracle(matrix)
        self.vocabulary = vocabulary
        self.decoys = decoy_environment(matrix, vocabulary) if caps.environment == "mapping" else {}
        #: every cell checked so far, by node id: the known-failure bookkeeping
        self.checked: dict[str, CellResult] = {}
        self._inside = 0

    # --- one cell's inputs -----------------------------------------------------------------
    def platform(self, cell: Cell) -> Platform:
        profile = self.matrix.profiles[cell.profile]
        platform = profile.platform(cell.packages)
        if cell.triton_interpret is not None:  # a detection cell sets TRITON_INTERPRET itself
            on = interpreter_expected(self.matrix, profile, cell.triton_interpret)
            platform = platform.replace(triton_interpret=on)
        return platform

    def query(self, cell: Cell) -> Query:
        return Query(
            self.platform(cell), cell.env_dict, self.matrix.layers[cell.layer], cell.mock_dict
        )

    def expect(self, query: Query) -> Expected:
        """What the matrix's rules say the selection must do for ``query``."""
        return self.oracle.expect(query.platform, query.env, query.layer, query.mocks)

    def expected(self, cell: Cell) -> Expected:
        return self.expect(self.query(cell))

    def layer(self, layer_id: str | None = None) -> LayerSpec:
        return self.matrix.layer(layer_id)

    # --- the environment while cells run ----------------------------------------------------
    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        """The process environment for cells (restored afterwards; nestable).

        No selection variable of the caller's shell is in ``os.environ``; for a
        target handed each cell's environment as a mapping, every selection
        variable holds a decoy value instead (:func:`decoy_environment`): a
        selection that falls back to ``os.environ`` reads a decoy and fails the
        cell. Targets that read ``os.environ`` by design set each cell's
        variables there themselves.
        """
        if self._inside:
            yield
            return
        self._inside += 1
        try:
            with isolated_environ(self.decoys, self.vocabulary.variables):
                yield
        finally:
            self._inside -= 1

    def evaluate(self, query: Query, entry: str | None = None) -> Outcome:
        """The target's outcome for one query, in the session's environment."""
        with self.environment():
            return self.target.evaluate(query, self.matrix, entry)

    # --- one cell ------------------------------------------------------------------------
    def detect(self, cell: Cell) -> tuple[Platform, list[str]]:
        """The platform the target detects on the cell's profile's faked machine."""
        profile = self.matrix.profiles[cell.profile]
        value = cell.triton_interpret
        detected = self.target.detect(fake_machine(profile, value))
        on = None if value is None else self.platform(cell).triton_interpret  # the table's answer
        return detected, detection_problems(profile, detected, on)

    def check(self, cell: Cell) -> CellResult:
        """The cell's result (recorded for the known-failure bookkeeping)."""
        with self.environment():
            result = self._check(cell)
        self.checked[cell.nodeid] = result
        return result

    def _check(self, cell: Cell) -> CellResult:
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
            if cell.golden.warnings is not None and not self.target.capabilities.observes_log:
                problems.append(
                    f"golden: 'warnings' cannot be checked: target {self.target.describe()} does "
                    "not observe the log of its selection"
                )
            for entry in self.target.capabilities.golden_entries:
                other = self.target.evaluate(self.query(cell), self.matrix, entry)
                problems += [
                    f"via the {entry} entry point: {p}"
                    for p in compare(expected, other, self.matrix)
                    + golden_problems(cell.golden, expected, other, oracle_side=False)
                ]
        if not problems:
            return CellResult(cell, expected, actual, ())
        known = next(
            (k for k in self.matrix.known_failures if matches(k, cell, expected, actual)), None
        )
        return CellResult(
            cell,
            expected,
            actual,
            tuple(problems),
            self.platform(cell).describe(),
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
        """Every cell: the sweeps', the golden cases', then the detection cells.

        ``files`` keeps the sweeps and cases written in those files (display
        names); the detection cells belong to the matrix's first file.
        """
        cells = [cell for _, group in self.groups(files) for cell in group]
        return cells

    def groups(self, files: set[str] | None = None) -> list[tuple[str, list[Cell]]]:
        """``(group, cells)`` as :meth:`cells` lists them."""
        return cell_groups(self.matrix, self.target, files)

    def run(self, cells: Iterable[Cell] | None = None, fail_fast: bool = False) -> RunResult:
        """Check ``cells`` (default: every cell, then the known-failure entries no cell shows);
        ``fail_fast`` stops at the first failure."""
        start = time.perf_counter()
        everything = cells is None
        todo = self.cells() if cells is None else list(cells)
        results = []
        stopped = False
        with self.environment():
            for cell in todo:
                results.append(self.check(cell))
                if fail_fast and not results[-1].ok and results[-1].known is None:
                    stopped = True
                    break
        # after a fail-fast stop the run has failed already: no need to check the rest
        stale = self.stale_known() if everything and not stopped else []
        return RunResult(results, time.perf_counter() - start, self.target.describe(), stale)

    def stale_known(self) -> list[str]:
        """The known-failure entries that no cell shows; every cell not checked yet is
        checked first (so the answer never depends on which cells ran)."""
        with self.environment():
            for cell in self.cells():
                if cell.nodeid not in self.checked:
                    self.check(cell)
        shown = {id(r.known) for r in self.checked.values() if r.known is not None}
        stale = []
        for index, known in enumerate(self.matrix.known_failures):
            if id(known) not in shown:
                stale.append(
                    f"known failure at {self.matrix.where('known_failure', str(index))} "
                    f"(got {known.got!r}: {known.reason}) is shown by no cell any more: "
                    "the code was fixed or the entry no longer matches; remove or fix it"
                )
        return stale
