"""``nvfp4-matrix buildkite [MATRIX...]``: print the Buildkite pipeline generated from the matrix."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.common import add_matrix_argument, load

__all__ = ["add_parser", "buildkite_command"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "buildkite",
        help="print the Buildkite pipeline for the matrix (pipe it to `buildkite-agent pipeline upload`)",
    )
    add_matrix_argument(p, target=False)
    p.add_argument("-o", "--output", metavar="FILE", help="write the YAML to FILE instead of stdout")
    p.set_defaults(func=buildkite_command)


def buildkite_command(args: argparse.Namespace) -> int:
    import yaml

    from harness.cli._output import write_output_file
    from harness.output.buildkite import generate_pipeline
    from harness.targets import available_targets, get_target

    matrix = load(args.matrix)
    # Each target asks for its own lanes (vLLM: two per release line).
    lanes = [lane for name in available_targets() for lane in get_target(name).ci_lanes(Path.cwd())]
    pipeline = generate_pipeline(matrix, matrix_paths=args.matrix, lanes=lanes)
    text = yaml.safe_dump(pipeline, sort_keys=False, width=120)
    if args.output:
        write_output_file(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
