"""``nvfp4-matrix``: the command line of the harness.

One module per subcommand, each a function from parsed arguments to an exit
code. Exit codes: 0 success, 1 a check failed (a mismatch, a surviving
mutant, a selection error in ``explain``), 2 bad input (unknown profile,
malformed ``--env``, unreadable or invalid matrix file) with a one-line
message per problem on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
from collections.abc import Sequence

from harness import TOOL
from harness.errors import HarnessError, MatrixError

__all__ = ["main", "run_subcommand"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, exit 2 (argparse's default also prints the usage block).
        self.exit(2, f"{self.prog}: error: {message}\n")


#: Subcommands listed first in ``--help``; any other module of this package
#: with an ``add_parser(subparsers)`` function is a subcommand too.
_FIRST = ("run", "explain", "table", "mutants", "schema")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=TOOL,
        description="Prove the NVFP4 kernel selection right on fake hardware, from a YAML matrix.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    for name in [n for n in _FIRST if n in found] + [n for n in found if n not in _FIRST]:
        module = importlib.import_module(f"{__name__}.{name}")
        if hasattr(module, "add_parser"):
            module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand (:func:`run_subcommand`) with interrupts and any output encoding handled.

    SIGINT and SIGTERM end the command with one line on stderr and exit code
    130 or 143 (:mod:`harness.cli._signals`); a file being written is left as
    it was. Standard output and error get plain fallbacks for symbols they
    cannot encode (:mod:`harness.cli._encoding`).
    """
    from harness.cli._encoding import plain_fallbacks
    from harness.cli._signals import Terminated, signals_as_exceptions

    plain_fallbacks()
    try:
        with signals_as_exceptions():
            return run_subcommand(argv)
    except KeyboardInterrupt:
        return _interrupted(signal.SIGINT)
    except Terminated as exc:
        return _interrupted(exc.signum)


def _interrupted(signum: int) -> int:
    from harness.cli._output import discard_stdout
    from harness.cli._signals import exit_code, signal_name

    try:
        if sys.stdout is not None:
            sys.stdout.flush()  # what was printed before the signal stays printed
    except (OSError, ValueError):
        discard_stdout()  # never a second error at the interpreter's exit
    stream = sys.stderr
    if stream is not None:
        try:
            stream.write(
                f"nvfp4-matrix: interrupted by {signal_name(signum)}; "
                "files being written were left as they were\n"
            )
            stream.flush()
        except (OSError, ValueError):
            pass
    return exit_code(signum)


def run_subcommand(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; the one place where errors become a line on stderr and exit 2.

    Each layer raises its own error type (:mod:`harness.errors`: a matrix
    problem, a usage error, an output error; :class:`kernels.errors.NvFp4Error`
    from the kernels); any of them, and any failure to write the output (a
    missing or unwritable folder, a full disk, a closed standard output), is
    one line per problem on stderr and exit code 2, never a traceback. A
    reader that goes away (``| head -1``) is not an error: the command
    finishes quietly with its own exit code.
    """
    from harness.cli._output import discard_stdout, stdout_is_closed
    from harness.load.limits import use_limits
    from kernels.errors import NvFp4Error

    parser = build_parser()
    args = parser.parse_args(argv)
    if stdout_is_closed():
        _error("standard output is closed (redirect it to /dev/null to discard the output)")
        return 2
    try:
        with use_limits(max_cells=getattr(args, "max_cells", None)):
            code = int(args.func(args))
        if sys.stdout is not None:
            sys.stdout.flush()  # a full disk is reported here, not by the interpreter's exit
        return code
    except MatrixError as exc:
        for problem in exc.problems:
            _error(str(problem))
        return 2
    except (HarnessError, NvFp4Error) as exc:
        _error(str(exc))
        return 2
    except BrokenPipeError:
        # The reader went away before a plain print: not an error of ours.
        discard_stdout()
        return 0
    except OSError as exc:
        discard_stdout()
        if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename is not None:
            _error(f"cannot write into {exc.filename}: a file stands where a folder is needed")
        elif exc.filename is not None:
            _error(f"cannot write {exc.filename}: {exc.strerror or exc}")
        else:
            _error(f"cannot write to standard output: {exc.strerror or exc}")
        return 2


#: The longest error line printed whole (messages quote at most about 200 characters of a
#: bad value; this bounds anything that did not).
_MAX_LINE = 2000


def _error(message: str) -> None:
    """One line on stderr (and nothing at all when stderr is closed too)."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        for line in message.splitlines() or [""]:
            if len(line) > _MAX_LINE:  # whatever quoted a value too generously: not a flood
                line = f"{line[: _MAX_LINE // 2]}... ({len(line)} characters)"
            stream.write(f"{TOOL}: error: {line}\n")
        stream.flush()
    except OSError:
        pass
