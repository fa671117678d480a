"""Helpers shared by the subcommands: matrix loading, ``--env`` parsing, the console."""

from __future__ import annotations

import argparse
import difflib
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from harness.errors import UsageError
from harness.matrix import DEFAULT_MATRIX_GLOB, Matrix, default_matrix_paths, load_matrix

__all__ = ["add_matrix_argument", "console", "load", "matrix_paths", "parse_env", "parse_packages"]


#: Width of tables written to a log or a pipe, where nothing is gained by folding.
LOG_WIDTH = 200


def console(stderr: bool = False) -> Console:
    """A console that does not squeeze wide tables when the output is a CI log.

    On a terminal the table follows its width (at least 120 columns); into a
    file or a pipe it is :data:`LOG_WIDTH` wide whatever ``COLUMNS`` says
    (test runners and CI agents often set 80).
    """
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        width = max(shutil.get_terminal_size((160, 40)).columns, 120)
    else:
        width = LOG_WIDTH
    return Console(stderr=stderr, highlight=False, width=width, soft_wrap=False)


def add_matrix_argument(parser: argparse.ArgumentParser) -> None:
    """The optional ``MATRIX...`` positional every subcommand that reads the matrix takes."""
    parser.add_argument(
        "matrix", nargs="*", metavar="MATRIX", help="matrix files (default: matrix/*.yaml)"
    )


def matrix_paths(given: Sequence[str] | None) -> list[Path]:
    if given:
        return [Path(p) for p in given]
    found = default_matrix_paths()
    if not found:
        raise UsageError(
            f"no matrix file: {DEFAULT_MATRIX_GLOB} matches nothing in {Path.cwd()}; name the files"
        )
    return found


def load(given: Sequence[str] | None) -> Matrix:
    return load_matrix(matrix_paths(given))


def parse_env(items: Sequence[str] | None) -> dict[str, str]:
    """``["VLLM_USE_FBGEMM=1", ...]`` -> dict; only selection variables, each once."""
    from kernels.envs import SELECTION_VARIABLES

    env: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--env {item!r}: expected NAME=VALUE, e.g. VLLM_USE_FBGEMM=1")
        if name not in SELECTION_VARIABLES:
            close = difflib.get_close_matches(name, SELECTION_VARIABLES, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise UsageError(
                f"--env {name}: not a selection variable{hint} (known: {', '.join(SELECTION_VARIABLES)})"
            )
        if name in env:
            raise UsageError(f"--env {name} given twice")
        env[name] = value
    return env


def parse_packages(text: str | None) -> tuple[str, ...] | None:
    """``"flashinfer,fbgemm_gpu"`` -> tuple; ``""`` -> no package; ``None`` -> keep the profile's."""
    from kernels.platform import OPTIONAL_PACKAGES

    if text is None:
        return None
    names = tuple(sorted({p.strip() for p in text.split(",") if p.strip()}))
    unknown = [n for n in names if n not in OPTIONAL_PACKAGES]
    if unknown:
        raise UsageError(
            f"--packages: unknown package {', '.join(unknown)} (known: {', '.join(OPTIONAL_PACKAGES)})"
        )
    return names
