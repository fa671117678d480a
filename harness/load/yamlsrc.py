"""YAML loading that remembers where every key came from.

PyYAML's ``safe_load`` forgets line numbers and silently keeps the last of two
equal keys. Here the document is *composed* into nodes first and then built by
hand, so that:

* every mapping key and list item gets its 1-based line (:attr:`Source.lines`,
  keyed by the path of keys/indexes from the root);
* a key repeated in one mapping is an error naming both lines (two profiles
  called ``b200`` must not quietly become one);
* scalars are still built by PyYAML's safe constructor (so ``yes``/``no`` are
  booleans, as in any YAML 1.1 reader: the models then refuse them where a
  string is expected, with a hint to quote them).

Merge keys (``<<``) are not supported: anchors and aliases are, within the
bounds of :mod:`harness.load.limits` (depth, values after expansion, file
size; a file that is not a regular file is never opened for reading). The
composition and the building are :mod:`harness.load.yamlnodes`; this module reads
the file, refuses what YAML and an editor would read differently, and keeps the lines.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from harness.errors import MatrixError, Problem, not_a_regular_file
from harness.load.limits import current_limits
from harness.load.text import NONCHARACTERS, char_kind, describe_char
from harness.load.yamlnodes import Builder, EditorLines, LimitExceeded, PathKey, compose, dotted

__all__ = [
    "Location",
    "PathKey",
    "Source",
    "UnreadableFile",
    "decode",
    "display_path",
    "dotted",
    "inside",
    "load_yaml",
    "parse_yaml",
    "read_bytes",
]



@dataclasses.dataclass(frozen=True)
class Location:
    """A line of a matrix file, printed ``file:line``."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


@dataclasses.dataclass
class Source:
    """One loaded YAML file: its data and the line of every key path."""

    path: Path
    name: str
    data: Any
    lines: dict[PathKey, int]

    def line(self, path: PathKey) -> int:
        """Line of ``path``, or of its nearest ancestor that has one (1 for the root)."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def problem(self, path: PathKey, message: str) -> Problem:
        return Problem(self.name, self.line(path), dotted(path, self.data), message)


class UnreadableFile(Exception):
    """A path that is not read: missing, not a regular file, too large, or unreadable."""

    def __init__(self, reason: str, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


def read_bytes(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file within the size limit.

    Never blocks (a FIFO is refused before it is read) and never reads more
    than :attr:`Limits.max_file_bytes` + 1 bytes. Raises :class:`UnreadableFile`.
    """
    limit = current_limits().max_file_bytes
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UnreadableFile("does not exist", missing=True) from None
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFile(not_a_regular_file(info.st_mode))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)  # what was opened, not what the name pointed at before
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(not_a_regular_file(info.st_mode))
        if info.st_size > limit:
            raise UnreadableFile(f"is {info.st_size} bytes, more than the limit of {limit}")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    if size > limit:
        raise UnreadableFile(f"is more than the limit of {limit} bytes")
    return b"".join(chunks)


def decode(data: bytes, name: str) -> str:
    """UTF-8 text of a matrix file; :class:`MatrixError` naming the line of a bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start : exc.start + 1].hex()
        raise MatrixError(
            Problem(
                name, line, "", f"not UTF-8 text: byte 0x{byte} at column {column} ({exc.reason})"
            )
        ) from None
    return text.removeprefix("\ufeff")


def load_yaml(path: Path) -> Source:
    """Read and parse ``path``; :class:`MatrixError` with file and line on any failure."""
    name = display_path(path)
    try:
        data = read_bytes(path)
    except UnreadableFile as exc:
        raise MatrixError(
            Problem(name, None, "", f"cannot read the matrix file: it {exc.reason}")
        ) from None
    return parse_yaml(decode(data, name), path, name)


#: What YAML allows in a file (YAML 1.1, the printable set), less the Unicode non-characters
#: (which no report can hold, :mod:`harness.load.text`): everything else is refused.
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
    f"|[{NONCHARACTERS}]"
)


#: Line breaks to YAML 1.1 that no editor shows as one (NEL, LINE and PARAGRAPH SEPARATOR).
_YAML_ONLY_BREAK = re.compile("[\x85\u2028\u2029]")


def parse_yaml(text: str, path: Path, name: str) -> Source:
    """Compose ``text`` into nodes (bounded depth and size) and build the data."""
    limits = current_limits()
    editor = EditorLines(text)
    refused = (
        (_NON_PRINTABLE, lambda c: f"invalid YAML: the character U+{ord(c):04X} is not allowed "
                                   f"in a YAML file ({char_kind(c)})"),
        (_YAML_ONLY_BREAK, lambda c: f"the character {describe_char(c)} breaks the line for "
                                     "YAML 1.1 but not in an editor: the file would not read as "
                                     "it shows (a comment would end there, a quoted value would "
                                     "fold); remove it"),
    )
    for pattern, why in refused:
        found = pattern.search(text)
        if found is not None:
            raise MatrixError(Problem(name, editor.line(found.start()), "", why(found.group())))
    try:
        node = compose(text, limits, editor)
    except LimitExceeded as exc:
        raise MatrixError(Problem(name, exc.line, "", exc.message)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = editor.at(mark) if mark is not None else 1
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        detail = f"{context}, {what}" if context else what
        raise MatrixError(Problem(name, line, "", f"invalid YAML: {detail}")) from None
    lines: dict[PathKey, int] = {(): 1}
    if node is None:
        return Source(path, name, None, lines)
    builder = Builder(name, lines, limits, editor)
    try:
        data = builder.build(node, ())
    except LimitExceeded as exc:
        raise MatrixError(Problem(name, exc.line, exc.key, exc.message)) from None
    if builder.problems:
        raise MatrixError(builder.problems)
    return Source(path, name, data, lines)


def resolve_include(base: Path, entry: str) -> Path:
    """An ``include:`` entry is relative to the including file's folder (no ``~``, no variables)."""
    return base.parent / entry


def inside(path: Path, root: Path) -> bool:
    """Is ``path`` (symbolic links resolved) in the folder ``root`` or below it?"""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True
