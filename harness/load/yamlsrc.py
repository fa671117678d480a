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
size; a file that is not a regular file is never opened for reading).
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.errors import MatrixError, Problem
from harness.load.limits import Limits, current_limits
from harness.load.text import (
    NONCHARACTERS,
    char_kind,
    describe_char,
    escape_unsafe,
    unsafe_char,
)
from kernels.errors import quoted

__all__ = [
    "Location",
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

PathKey = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Location:
    """A line of a matrix file, printed ``file:line``."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


#: Marks "no document given" for :func:`dotted` (``None`` is a valid YAML value).
_NO_DATA: Any = object()
#: A key longer than this is shortened in messages (a 1 MB key is not echoed whole).
_MAX_KEY_TEXT = 200


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def dotted(path: PathKey, data: Any = _NO_DATA) -> str:
    """``("profiles", "b200", "packages", 1)`` -> ``profiles.b200.packages[1]``.

    With the document's ``data``, an integer is written as a list index only where
    the path goes through a list (a mapping key ``3`` is ``.3``). A key that is
    not a string is written as YAML spells it (``null``, ``true``, ``1.5``);
    a very long key is shortened.
    """
    out = ""
    node = data
    for part in path:
        in_list = isinstance(node, list) if node is not _NO_DATA else (
            isinstance(part, int) and not isinstance(part, bool)
        )
        if in_list:
            out += f"[{part}]"
        else:
            text = _key_text(part)
            out += f".{text}" if out else text
        if node is not _NO_DATA:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                node = _NO_DATA
    return out


def _key_text(part: Any) -> str:
    if part is None:
        return "null"
    if isinstance(part, bool):  # a YAML key written true/false/yes/no
        return str(part).lower()
    text = escape_unsafe(str(part))  # a message never carries a raw control character
    return text if len(text) <= _MAX_KEY_TEXT else text[: _MAX_KEY_TEXT - 3] + "..."


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


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


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
        raise UnreadableFile(f"is {_kind(info.st_mode)}, not a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)  # what was opened, not what the name pointed at before
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(f"is {_kind(info.st_mode)}, not a regular file")
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


class EditorLines:
    """Line numbers as an editor shows them.

    YAML 1.1 also breaks lines at NEL (U+0085), LINE SEPARATOR (U+2028) and
    PARAGRAPH SEPARATOR (U+2029), so the line of a YAML mark counts them;
    editors do not (they break at LF, CRLF and a lone CR). Every line the
    loader reports comes from a mark's character offset, counted here.
    """

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]

    def line(self, index: int) -> int:
        """The 1-based line of the character at ``index``."""
        return bisect.bisect_right(self.starts, index)

    def at(self, mark: Any) -> int:
        """The 1-based line of a YAML mark (its ``index`` is a character offset)."""
        return self.line(mark.index)


def parse_yaml(text: str, path: Path, name: str) -> Source:
    """Compose ``text`` into nodes (bounded depth and size) and build the data."""
    limits = current_limits()
    editor = EditorLines(text)
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        raise MatrixError(
            Problem(
                name,
                editor.line(bad.start()),
                "",
                f"invalid YAML: the character U+{ord(bad.group()):04X} is not allowed in a YAML "
                f"file ({char_kind(bad.group())})",
            )
        )
    try:
        node = _compose(text, limits, editor)
    except _LimitExceeded as exc:
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
    builder = _Builder(name, lines, limits, editor)
    try:
        data = builder.build(node, ())
    except _LimitExceeded as exc:
        raise MatrixError(Problem(name, exc.line, exc.key, exc.message)) from None
    if builder.problems:
        raise MatrixError(builder.problems)
    return Source(path, name, data, lines)


class _LimitExceeded(Exception):
    def __init__(self, line: int, message: str, key: str = "") -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.key = key


#: libyaml's parser when PyYAML was built with it (about ten times faster), else PyYAML's own.
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str, limits: Limits, editor: EditorLines) -> Node | None:
    """The single document of ``text`` as a node graph, composed without recursion.

    PyYAML's composer recurses once per nesting level; this one keeps its own
    stack, refuses a document nested deeper than ``limits.max_depth`` or
    holding more than ``limits.max_nodes`` nodes at the line where it happens,
    and never expands an alias (the builder does, within its own budget).
    """
    loader = _Loader(text)
    try:
        loader.get_event()  # StreamStart
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()  # DocumentStart
        anchors: dict[str, Node] = {}
        stack: list[Node] = []  # open collections
        keys: list[Node | None] = []  # mappings: the key waiting for its value
        root: Node | None = None
        count = 0
        while True:
            event = loader.get_event()
            # libyaml's marks and PyYAML's alike (their types differ; both have line and index)
            start: Any = event.start_mark
            end: Any = event.end_mark
            line = editor.at(start)
            node: Node | None = None
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                node = stack.pop()
                keys.pop()
                node.end_mark = event.end_mark
                if not stack:
                    root = node
                    break
                _attach(stack[-1], keys, node)
                continue
            if isinstance(event, yaml.AliasEvent):
                if event.anchor not in anchors:
                    raise yaml.composer.ComposerError(
                        None, None, f"found undefined alias {event.anchor!r}", start
                    )
                node = _Alias(anchors[event.anchor], start, end)
            else:
                count += 1
                if count > limits.max_nodes:
                    raise _LimitExceeded(line, f"more than {limits.max_nodes} values in one file")
                tag = event.tag
                if isinstance(event, yaml.ScalarEvent):
                    if tag is None or tag == "!":
                        tag = loader.resolve(ScalarNode, event.value, event.implicit)
                    node = ScalarNode(tag, event.value, start, end, style=event.style)
                else:
                    if len(stack) >= limits.max_depth:
                        raise _LimitExceeded(line, f"nested more than {limits.max_depth} levels deep")
                    kind = SequenceNode if isinstance(event, yaml.SequenceStartEvent) else MappingNode
                    if tag is None or tag == "!":
                        tag = loader.resolve(kind, None, event.implicit)
                    node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
                if event.anchor is not None:
                    anchors[event.anchor] = node  # a later anchor of the same name wins
                if isinstance(node, (SequenceNode, MappingNode)):
                    stack.append(node)
                    keys.append(None)
                    continue
            if not stack:
                root = node
                break
            _attach(stack[-1], keys, node)
        loader.get_event()  # DocumentEnd
        if not loader.check_event(yaml.StreamEndEvent):
            event = loader.get_event()
            raise yaml.composer.ComposerError(
                "expected a single document in the stream",
                None,
                "but found another document",
                event.start_mark,
            )
        return root
    finally:
        loader.dispose()


class _Alias(Node):
    """A use of an anchored node: the node itself, and where the alias was written."""

    id = "alias"

    def __init__(self, target: Node, start_mark: Any, end_mark: Any) -> None:
        super().__init__(target.tag, None, start_mark, end_mark)
        self.target = target


def _attach(parent: Node, keys: list[Node | None], node: Node) -> None:
    if isinstance(parent, SequenceNode):
        parent.value.append(node)
    elif keys[-1] is None:
        keys[-1] = node
    else:
        parent.value.append((keys[-1], node))
        keys[-1] = None


_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class _Builder:
    """Nodes -> plain data, recording lines; aliases are expanded within the node budget."""

    def __init__(
        self, name: str, lines: dict[PathKey, int], limits: Limits, editor: EditorLines
    ) -> None:
        self.name = name
        self.editor = editor
        self.lines = lines
        self.limits = limits
        self.problems: list[Problem] = []
        self.constructor = yaml.SafeLoader("")  # only its scalar constructors are used
        self.built = 0
        self.open: set[int] = set()  # ids of the collections being built (alias cycles)

    def build(self, node: Node, path: PathKey) -> Any:
        self.built += 1
        # where this value is used: an alias's own line, not its anchor's
        line = self.editor.at(node.start_mark)
        if isinstance(node, _Alias):
            node = node.target
        if self.built > self.limits.max_nodes:
            raise _LimitExceeded(
                line,
                f"expands to more than {self.limits.max_nodes} values "
                "(YAML aliases repeat the node they refer to: an alias bomb?)",
                dotted(path),
            )
        if len(path) > self.limits.max_depth:
            raise _LimitExceeded(
                line, f"nested more than {self.limits.max_depth} levels deep", dotted(path)
            )
        if isinstance(node, (MappingNode, SequenceNode)):
            if id(node) in self.open:
                raise _LimitExceeded(
                    line,
                    "a YAML alias refers to the node that contains it "
                    f"(anchored at line {self.editor.at(node.start_mark)})",
                    dotted(path),
                )
            self.open.add(id(node))
            try:
                return self._collection(node, path)
            finally:
                self.open.discard(id(node))
        return self._scalar(node, path)

    def _collection(self, node: Node, path: PathKey) -> Any:
        expected = _MAP_TAG if isinstance(node, MappingNode) else _SEQ_TAG
        if node.tag != expected:
            self.problems.append(
                Problem(
                    self.name,
                    self.editor.at(node.start_mark),
                    dotted(path),
                    f"invalid YAML: the tag {node.tag!r} is not supported (plain mappings and lists only)",
                )
            )
            return None
        if isinstance(node, MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                line = self.editor.at(key_node.start_mark)
                if isinstance(key_node, _Alias):
                    key_node = key_node.target
                if not isinstance(key_node, ScalarNode):
                    self.problems.append(
                        Problem(self.name, line, dotted(path), "mapping keys must be plain scalars")
                    )
                    continue
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.problems.append(
                        Problem(
                            self.name, line, dotted(path), "YAML merge keys (<<) are not supported"
                        )
                    )
                    continue
                key = self._scalar(key_node, path)
                if key in out:
                    first = self.lines[path + (key,)]
                    self.problems.append(
                        Problem(
                            self.name,
                            line,
                            dotted(path + (key,)),
                            f"duplicate key {quoted(key)} (first defined at line {first})",
                        )
                    )
                    continue
                self.lines[path + (key,)] = line
                out[key] = self.build(value_node, path + (key,))
            return out
        items = []
        for index, item in enumerate(node.value):
            self.lines[path + (index,)] = self.editor.at(item.start_mark)
            items.append(self.build(item, path + (index,)))
        return items

    def _scalar(self, node: Node, path: PathKey) -> Any:
        line = self.editor.at(node.start_mark)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # e.g. a tag the safe loader does not know
            what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self.problems.append(Problem(self.name, line, dotted(path), f"invalid YAML: {what}"))
            return None
        except (ValueError, OverflowError) as exc:  # an integer of 5000 digits, 2024-13-45
            self.problems.append(
                Problem(self.name, line, dotted(path), f"invalid YAML: {_unreadable(node, exc)}")
            )
            return None
        if isinstance(value, str):
            bad = unsafe_char(value)
            if bad is not None:
                self.problems.append(
                    Problem(
                        self.name,
                        line,
                        dotted(path),
                        f"the character {describe_char(bad)} is not allowed in a matrix "
                        "(no report can hold it; written as a YAML escape?)",
                    )
                )
                return None
        return value


def _unreadable(node: Node, exc: Exception) -> str:
    """Why a plain scalar YAML resolved to a type cannot be built as that type."""
    kind = node.tag.rpartition(":")[2]
    digits = sum(c.isdigit() for c in node.value)
    if kind == "int" and digits > 100:
        return f"an integer of {digits} digits is out of range"
    return f"{_quote(node.value)} cannot be read as a {kind}: {str(exc).splitlines()[0]}"


def _quote(value: str, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
