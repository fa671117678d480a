"""Helpers shared by the subcommands: the target and its matrix, ``--env`` parsing, the console."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli._output import PipeSafeConsole
from harness.errors import UsageError
from harness.load import Matrix, load_matrix
from harness.load.limits import DEFAULT_LIMITS
from harness.load.problems import closest
from kernels.errors import quoted

if TYPE_CHECKING:
    from harness.evaluate.session import Session
    from harness.targets import MutantInfo, Target, Vocabulary

__all__ = [
    "add_matrix_argument",
    "add_target_argument",
    "console",
    "load",
    "load_with_target",
    "non_negative_int",
    "open_session",
    "use_engine_path",
    "parse_env",
    "parse_packages",
    "positive_int",
]


#: Width of tables written to a log or a pipe, where nothing is gained by folding.
LOG_WIDTH = 200


def console(stderr: bool = False) -> PipeSafeConsole:
    """A console that does not squeeze wide tables when the output is a CI log.

    On a terminal the table fits its width; into a file or a pipe it is
    :data:`LOG_WIDTH` wide whatever ``COLUMNS`` says (test runners and CI
    agents often set 80). A reader that goes away ends the output quietly.
    """
    stream = sys.stderr if stderr else sys.stdout
    if stream is not None and stream.isatty():
        width = shutil.get_terminal_size((LOG_WIDTH, 40)).columns
    else:
        width = LOG_WIDTH
    return PipeSafeConsole(stderr=stderr, highlight=False, width=width, soft_wrap=False)


def add_matrix_argument(
    parser: argparse.ArgumentParser, target: bool = True, engine_path: bool = True
) -> None:
    """The optional ``MATRIX...`` positional every subcommand that reads the matrix takes,
    and ``--target`` where the subcommand can check another engine (``--engine-path`` where
    it runs one engine: ``diff`` gives each side its own)."""
    parser.add_argument(
        "matrix",
        nargs="*",
        metavar="MATRIX",
        help="matrix files (default: the target's own; matrix/*.yaml for the default target)",
    )
    parser.add_argument(
        "--max-cells",
        type=positive_int,
        metavar="N",
        help=f"refuse a matrix that expands to more than N cells (default {DEFAULT_LIMITS.max_cells})",
    )
    if target:
        add_target_argument(parser)
        parser.add_argument(
            "--line",
            metavar="NAME",
            help="the target's release line whose matrix to run (vllm: 0.33 runs "
            "matrix/vllm/0.33.yaml), whichever release is installed",
        )
    if target and engine_path:
        parser.add_argument(
            "--engine-path",
            "--vllm-path",
            dest="engine_path",
            metavar="DIR",
            type=Path,
            help="a source tree of the engine put first on the path (a checkout under review, "
            "or a release's Python files): checked without installing it",
        )


def use_engine_path(path: Path | None) -> None:
    """Put ``path`` (an engine's source tree) first on the import path, before any target
    imports its engine or reads its version."""
    if path is None:
        return
    if not path.is_dir():
        raise UsageError(f"--engine-path {path}: not a folder")
    sys.path.insert(0, str(path.resolve()))


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _bounded_int(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _bounded_int(text, 0)


def _bounded_int(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{quoted(text)} is not an integer") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} is less than {least}")
    return value


def add_target_argument(parser: argparse.ArgumentParser) -> None:
    from harness.targets import DEFAULT_TARGET

    parser.add_argument(
        "--target",
        metavar="NAME",
        help=f"the system under test: {DEFAULT_TARGET} (default), vllm, or a plugin's "
        "(default: the matrix file's target:)",
    )


def load_with_target(
    given: Sequence[str] | None,
    target_name: str | None,
    line: str | None = None,
    **options: object,
) -> tuple[Matrix, Target]:
    """The matrix and the target it describes.

    With files, the files say their target (``target:``), and ``--target`` must
    agree; without, the target names its own matrix (for vLLM: the file that
    covers the installed release, or the release ``line``'s).
    """
    from harness.targets import DEFAULT_TARGET, get_target

    named = get_target(target_name, **options) if target_name is not None else None
    if given:
        if line is not None:
            raise UsageError("--line chooses the target's own matrix: drop the matrix files")
        matrix = load_matrix([Path(p) for p in given])
        declared = matrix.target_name or DEFAULT_TARGET
        if named is not None and named.name != declared:
            raise UsageError(
                f"--target {named.name}: the matrix files describe target {declared} "
                f"(their 'target:'); drop --target or name {named.name}'s files"
            )
        return matrix, named or get_target(declared, **options)
    target = named or get_target(None, **options)
    matrix = load_matrix(list(target.default_matrix(Path.cwd(), line)))
    declared = matrix.target_name or DEFAULT_TARGET
    if declared != target.name:
        raise UsageError(f"target {target.name}'s default matrix describes target {declared}")
    return matrix, target


def open_session(
    args: argparse.Namespace, *, mutant: str | None = None, entry: str | None = None
) -> tuple[Session, MutantInfo | None]:
    """The session of the command's matrix (its files, or the target's own: ``--line``) and
    target (``--engine-path``: from that source tree), made into the named mutant and checked
    through the named entry point; and what the mutant is.

    A matrix the target chose that does not describe the installed release (another line's
    file) runs leniently, its reason first among the session's notes."""
    from harness.evaluate.session import Session

    use_engine_path(getattr(args, "engine_path", None))
    matrix, target = load_with_target(
        args.matrix, getattr(args, "target", None), getattr(args, "line", None)
    )
    notice = target.matrix_notice
    info = None
    if mutant:
        info = next((m for m in target.mutants() if m.name == mutant), None)
        target = target.mutant(mutant)
    if entry:
        target = target.with_entry(entry)
    session = Session(matrix, target, lenient=notice is not None)
    if notice is not None:
        session.notes = (notice, *session.notes)
    return session, info


def load(given: Sequence[str] | None) -> Matrix:
    """The matrix of ``given`` files, or the default target's matrix."""
    return load_with_target(given, None)[0]


def parse_env(items: Sequence[str] | None, vocabulary: Vocabulary) -> dict[str, str]:
    """``["VLLM_USE_FBGEMM=1", ...]`` -> dict, in the target's order; only inputs the target
    reads, each once."""
    env: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--env {quoted(item)}: expected NAME=VALUE, e.g. VLLM_USE_FBGEMM=1")
        if name not in vocabulary.inputs:
            close = closest(name, vocabulary.inputs) if len(name) <= 200 else None
            hint = f"; did you mean {close}?" if close else ""
            reads = f"(it reads: {', '.join(vocabulary.inputs)})"
            if name.startswith("-"):  # given as --env=--name=... or as its own option
                raise UsageError(f"{quoted(name)}: not an option this target reads{hint} {reads}")
            raise UsageError(
                f"--env {quoted(name)}: not a selection variable this target reads{hint} {reads}"
            )
        if name in env:
            raise UsageError(f"--env {name} given twice")
        env[name] = value
    return dict(vocabulary.ordered(env))


def parse_packages(text: str | None, vocabulary: Vocabulary) -> tuple[str, ...] | None:
    """``"flashinfer,fbgemm_gpu"`` -> tuple; ``""`` -> no package; ``None`` -> keep the profile's."""
    known = vocabulary.packages
    if text is None:
        return None
    names = tuple(sorted({p.strip() for p in text.split(",") if p.strip()}))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"--packages: unknown package {', '.join(_bounded(n) for n in unknown)} (known: {', '.join(known)})"
        )
    return names


def _bounded(name: str, limit: int = 200) -> str:
    """A name from the command line, shortened to ``limit`` characters for a message."""
    return name if len(name) <= limit else f"{name[:limit]}... ({len(name)} characters)"
