"""YAML text -> nodes -> plain data, every key's line remembered (the loader's inner part).

:func:`compose` builds the node graph of one document without recursion, within the
depth and size bounds of :mod:`harness.load.limits`; :class:`Builder` turns it into
plain data, recording the line of every key and list item, refusing a key repeated
in one mapping, a value no report can hold and a scalar no code can convert (an
integer of 5000 digits, the date 2024-13-45). Lines are counted as an editor counts
them (:class:`EditorLines`). :mod:`harness.load.yamlsrc` reads files through it.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.errors import Problem
from harness.load.limits import Limits
from harness.load.text import describe_char, escape_unsafe, unsafe_char
from kernels.errors import quoted

__all__ = ["Builder", "EditorLines", "LimitExceeded", "PathKey", "compose", "dotted"]


PathKey = tuple[str | int, ...]


#: Marks "no document given" for :func:`dotted` (``None`` is a valid YAML value).
_NO_DATA: Any = object()
#: A key longer than this is shortened in messages (a 1 MB key is not echoed whole).
_MAX_KEY_TEXT = 200


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


class LimitExceeded(Exception):
    def __init__(self, line: int, message: str, key: str = "") -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.key = key


#: libyaml's parser when PyYAML was built with it (about ten times faster), else PyYAML's own.
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compose(text: str, limits: Limits, editor: EditorLines) -> Node | None:
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
                    raise LimitExceeded(line, f"more than {limits.max_nodes} values in one file")
                tag = event.tag
                if isinstance(event, yaml.ScalarEvent):
                    if tag is None or tag == "!":
                        tag = loader.resolve(ScalarNode, event.value, event.implicit)
                    node = ScalarNode(tag, event.value, start, end, style=event.style)
                else:
                    if len(stack) >= limits.max_depth:
                        raise LimitExceeded(line, f"nested more than {limits.max_depth} levels deep")
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


class Builder:
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
            raise LimitExceeded(
                line,
                f"expands to more than {self.limits.max_nodes} values "
                "(YAML aliases repeat the node they refer to: an alias bomb?)",
                dotted(path),
            )
        if len(path) > self.limits.max_depth:
            raise LimitExceeded(
                line, f"nested more than {self.limits.max_depth} levels deep", dotted(path)
            )
        if isinstance(node, (MappingNode, SequenceNode)):
            if id(node) in self.open:
                raise LimitExceeded(
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
