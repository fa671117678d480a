"""Expanding sweeps and golden cases into cells.

A cell is one selection to check: a profile, an environment (only the
variables that are set), a layer, and optional mocked ``is_supported()``
results. Its id is stable and readable, built from those parts alone:

    b200-VLLM_BATCH_INVARIANT=1-VLLM_USE_FBGEMM=1
    v100-default
    h100-VLLM_USE_FBGEMM=1-layer=w4a16-bf16
    b200-VLLM_BATCH_INVARIANT=1-mock=triton:off,emulation:on

Environment parts follow the order of the target's inputs
(:attr:`~harness.targets.protocol.Vocabulary.inputs`); a value that is empty
or holds spaces is quoted (``VLLM_BATCH_INVARIANT=' 1 '``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Mapping

from harness.load import Location, Matrix
from harness.models import BACKENDS_TOKEN, CASES_GROUP, GoldenExpect, MockOutcome, Sweep
from harness.targets.protocol import Vocabulary

__all__ = ["CASES_GROUP", "Cell", "expand", "expand_cases", "expand_sweep", "sweep_envs"]

Env = tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Cell:
    """One selection to check.

    Attributes:
        id: stable readable id (unique within its group).
        group: the sweep id, or ``"cases"`` for golden cases.
        profile: profile id.
        env: ``(variable, value)`` pairs of the variables that are set, in precedence order.
        layer: layer id.
        mocks: ``(backend, supported, reason)`` forced ``is_supported()`` results.
        packages: replaces the profile's optional packages when not ``None``.
        location: where the cell is defined (the sweep, its env entry, or the case).
        golden: the hand-written expectation of a golden case.
        triton_interpret: the ``TRITON_INTERPRET`` value a detection cell's fake
            machine sets (``None``: as the profile says).
    """

    id: str
    group: str
    profile: str
    env: Env
    layer: str
    mocks: tuple[tuple[str, bool, str], ...] = ()
    packages: tuple[str, ...] | None = None
    location: Location | None = None
    golden: GoldenExpect | None = dataclasses.field(default=None, compare=False)
    triton_interpret: str | None = None

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def mock_dict(self) -> dict[str, tuple[bool, str]]:
        return {name: (ok, reason) for name, ok, reason in self.mocks}

    @property
    def nodeid(self) -> str:
        return f"{self.group}::{self.id}"

    def env_text(self) -> str:
        return " ".join(f"{k}={_quote(v)}" for k, v in self.env) or "(no selection variable set)"


def _quote(value: str) -> str:
    if value == "" or value != value.strip() or " " in value:
        return f"'{value}'"
    return value


def cell_id(
    profile: str,
    env: Env,
    layer: str | None,
    mocks: tuple[tuple[str, bool, str], ...] = (),
    packages: tuple[str, ...] | None = None,
) -> str:
    parts = [profile]
    parts += [f"{k}={_quote(v)}" for k, v in env] or ["default"]
    if packages is not None:
        parts.append("packages=" + (",".join(packages) or "none"))
    if layer is not None:
        parts.append(f"layer={layer}")
    if mocks:
        parts.append("mock=" + ",".join(f"{n}:{'on' if ok else 'off'}" for n, ok, _ in mocks))
    return "-".join(parts)


def sweep_envs(
    matrix: Matrix, sweep: Sweep, vocabulary: Vocabulary
) -> list[tuple[Env, tuple[str | int, ...]]]:
    """The sweep's environments (cross product, then explicit entries), duplicates dropped.

    Each comes with the key path of the YAML entry it was written at.
    """
    variables = list(sweep.cross)
    values = []
    for variable in variables:
        expanded: list[str | None] = []
        for value in sweep.cross[variable]:
            if value == BACKENDS_TOKEN:
                expanded.extend(matrix.backends)
            else:
                expanded.append(value)
        values.append(expanded)
    out: list[tuple[Env, tuple[str | int, ...]]] = []
    seen: set[Env] = set()
    combos = itertools.product(*values) if variables else iter([()])
    for combo in combos:
        env = vocabulary.ordered(
            {k: v for k, v in zip(variables, combo, strict=True) if v is not None}
        )
        if env not in seen:
            seen.add(env)
            out.append((env, ("cross",) if variables else ()))
    for index, explicit in enumerate(sweep.envs):
        env = vocabulary.ordered(explicit)
        if env not in seen:
            seen.add(env)
            out.append((env, ("envs", index)))
    return out


def expand_sweep(matrix: Matrix, sweep: Sweep, vocabulary: Vocabulary) -> list[Cell]:
    from harness.evaluate.oracle import Oracle

    oracle = Oracle(matrix) if sweep.mock_relevant else None
    profiles = sweep.profiles or list(matrix.profiles)
    layers = sweep.layers or [matrix.default_layer_id]
    package_sets: list[tuple[str, ...] | None] = (
        [tuple(sorted(set(p))) for p in sweep.packages] if sweep.packages is not None else [None]
    )
    fixed = _mocks(sweep.mock)
    cells = []
    for env, subpath in sweep_envs(matrix, sweep, vocabulary):
        location = matrix.where("sweep", sweep.id, *subpath)
        mock_sets: list[tuple[tuple[str, bool, str], ...]] = [fixed]
        if oracle is not None:
            consulted = oracle.consulted(dict(env)) or ()
            mock_sets = [
                tuple(
                    (name, ok, "" if ok else f"{name} mocked unsupported")
                    for name, ok in zip(consulted, outcome, strict=True)
                )
                for outcome in itertools.product((True, False), repeat=len(consulted))
            ]
        for profile, packages, layer, mocks in itertools.product(
            profiles, package_sets, layers, mock_sets
        ):
            shown_layer = None if layer == matrix.default_layer_id else layer
            cells.append(
                Cell(
                    id=cell_id(profile, env, shown_layer, mocks, packages),
                    group=sweep.id,
                    profile=profile,
                    env=env,
                    layer=layer,
                    mocks=mocks,
                    packages=packages,
                    location=location,
                )
            )
    return cells


def _mocks(table: Mapping[str, MockOutcome]) -> tuple[tuple[str, bool, str], ...]:
    return tuple((name, m.supported, m.reason) for name, m in table.items())


def expand_cases(matrix: Matrix, vocabulary: Vocabulary) -> list[Cell]:
    cells = []
    for case in matrix.cases:
        cells.append(
            Cell(
                id=case.id,
                group=CASES_GROUP,
                profile=case.profile,
                env=vocabulary.ordered(case.env),
                layer=case.layer or matrix.default_layer_id,
                mocks=_mocks(case.mock),
                packages=None if case.packages is None else tuple(case.packages),
                location=matrix.where("case", case.id),
                golden=case.expect,
            )
        )
    return cells


def expand(
    matrix: Matrix, vocabulary: Vocabulary, files: set[str] | None = None
) -> Iterator[tuple[str, list[Cell]]]:
    """``(group, cells)`` for every sweep, then the golden cases; environments are written
    in the order of ``vocabulary``'s inputs.

    ``files`` keeps only the groups defined in those files (display names).
    """
    for sweep in matrix.sweeps:
        if files is None or matrix.where("sweep", sweep.id).file in files:
            yield sweep.id, expand_sweep(matrix, sweep, vocabulary)
    cases = [
        c
        for c in expand_cases(matrix, vocabulary)
        if files is None or (c.location and c.location.file in files)
    ]
    if cases:
        yield CASES_GROUP, cases
