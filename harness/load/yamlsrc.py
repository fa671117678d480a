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

Merge keys (``<<``) are not supported: anchors and aliases are.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.errors import MatrixError, Problem

__all__ = ["Location", "Source", "display_path", "dotted", "load_yaml"]

PathKey = tuple[str | int, ...]


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


def dotted(path: PathKey) -> str:
    """``("profiles", "b200", "packages", 1)`` -> ``profiles.b200.packages[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


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
        return Problem(self.name, self.line(path), dotted(path), message)


def load_yaml(path: Path) -> Source:
    """Read and parse ``path``; :class:`MatrixError` with file and line on any failure."""
    name = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise MatrixError(
            Problem(name, None, "", f"cannot read the matrix file: {reason}")
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        detail = f"{context}, {what}" if context else what
        raise MatrixError(Problem(name, line, "", f"invalid YAML: {detail}")) from None
    lines: dict[PathKey, int] = {(): 1}
    if node is None:
        return Source(path, name, None, lines)
    builder = _Builder(name, lines)
    data = builder.build(node, ())
    if builder.problems:
        raise MatrixError(builder.problems)
    return Source(path, name, data, lines)


class _Builder:
    def __init__(self, name: str, lines: dict[PathKey, int]) -> None:
        self.name = name
        self.lines = lines
        self.problems: list[Problem] = []
        self.constructor = yaml.SafeLoader("")  # only its scalar constructors are used

    def build(self, node: Node, path: PathKey) -> Any:
        if isinstance(node, MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
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
                            f"duplicate key {key!r} (first defined at line {first})",
                        )
                    )
                    continue
                self.lines[path + (key,)] = line
                out[key] = self.build(value_node, path + (key,))
            return out
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.lines[path + (index,)] = item.start_mark.line + 1
                items.append(self.build(item, path + (index,)))
            return items
        return self._scalar(node, path)

    def _scalar(self, node: Node, path: PathKey) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # e.g. a tag the safe loader does not know
            what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self.problems.append(
                Problem(self.name, node.start_mark.line + 1, dotted(path), f"invalid YAML: {what}")
            )
            return None


def resolve_include(base: Path, entry: str) -> Path:
    """An ``include:`` entry is relative to the including file's folder."""
    candidate = Path(os.path.expanduser(entry))
    return candidate if candidate.is_absolute() else base.parent / candidate
