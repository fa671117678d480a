"""Matrix YAML files collected as tests: one item per cell, located at its YAML line.

Each file is evaluated through one :class:`~harness.evaluate.session.Session`,
the one ``nvfp4-matrix run`` uses: the same environment (decoys included),
the same detection cells and golden entry points, and a last item per file
that fails when a known-failure entry is shown by no cell. A failure prints
the cell's report (expected vs actual, the rule, the decision record), not a
traceback; a bad file is a one-line collection error ``file:line: key:
message``; a known failure of the matrix is an ``xfail`` with its reason; a
file whose target is not installed here is one skip that says so.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.evaluate.cells import Cell
    from harness.evaluate.compare import CellResult
    from harness.evaluate.session import Session
    from harness.load import Matrix

__all__ = [
    "INI_FILES",
    "CellItem",
    "CellMismatch",
    "KnownFailuresItem",
    "MatrixGroup",
    "MatrixYamlFile",
    "globs",
    "wanted",
]

INI_FILES = "nvfp4_matrix_files"
DEFAULT_GLOB = "matrix/*.yaml"
#: The item that checks a file's known-failure entries, after its cells.
KNOWN_FAILURES_ITEM = "known-failures"


def globs(config: pytest.Config) -> list[str]:
    return list(config.getoption("nvfp4_matrix") or config.getini(INI_FILES))


def wanted(config: pytest.Config, file_path: Path) -> bool:
    resolved = file_path.resolve()
    for arg in config.args:
        candidate = Path(arg.split("::")[0])
        if not candidate.is_absolute():
            candidate = Path(config.invocation_params.dir) / candidate
        if candidate.resolve() == resolved:
            return True
    try:
        rel = resolved.relative_to(config.rootpath.resolve()).as_posix()
    except ValueError:
        return False
    return any(fnmatch.fnmatch(rel, pattern) for pattern in globs(config))


class CellMismatch(Exception):
    """The selection disagreed with the matrix for one cell."""

    def __init__(self, result: CellResult) -> None:
        super().__init__(result.problems[0] if result.problems else "mismatch")
        self.result = result


class StaleKnownFailures(Exception):
    """Known-failure entries that no cell shows any more."""


def _defines_cells(matrix: Matrix) -> bool:
    """Does the file itself (not a file it includes) define sweeps, cases or the precedence?"""
    own = matrix.files[0].name
    return (
        any(matrix.where("sweep", s.id).file == own for s in matrix.sweeps)
        or any(matrix.where("case", c.id).file == own for c in matrix.cases)
        or (matrix.precedence is not None and matrix.where("precedence", "").file == own)
    )


class MatrixYamlFile(pytest.File):
    """A matrix file: one group per sweep (and the golden cases, the detection cells), then
    the known-failures item."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        from harness.errors import TargetUnavailable
        from harness.evaluate.session import Session
        from harness.load import load_matrix
        from harness.targets import get_target

        matrix = load_matrix([self.path])
        # An included file (gpus.yaml) is collected on its own and holds no cells.
        if not _defines_cells(matrix):
            return
        try:
            target = get_target(matrix.target_name)
            mutant = self.config.getoption("nvfp4_mutant", None)
            if mutant:
                target = target.mutant(mutant)
            evaluation = Session(matrix, target)
        except TargetUnavailable as exc:
            yield UnavailableTarget.from_parent(self, name="target", reason=str(exc))
            return
        for group, cells in evaluation.groups(files={matrix.files[0].name}):
            yield MatrixGroup.from_parent(self, name=group, cells=cells, evaluation=evaluation)
        if matrix.known_failures:
            yield KnownFailuresItem.from_parent(self, name=KNOWN_FAILURES_ITEM, evaluation=evaluation)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from harness.errors import HarnessError, MatrixError

        if isinstance(excinfo.value, MatrixError):
            return str(excinfo.value)
        if isinstance(excinfo.value, HarnessError):
            return f"{self.path}: {excinfo.value}"
        return super().repr_failure(excinfo)


class MatrixGroup(pytest.Collector):
    def __init__(self, *, cells: list[Cell], evaluation: Session, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cells = cells
        self.evaluation = evaluation

    def collect(self) -> Iterator[pytest.Item]:
        for cell in self.cells:
            yield CellItem.from_parent(self, name=cell.id, cell=cell, evaluation=self.evaluation)


class CellItem(pytest.Item):
    """One cell: the target's selection must agree with the oracle (and the golden case)."""

    def __init__(self, *, cell: Cell, evaluation: Session, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell
        self.evaluation = evaluation

    def runtest(self) -> None:
        result = self.evaluation.check(self.cell)
        if result.known is not None:
            pytest.xfail(f"known failure: {result.known.reason} [{result.known.upstream}]")
        if not result.ok:
            raise CellMismatch(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CellMismatch):
            return excinfo.value.result.report()
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.cell.location.line - 1 if self.cell.location else None
        return self.path, line, f"cell {self.cell.id}"


class KnownFailuresItem(pytest.Item):
    """Every known-failure entry of the file must be shown by some cell (cells that were
    deselected or not run yet are checked here first)."""

    def __init__(self, *, evaluation: Session, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.evaluation = evaluation

    def runtest(self) -> None:
        stale = self.evaluation.stale_known()
        if stale:
            raise StaleKnownFailures("\n".join(stale))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, StaleKnownFailures):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "known-failure entries"


class UnavailableTarget(pytest.Item):
    """A file whose target is not installed here: skipped, saying why."""

    def __init__(self, *, reason: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason = reason

    def runtest(self) -> None:
        pytest.skip(self.reason)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "target"
