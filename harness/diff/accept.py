"""Changes a pull request makes on purpose: ``--accept FILE``.

The file lists expected changes, each with the attributes of the cells it
covers (``where``, as the diff prints them), globs over the base and the head
outcome (as the diff prints them) and the reason::

    accepted:
      - where: [VLLM_BATCH_INVARIANT true, weight-only layer]
        base: "ValueError: * does not support W4A16"
        head: "ValueError: Forced NVFP4 kernel HummingNvFp4LinearKernel *"
        reason: vLLM 0.34 forces Humming for weight-only layers under batch invariance

A changed cell is accepted when some entry's attributes are all the cell's and
both globs match. An entry that accepts no changed cell fails the diff, as a
known failure no cell shows does: the list cannot rot.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.diff.changes import CellChange
from harness.errors import MatrixError, Problem
from harness.load.problems import translate
from harness.load.yamlsrc import UnreadableFile, decode, display_path, parse_yaml, read_bytes

__all__ = ["Acceptance", "AcceptedChange", "accepted_changes", "load_accepted"]


class AcceptedChange(BaseModel):
    """One expected change."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    where: list[str] = Field(min_length=1, description="attributes every accepted cell has")
    base: str = Field("*", description="glob over the base outcome, as the diff prints it")
    head: str = Field("*", description="glob over the head outcome, as the diff prints it")
    reason: str = Field(min_length=1)
    upstream: str | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    accepted: list[AcceptedChange] = Field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Acceptance:
    """Which changed cells each entry accepts, and the entries no change shows."""

    accepted: dict[str, tuple[int, AcceptedChange]]
    stale: tuple[str, ...]


def load_accepted(path: Path) -> list[tuple[int, AcceptedChange]]:
    """The entries of an accept file with their lines; a malformed file is a
    :class:`~harness.errors.MatrixError` naming file, line and key."""
    name = display_path(path)
    try:
        source = parse_yaml(decode(read_bytes(path), name), path, name)
    except UnreadableFile as exc:
        raise MatrixError(
            Problem(name, None, "", f"cannot read the accept file: it {exc.reason}")
        ) from None
    if not isinstance(source.data, dict):
        raise MatrixError(source.problem((), "an accept file is a mapping with an 'accepted:' list"))
    try:
        model = _File.model_validate(source.data)
    except ValidationError as exc:
        raise MatrixError(translate(source, exc, _File)) from None
    return [
        (source.line(("accepted", index)), entry) for index, entry in enumerate(model.accepted)
    ]


def accepted_changes(
    changes: tuple[CellChange, ...], entries: list[tuple[int, AcceptedChange]], file: str
) -> Acceptance:
    """Match every changed cell against the entries."""
    accepted: dict[str, tuple[int, AcceptedChange]] = {}
    used: set[int] = set()
    for change in changes:
        base, head = change.summary
        for line, entry in entries:
            if (
                set(entry.where) <= change.attributes
                and fnmatch.fnmatchcase(base, entry.base)
                and fnmatch.fnmatchcase(head, entry.head)
            ):
                accepted[change.cell.nodeid] = (line, entry)
                used.add(line)
                break
    stale = tuple(
        f"{file}:{line}: accepts no change any more ({', '.join(entry.where)}: {entry.reason}): "
        "remove or fix it"
        for line, entry in entries
        if line not in used
    )
    return Acceptance(accepted, stale)
