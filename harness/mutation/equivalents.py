"""The recorded survivors: equivalent mutants, and accepted ones, each with a one-line reason.

``equivalent``: the mutant cannot change what the code does. ``accepted``: it
does, but the matrix deliberately does not pin that behaviour (the reason says
which, and what would pin it). Both are matched by the mutant's stable key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.mutation.config import LaneError
from harness.mutation.mutants import mutant_key

__all__ = ["SECTIONS", "Equivalent", "load_equivalents", "load_listed"]


@dataclasses.dataclass(frozen=True)
class Equivalent:
    file: str
    unit: str
    operator: str
    before: str
    after: str
    reason: str
    line: int  # where the entry is written in equivalents.yaml
    nth: int = 0
    #: the name of the file the entry is written in
    source: str = "equivalents.yaml"

    @property
    def key(self) -> str:
        return mutant_key(self.file, self.unit, self.operator, self.before, self.after, self.nth)


#: What an entry of each section of an equivalents file is called in messages.
SECTIONS = {"equivalent": "an equivalent", "accepted": "an accepted survivor"}


def load_equivalents(path: Path, section: str = "equivalent") -> list[Equivalent]:
    """The entries of one section of an equivalents file (``equivalent``, or ``accepted``:
    survivors that change behaviour the matrix deliberately does not pin)."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
        data = {str(k): v for k, v in loader.construct_mapping(node).items()}
        data["__line__"] = node.start_mark.line + 1
        return data

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    data = yaml.load(path.read_text(), Loader=_Loader) or {}
    entries = data.get(section, []) or []
    out = []
    fields = ("file", "unit", "operator", "before", "after", "reason")
    for entry in entries:
        missing = [f for f in fields if not isinstance(entry.get(f), str)]
        extra = sorted(set(entry) - set(fields) - {"__line__", "nth"})
        where = f"{path.name}:{entry['__line__']}"
        if missing or extra:
            raise LaneError(f"{where}: {SECTIONS[section]} needs {', '.join(fields)} (strings); "
                            f"missing {missing or 'none'}, unknown {extra or 'none'}")
        if not entry["reason"].strip() or "\n" in entry["reason"].strip():
            raise LaneError(f"{where}: 'reason' must be one line")
        nth = entry.get("nth", 0)
        if not isinstance(nth, int) or nth < 0:
            raise LaneError(f"{where}: 'nth' is a count (0, 1, ...)")
        out.append(Equivalent(**{f: entry[f] for f in fields}, line=entry["__line__"], nth=nth,
                              source=path.name))
    keys = [e.key for e in out]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise LaneError(f"{path.name}: listed twice: {twice[0]}")
    return out


def load_listed(path: Path) -> tuple[list[Equivalent], list[Equivalent]]:
    """The ``equivalent`` and ``accepted`` sections of a file; both must be there to read."""
    if not path.is_file():
        raise LaneError(f"{path} is missing: every lane needs its list of equivalent and "
                        "accepted survivors (it may be empty)")
    equivalent = load_equivalents(path)
    accepted = load_equivalents(path, section="accepted")
    both = sorted({e.key for e in equivalent} & {e.key for e in accepted})
    if both:
        raise LaneError(f"{path.name}: listed as equivalent and as accepted: {both[0]}")
    return equivalent, accepted
