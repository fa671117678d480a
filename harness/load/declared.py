"""Declared support: each profile's ``supported`` list against the backends' rules.

For a target whose profiles declare support (this project's kernels: the
reality check compares the lists with the real machine), each profile's
``supported`` list must name declared backends and equal what the backends'
rules derive (through :mod:`harness.rules`, the interpreter the oracle uses
too), and every boundary of every support rule must be crossed by the
profiles (:func:`check_boundaries`): a rule whose boundary no profile sits on
either side of is a rule no cell can tell from its neighbour.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from harness.errors import Problem
from harness.load.problems import unknown_name
from harness.models import SupportRule, parse_version
from harness.rules.support import rule_verdict, support_verdict
from kernels.platform import Platform

if TYPE_CHECKING:
    from harness.load.matrix import Matrix

__all__ = ["check_boundaries", "check_declared_support", "uncrossed_boundaries"]


def check_declared_support(matrix: Matrix, problems: list[Problem]) -> None:
    """Each profile's ``supported`` list must name declared backends and equal what the
    backends' rules derive."""
    if not matrix.backends:
        return
    for pid, profile in matrix.profiles.items():
        src, path = matrix.source_of("profile", pid)
        for index, name in enumerate(profile.supported):
            if name not in matrix.backends:
                problems.append(
                    src.problem(path + ("supported", index),
                                unknown_name("backend", name, matrix.backends))
                )
    if problems:
        return
    check_boundaries(matrix, problems)
    for pid, profile in matrix.profiles.items():
        platform = profile.platform()
        derived = [
            name for name, spec in matrix.backends.items() if support_verdict(spec, platform)[0]
        ]
        declared = [name for name in matrix.backends if name in profile.supported]
        if derived == declared:
            continue
        src, path = matrix.source_of("profile", pid)
        parts = []
        for name in matrix.backends:
            ok, reason = support_verdict(matrix.backends[name], platform)
            if name in declared and not ok:
                parts.append(f"lists {name} but its rule says no ({reason})")
            elif name not in declared and ok:
                parts.append(
                    f"omits {name} but its rule ({matrix.backends[name].describe_support()}) accepts {pid}"
                )
        problems.append(
            src.problem(
                path + ("supported",), "disagrees with the backends' rules: " + "; ".join(parts)
            )
        )




def _version(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def _just_below(v: tuple[int, int]) -> tuple[tuple[int, int], str]:
    """The versions that sit just below a minimum: ``12.8`` -> 12.7; ``8.0`` -> any 7.x."""
    if v[1] > 0:
        return (v[0], v[1] - 1), _version((v[0], v[1] - 1))
    return (v[0] - 1, -1), f"{v[0] - 1}.x"


def uncrossed_boundaries(matrix: Matrix) -> list[tuple[str, int, str, str]]:
    """Support-rule boundaries that no profile crosses.

    Every requirement of a rule (``families``, ``min_capability``, ``min_cuda``,
    each package, ``fp4_dtype``, ``triton_interpret``) is a boundary, and a
    boundary is tested only when a profile that meets every *other* requirement
    of the rule sits on each side of it:

    * ``families``: a profile in each listed family, and one in each unlisted
      neighbouring family (one above or below a listed one) within the range
      of families the profiles describe: family 11 between 10 and 12;
    * ``min_capability`` / ``min_cuda``: a profile exactly at the minimum, and
      one just below it (``12.8``: 12.7; ``8.0``: any 7.x), so that an
      off-by-one in either direction changes a verdict;
    * a package, ``fp4_dtype``, ``triton_interpret``: a profile with and one
      without.

    Returns ``(backend, rule index, key, what is missing)``.
    """
    platforms = {pid: p.platform() for pid, p in matrix.profiles.items()}
    families = sorted({p.capability[0] for p in platforms.values() if p.capability})
    out: list[tuple[str, int, str, str]] = []
    for name, spec in matrix.backends.items():
        for index, rule in enumerate(spec.support):
            for key, sides in _sides(rule, families):
                other = _without(rule, key)
                holding = [p for p in platforms.values() if rule_verdict(other, p)[0]]
                for label, test in sides:
                    if not any(test(p) for p in holding):
                        out.append((name, index, key, label))
    return out


def _without(rule: SupportRule, key: str) -> SupportRule:
    """``rule`` with the requirement ``key`` (``packages.<name>`` for one package) dropped."""
    if key.startswith("packages."):
        package = key.split(".", 1)[1]
        return rule.model_copy(update={"packages": [p for p in rule.packages if p != package]})
    return rule.model_copy(update={key: None})


#: One side of a rule's boundary: what the profile is there, and whether a platform is.
Side = tuple[str, Callable[[Platform], bool]]


def _in_family(major: int, p: Platform) -> bool:
    return p.capability is not None and p.capability[0] == major


def _has_package(name: str, present: bool, p: Platform) -> bool:
    return (name in p.packages) is present


def _sides(rule: SupportRule, families: list[int]) -> Iterator[tuple[str, list[Side]]]:
    """``(key, [(label, test), ...])``: each requirement of ``rule`` and its boundary's sides."""
    if rule.families is not None:
        listed = set(rule.families)
        sides: list[Side] = [
            (f"in family sm_{f}x", functools.partial(_in_family, f)) for f in sorted(listed)
        ]
        low, high = (families[0], families[-1]) if families else (0, -1)
        neighbours = sorted({g for f in listed for g in (f - 1, f + 1)} - listed)
        sides += [
            (f"in the unlisted family sm_{g}x", functools.partial(_in_family, g))
            for g in neighbours
            if low <= g <= high
        ]
        yield "families", sides
    for key, field in (("min_capability", "capability"), ("min_cuda", "cuda_version")):
        text = getattr(rule, key)
        if text is None:
            continue
        at = parse_version(text)
        assert at is not None
        below, below_text = _just_below(at)

        def is_at(p: Platform, field: str = field, at: tuple[int, int] = at) -> bool:
            return bool(getattr(p, field) == at)

        def is_below(p: Platform, field: str = field, below: tuple[int, int] = below) -> bool:
            v = getattr(p, field)
            if v is None:
                return False
            return v == below if below[1] >= 0 else v[0] == below[0]

        yield key, [(f"at {text}", is_at), (f"at {below_text} (just below)", is_below)]
    for package in rule.packages:
        yield f"packages.{package}", [
            (f"with {package}", functools.partial(_has_package, package, True)),
            (f"without {package}", functools.partial(_has_package, package, False)),
        ]
    if rule.fp4_dtype is not None:
        yield "fp4_dtype", [
            ("whose torch has float4_e2m1fn_x2", lambda p: p.has_fp4_dtype),
            ("whose torch lacks float4_e2m1fn_x2", lambda p: not p.has_fp4_dtype),
        ]
    if rule.triton_interpret is not None:
        yield "triton_interpret", [
            ("with TRITON_INTERPRET=1", lambda p: p.triton_interpret),
            ("without TRITON_INTERPRET=1", lambda p: not p.triton_interpret),
        ]


def check_boundaries(matrix: Matrix, problems: list[Problem]) -> None:
    """A support-rule boundary that no profile crosses is a problem: add the profile."""
    missing: dict[tuple[str, int, str], list[str]] = {}
    for name, index, key, label in uncrossed_boundaries(matrix):
        missing.setdefault((name, index, key), []).append(label)
    for (name, index, key), labels in missing.items():
        src, path = matrix.source_of("backend", name)
        rule = matrix.backends[name].support[index]
        field = key.split(".")[0]
        detail = ", ".join(p for p in _other_requirements(rule, key)) or "none"
        problems.append(
            src.problem(
                path + ("support", index, field),
                f"the boundary {_boundary_text(rule, key)} of {name}'s rule is never crossed: "
                f"no profile that meets the rule's other requirements ({detail}) is "
                + " and none is ".join(labels)
                + "; add one to the profiles, so that a change of this requirement fails a cell",
            )
        )


def _boundary_text(rule: SupportRule, key: str) -> str:
    if key == "families":
        return "family " + " or ".join(f"sm_{f}x" for f in rule.families or [])
    if key == "min_capability":
        return f"capability >= {rule.min_capability}"
    if key == "min_cuda":
        return f"CUDA >= {rule.min_cuda}"
    if key.startswith("packages."):
        return f"package {key.split('.', 1)[1]}"
    if key == "fp4_dtype":
        return "torch fp4 dtype"
    return "TRITON_INTERPRET"


def _other_requirements(rule: SupportRule, key: str) -> list[str]:
    return [part for part in _without(rule, key).describe().split(", ")]
