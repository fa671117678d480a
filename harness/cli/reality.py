"""``nvfp4-matrix reality [--profile ID]``: compare the matrix with the real machine.

Exit 0 when the profile's declared support and the selection under each
single forcing variable match the real machine, 1 on any mismatch, 2 when no
profile describes this machine (the message suggests one to paste).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from harness.cli.common import add_matrix_argument, open_session

__all__ = ["add_parser", "reality_command"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reality", help="check the matrix against the real machine (GPU runners)")
    add_matrix_argument(p, target=False)
    p.add_argument(
        "--profile",
        metavar="ID",
        default=None,
        help="the profile this runner is (default: $NVFP4_MATRIX_PROFILE, else matched by device)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=reality_command)


def reality_command(args: argparse.Namespace) -> int:
    from harness.evaluate.reality import UnknownGpuError, check_reality, profile_from_environment

    session = open_session(args)[0]
    profile = args.profile or profile_from_environment(os.environ)
    try:
        report = check_reality(session, profile_id=profile)
    except UnknownGpuError as exc:
        print(f"nvfp4-matrix: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format())
    return 0 if report.ok else 1
