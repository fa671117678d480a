"""The lanes' command line: ``run``, ``list`` and the internal ``_part``; errors as one line."""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

from harness.mutation.config import LaneError

__all__ = ["command_parser", "report_tag", "run_command"]


def report_tag(label: str) -> str:
    """A file-name stem for a run's reports: the label, shortened with a hash when long
    (``--match`` patterns can make it longer than a file name may be)."""
    tag = "".join(c if c.isalnum() or c in "._-" else "-" for c in label.replace("/", "-of-"))
    if len(tag) > 80:
        tag = tag[:60] + "-" + hashlib.sha1(label.encode()).hexdigest()[:12]
    return tag


def command_parser(prog: str, description: str, shards: bool) -> tuple[argparse.ArgumentParser, Any]:
    """``run``, ``list`` and the internal ``_part`` (``shards``: with ``--shard``/``--ci``);
    returns the parser and its subparsers, for more commands."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    helps = {"run": "generate the mutants and kill each (the lane); a complete run records its "
                    "figures in docs/records/",
             "list": "the mutants, without running them"}
    for name in ("run", "list"):
        p = sub.add_parser(name, help=helps[name])
        if shards:
            which = p.add_mutually_exclusive_group()
            which.add_argument("--shard", help="INDEX/COUNT, or 'buildkite' (BUILDKITE_PARALLEL_JOB)")
            which.add_argument("--ci", action="store_true", help="the fixed part CI runs")
        p.add_argument("--match", action="append", help="only mutants whose report line "
                       "contains this text (a file, 'file:line', a unit, an operator); repeatable")
        if name == "run":
            p.add_argument("--quiet", action="store_true", help="no line per mutant")
            p.add_argument("--jobs", type=int, default=None,
                           help="processes, one shard each (default: one per core)")
    part = sub.add_parser("_part", help="(internal) one process of run --jobs")
    part.add_argument("todo")
    part.add_argument("out")
    part.add_argument("label")
    part.add_argument("--quiet", action="store_true")
    return parser, sub


def run_command(commands: Mapping[str, Callable[[argparse.Namespace], int]],
                args: argparse.Namespace, name: str) -> int:
    """The chosen command; a :class:`LaneError` (or an interrupt) is one line on stderr."""
    try:
        return commands[args.command](args)
    except LaneError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
