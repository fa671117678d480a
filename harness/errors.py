"""The exceptions of the ``harness`` package.

One root, :class:`HarnessError`, and one error type per layer:

* loading (:mod:`harness.load`): :class:`MatrixError`, which carries every
  problem found in the matrix files, each with its file, line and dotted key
  path, so a maintainer can jump straight to it
  (``matrix/gpus.yaml:12: profiles.b200.capability: ...``);
* the command line and the targets it names: :class:`UsageError`;
* writing output (a report folder, ``--write``/``-o``): :class:`OutputError`.

The kernels' own errors derive from :class:`kernels.errors.NvFp4Error`.
``harness.cli.main`` turns any of them into one line per problem on stderr
and exit code 2, in one place.
"""

from __future__ import annotations

import dataclasses
import stat

__all__ = [
    "HarnessError",
    "MatrixError",
    "OutputError",
    "Problem",
    "TargetUnavailable",
    "UsageError",
    "not_a_regular_file",
]


class HarnessError(Exception):
    """Root of every error raised by this package."""


class UsageError(HarnessError, ValueError):
    """Bad command-line input: unknown profile, malformed ``--env``, ..."""


class TargetUnavailable(UsageError):
    """The system under test is not installed here (e.g. no vLLM in this environment)."""


class OutputError(HarnessError, OSError):
    """Output that cannot be written: a missing or unwritable folder, a full disk, a closed stdout."""


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


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_a_regular_file(mode: int) -> str:
    """Why a path whose ``st_mode`` is ``mode`` is refused: ``"is a FIFO (named pipe), not a
    regular file"`` (a file the harness reads or writes must be a regular file)."""
    kind = next((name for test, name in _KINDS if test(mode)), "something else")
    return f"is {kind}, not a regular file"
