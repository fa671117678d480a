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
import os
import pkgutil
import sys
from collections.abc import Sequence

from harness.errors import HarnessError, MatrixError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, exit 2 (argparse's default also prints the usage block).
        self.exit(2, f"{self.prog}: error: {message}\n")


#: Subcommands listed first in ``--help``; any other module of this package
#: with an ``add_parser(subparsers)`` function is a subcommand too.
_FIRST = ("run", "explain", "table", "mutants", "schema")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nvfp4-matrix",
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
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except MatrixError as exc:
        for problem in exc.problems:
            print(f"nvfp4-matrix: error: {problem}", file=sys.stderr)
        return 2
    except HarnessError as exc:
        print(f"nvfp4-matrix: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader (`| head`) went away: not an error of ours. Point stdout
        # at devnull so the interpreter's final flush does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
