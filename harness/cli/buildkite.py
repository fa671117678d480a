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
    from harness.targets.vllm import MATRIX_FOLDER

    matrix = load(args.matrix)
    # One lane per release line: matrix/vllm/0.20.yaml is checked by tox -e vllm-0.20.
    lanes = [p.stem for p in sorted((Path.cwd() / MATRIX_FOLDER).glob("*.yaml"))]
    pipeline = generate_pipeline(matrix, matrix_paths=args.matrix, vllm_lanes=lanes)
    text = yaml.safe_dump(pipeline, sort_keys=False, width=120)
    if args.output:
        write_output_file(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
