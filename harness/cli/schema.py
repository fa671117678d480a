"""``nvfp4-matrix schema``: the JSON schema of the matrix format, generated from the models."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["add_parser", "schema_command", "schema_text"]


def schema_text() -> str:
    from harness.models import MatrixFile

    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **MatrixFile.model_json_schema(),
    }
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="print (or write, or check) the JSON schema of matrix files")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="PATH", help="write the schema to PATH")
    group.add_argument(
        "--check", metavar="PATH", help="exit 1 when PATH differs from the generated schema"
    )
    p.set_defaults(func=schema_command)


def schema_command(args: argparse.Namespace) -> int:
    text = schema_text()
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
        print(f"wrote {args.write}")
        return 0
    if args.check:
        try:
            current = Path(args.check).read_text(encoding="utf-8")
        except OSError as exc:
            from harness.errors import UsageError

            raise UsageError(f"cannot read {args.check}: {exc.strerror}") from None
        if current != text:
            print(
                f"{args.check} is out of date: run `nvfp4-matrix schema --write {args.check}`",
                file=sys.stderr,
            )
            return 1
        print(f"{args.check} is up to date")
        return 0
    sys.stdout.write(text)
    return 0
