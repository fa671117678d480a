"""Matrix YAML files collected as tests: one item per cell, located at its YAML line.

A failure prints the cell's report (expected vs actual, the rule, the decision
record), not a traceback; a bad file is a one-line collection error
``file:line: key: message``; a known failure of the matrix is an ``xfail``
with its reason.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["INI_FILES", "CellItem", "CellMismatch", "MatrixGroup", "MatrixYamlFile", "globs", "wanted"]

INI_FILES = "nvfp4_matrix_files"
DEFAULT_GLOB = "matrix/*.yaml"


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

    def __init__(self, result: Any) -> None:
        super().__init__(result.problems[0] if result.problems else "mismatch")
        self.result = result


class MatrixYamlFile(pytest.File):
    """A matrix file: yields one group per sweep (and one for the golden cases)."""

    def collect(self) -> Iterator[pytest.Collector]:
        from harness.evaluate.cells import expand
        from harness.evaluate.runner import Runner
        from harness.load import load_matrix

        matrix = load_matrix([self.path])
        # Only the sweeps and cases written in this file: an included file
        # (gpus.yaml) is collected on its own and holds no cells.
        groups = list(expand(matrix, files={matrix.files[0].name}))
        if not groups:
            return
        runner = Runner(matrix)
        for group, cells in groups:
            yield MatrixGroup.from_parent(self, name=group, cells=cells, runner=runner)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from harness.errors import MatrixError

        if isinstance(excinfo.value, MatrixError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class MatrixGroup(pytest.Collector):
    def __init__(self, *, cells: list[Any], runner: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cells = cells
        self.runner = runner

    def collect(self) -> Iterator[pytest.Item]:
        for cell in self.cells:
            yield CellItem.from_parent(self, name=cell.id, cell=cell, runner=self.runner)


class CellItem(pytest.Item):
    """One cell: the real selection must agree with the oracle (and the golden case)."""

    def __init__(self, *, cell: Any, runner: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell
        self.runner = runner

    def runtest(self) -> None:
        from harness.evaluate.runner import clean_environment

        with clean_environment():
            result = self.runner.check(self.cell)
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


