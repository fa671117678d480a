"""The exceptions of the ``harness`` package.

One root, :class:`HarnessError`. :class:`MatrixError` carries every problem
found in the matrix files, each with its file, line and dotted key path, so a
maintainer can jump straight to it (``matrix/gpus.yaml:12: profiles.b200.capability: ...``).
"""

from __future__ import annotations

import dataclasses

__all__ = ["HarnessError", "MatrixError", "Problem", "UsageError"]


class HarnessError(Exception):
    """Root of every error raised by this package."""


class UsageError(HarnessError, ValueError):
    """Bad command-line input: unknown profile, malformed ``--env``, ..."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong in a matrix file.

    Attributes:
        file: the file as the user named it (relative when under the cwd).
        line: 1-based line, ``None`` when the file could not be read at all.
        key: dotted key path (``profiles.b200.capability``), ``""`` for the file itself.
        message: what is wrong and, where possible, what would be right.
    """

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class MatrixError(HarnessError, ValueError):
    """A matrix file is unreadable, not YAML, or does not fit the format.

    ``problems`` lists every problem found (sorted by file and line);
    ``str()`` gives one line per problem.
    """

    def __init__(self, problems: list[Problem] | Problem) -> None:
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0))
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def first(self) -> Problem:
        return self.problems[0]
