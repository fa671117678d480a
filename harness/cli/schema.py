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
    from harness.cli._output import write_output_file
    from harness.errors import UsageError

    text = schema_text()
    if args.write:
        write_output_file(args.write, text)
        print(f"wrote {args.write}")
        return 0
    if args.check:
        from harness.load.yamlsrc import UnreadableFile, read_bytes

        # The loader's safe reader: a regular file within the size limit, never a FIFO that
        # blocks or a device that never ends.
        try:
            current = read_bytes(Path(args.check)).decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{args.check} is not a JSON schema (not UTF-8 text)") from None
        except UnreadableFile as exc:
            raise UsageError(f"cannot read {args.check}: it {exc.reason}") from None
        if current == text:
            print(f"{args.check} is up to date")
            return 0
        if not _is_json_schema(current):
            # Never advise --write for a file that is not a schema: it would be overwritten.
            raise UsageError(
                f"{args.check} is not a JSON schema file; name the schema "
                "(e.g. matrix/schema.json)"
            )
        print(
            f"{args.check} is out of date: run `nvfp4-matrix schema --write {args.check}`",
            file=sys.stderr,
        )
        return 1
    sys.stdout.write(text)
    return 0


def _is_json_schema(text: str) -> bool:
    """Could ``text`` be a (stale) JSON schema: is it a JSON object?"""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict)
