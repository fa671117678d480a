"""Cross-file checks: what no single matrix file can check on its own.

Every name a sweep or case uses exists, ids are unique, the precedence table
names declared backends, and the matrix stays within the cell bound. What
depends on the target a matrix describes (its vocabulary; whether profiles
declare its support) is checked when the matrix is bound to it
(:mod:`harness.load.binding`).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from harness.errors import Problem
from harness.load.limits import current_limits
from harness.load.problems import unknown_name
from harness.load.yamlsrc import PathKey, Source
from harness.models import BACKENDS_TOKEN, CASES_GROUP, Sweep
from harness.rules.precedence import Reader
from kernels.errors import quoted

if TYPE_CHECKING:
    from harness.load.matrix import Matrix

__all__ = [
    "check_cell_count",
    "check_references",
    "no_precedence",
    "sweep_cell_bound",
]

#: The layers a forcing rule's ``layers`` applies to.
LAYER_KINDS = {"any": ("weight-only", "W4A4"), "weight-only": ("weight-only",)}


def _kinds_text(kinds: set[str]) -> str:
    return "every layer" if len(kinds) > 1 else f"{next(iter(kinds))} layers"


def check_references(matrix: Matrix, problems: list[Problem]) -> None:
    backends = matrix.backends
    has_cells = bool(matrix.sweeps or matrix.cases)

    def check(kind: str, name: str, known: dict[str, Any], source: Source, path: PathKey) -> None:
        if name not in known:
            problems.append(source.problem(path, unknown_name(kind, name, known)))

    if has_cells and matrix.precedence is None:
        src = matrix.files[0]
        problems.append(
            src.problem((), "the matrix has sweeps or cases but no file defines 'precedence'")
        )
    if has_cells and not matrix.layers:
        problems.append(
            matrix.files[0].problem((), "the matrix has sweeps or cases but no 'layers'")
        )
    if matrix.default_layer is not None:
        src, path = matrix.source_of("default_layer", "")
        check("layer", matrix.default_layer, matrix.layers, src, path)

    if matrix.target is not None and matrix.target.versions is not None:
        src, path = matrix.source_of("target", "")
        try:
            SpecifierSet(matrix.target.versions)
        except InvalidSpecifier:
            problems.append(
                src.problem(
                    path + ("versions",),
                    f"{matrix.target.versions!r} is not a version specifier (e.g. \">=0.20,<0.22\")",
                )
            )

    kernels: dict[str, str] = {}
    for name, spec in backends.items():
        src, path = matrix.source_of("backend", name)
        if spec.kernel in kernels:
            problems.append(
                src.problem(
                    path + ("kernel",),
                    f"kernel class {spec.kernel!r} is also declared by backend {kernels[spec.kernel]!r}",
                )
            )
        kernels[spec.kernel] = name

    if matrix.precedence is not None:
        src, base = matrix.source_of("precedence", "")
        rule_ids: set[str] = set()
        variables: set[str] = set()
        #: variable -> the layer kinds an earlier rule reading its values decides for
        decided: dict[str, set[str]] = {}
        for index, rule in enumerate(matrix.precedence.forcing):
            path = base + ("forcing", index)
            if rule.rule in rule_ids:
                problems.append(src.problem(path + ("rule",), f"duplicate rule id {rule.rule!r}"))
            rule_ids.add(rule.rule)
            # A 'value: unset' rule reads no value, so it may share its variable with the rules
            # that read the values. Those may be several when each decides for other layers
            # (a weight-only rule first, then one for every layer): the first that applies to
            # a layer decides, so a rule is refused when earlier ones leave it no layer.
            if rule.value != "unset":
                kinds = set(LAYER_KINDS[rule.layers])
                earlier = decided.setdefault(rule.variable, set())
                if kinds <= earlier:
                    problems.append(
                        src.problem(
                            path + ("variable",),
                            f"{rule.variable} already has a rule for {_kinds_text(kinds)}: "
                            "this one is never reached (list a rule for fewer layers first)",
                        )
                    )
                earlier |= kinds
                variables.add(rule.variable)
            for value, names in (rule.names or {}).items():
                for j, name in enumerate(names):
                    check("backend", name, backends, src, path + ("names", value, j))
                if rule.choices is not None and value not in rule.choices:
                    problems.append(
                        src.problem(
                            path + ("names", value),
                            f"{quoted(value)} is not one of the rule's choices ({', '.join(rule.choices)})",
                        )
                    )
            if rule.names is None and rule.choices is not None:
                for j, name in enumerate(rule.choices):
                    if name not in rule.auto_values:
                        check("backend", name, backends, src, path + ("choices", j))
            for capability, names in (rule.forces_by_capability or {}).items():
                for j, name in enumerate(names):
                    check("backend", name, backends, src,
                          path + ("forces_by_capability", capability, j))
            for j, name in enumerate(rule.forces):
                check("backend", name, backends, src, path + ("forces", j))
                if (
                    name in backends
                    and rule.rule.startswith("batch_invariant")
                    and not backends[name].batch_invariant
                ):
                    problems.append(
                        src.problem(path + ("forces", j), f"{name} is not declared batch_invariant")
                    )
        auto = matrix.precedence.auto
        if auto.rule in rule_ids:
            problems.append(
                src.problem(
                    base + ("auto", "rule"), f"rule id {auto.rule!r} is also a forcing rule"
                )
            )
        if auto.disabled_by in variables:
            problems.append(
                src.problem(
                    base + ("auto", "disabled_by"), f"{auto.disabled_by} already has a forcing rule"
                )
            )
        for j, name in enumerate(auto.order):
            check("backend", name, backends, src, base + ("auto", "order", j))
        if sorted(auto.order) != sorted(backends) and all(n in backends for n in auto.order):
            missing = [n for n in backends if n not in auto.order]
            twice = sorted({n for n in auto.order if auto.order.count(n) > 1})
            detail = []
            if missing:
                detail.append(f"missing {', '.join(missing)}")
            if twice:
                detail.append(f"listed twice: {', '.join(twice)}")
            problems.append(
                src.problem(
                    base + ("auto", "order"),
                    "must list every backend exactly once: " + "; ".join(detail),
                )
            )
        for device, names in (auto.devices or {}).items():
            path = base + ("auto", "devices", device)
            for j, name in enumerate(names):
                check("backend", name, backends, src, path + (j,))
            in_order = [n for n in auto.order if n in names]
            if all(n in backends for n in names) and in_order != names:
                problems.append(
                    src.problem(path, "must follow 'order' (a subset, in the same order, once each)")
                )

    for sweep in matrix.sweeps:
        src, path = matrix.source_of("sweep", sweep.id)
        if sweep.id == CASES_GROUP:
            problems.append(
                src.problem(
                    path + ("id",), f"the sweep id {CASES_GROUP!r} is reserved for the golden cases"
                )
            )
        for j, pid in enumerate(sweep.profiles or []):
            check("profile", pid, matrix.profiles, src, path + ("profiles", j))
        for j, lid in enumerate(sweep.layers or []):
            check("layer", lid, matrix.layers, src, path + ("layers", j))
        for name in sweep.mock:
            check("backend", name, backends, src, path + ("mock", name))
        for variable, values in sweep.cross.items():
            if not values:
                problems.append(
                    src.problem(
                        path + ("cross", variable), "needs at least one value (null = unset)"
                    )
                )
            for j, crossed in enumerate(values):
                if crossed is not None and crossed.startswith("$") and crossed != BACKENDS_TOKEN:
                    problems.append(
                        src.problem(
                            path + ("cross", variable, j),
                            f"unknown token {quoted(crossed)} (the only token is {BACKENDS_TOKEN})",
                        )
                    )
        if sweep.mock_relevant and sweep.mock:
            problems.append(
                src.problem(path + ("mock",), "use either 'mock' or 'mock_relevant', not both")
            )

    for case in matrix.cases:
        src, path = matrix.source_of("case", case.id)
        check("profile", case.profile, matrix.profiles, src, path + ("profile",))
        if case.layer is not None:
            check("layer", case.layer, matrix.layers, src, path + ("layer",))
        for name in case.mock:
            check("backend", name, backends, src, path + ("mock", name))
        if case.expect.backend is not None:
            check("backend", case.expect.backend, backends, src, path + ("expect", "backend"))
        for name in case.expect.candidates or {}:
            check("backend", name, backends, src, path + ("expect", "candidates", name))


def no_precedence(matrix: Matrix) -> Problem:
    """The problem of a matrix that has no precedence table (e.g. a profiles-only file alone)."""
    message = (
        "the matrix defines no 'precedence' table, so it has nothing to check; name the file "
        "that defines it too (e.g. selection.yaml, which includes the profiles)"
    )
    if not matrix.files:
        return Problem("(no matrix file)", None, "", message)
    source = matrix.files[0]
    return source.problem((), message if len(matrix.files) > 1 else message.replace(
        "the matrix defines", "this file defines"))


def sweep_cell_bound(matrix: Matrix, sweep: Sweep) -> tuple[int, str]:
    """How many cells ``sweep`` expands to, and the factors, without building a cell.

    Exact but for repeated environments (counted once when expanded). With
    ``mock_relevant``, every environment's mocked combinations are counted as
    the expansion makes them: every outcome of each backend its deciding rule
    consults (read from the precedence table, :mod:`harness.rules.precedence`),
    once the environments alone are known to fit the limit.
    """
    profiles = len(sweep.profiles) if sweep.profiles is not None else len(matrix.profiles)
    layers = len(sweep.layers) if sweep.layers is not None else 1
    packages = len(sweep.packages) if sweep.packages is not None else 1
    columns = [
        [name for v in values for name in (matrix.backends if v == BACKENDS_TOKEN else [v])]
        for values in sweep.cross.values()
    ]
    combos = 1
    for column in columns:
        combos *= max(len(column), 1)
    envs = combos + len(sweep.envs)
    total = profiles * layers * packages * envs
    parts = [f"{profiles} profiles", f"{layers} layers", f"{packages} package sets",
             f"{envs} environments"]
    if sweep.mock_relevant and matrix.precedence is not None and total <= current_limits().max_cells:
        reader = Reader(matrix.precedence, matrix.backends)
        outcomes = 0
        for env in _sweep_environments(sweep, columns):
            consulted = reader.consulted(env)
            outcomes += 2 ** len(consulted or ())
        total = profiles * layers * packages * outcomes
        parts[-1] = f"{outcomes} environment x mocked-outcome combinations ({envs} environments)"
    return total, " x ".join(parts)


def _sweep_environments(sweep: Sweep, columns: list[list[str | None]]) -> list[dict[str, str]]:
    """The sweep's distinct environments (what the expansion builds, in no particular order)."""
    seen: set[frozenset[tuple[str, str]]] = set()
    out: list[dict[str, str]] = []
    crossed = (
        {k: v for k, v in zip(sweep.cross, combo, strict=True) if v is not None}
        for combo in itertools.product(*columns)
    )
    for env in [*crossed, *sweep.envs]:
        key = frozenset(env.items())
        if key not in seen:
            seen.add(key)
            out.append(dict(env))
    return out


def check_cell_count(matrix: Matrix, problems: list[Problem]) -> None:
    """Refuse a matrix whose sweeps expand to more cells than the limit (``--max-cells``)."""
    limit = current_limits().max_cells
    bounds = [(sweep, *sweep_cell_bound(matrix, sweep)) for sweep in matrix.sweeps]
    total = len(matrix.cases) + sum(count for _, count, _ in bounds)
    if total <= limit:
        return
    advice = f"shrink it, or allow it with --max-cells {total}"
    for sweep, count, factors in bounds:
        if count > limit:
            src, path = matrix.source_of("sweep", sweep.id)
            problems.append(
                src.problem(
                    path + ("id",),
                    f"sweep {sweep.id!r} expands to {count:,} cells ({factors}), more than the "
                    f"limit of {limit:,}: {advice}",
                )
            )
    if not problems:
        problems.append(
            matrix.files[0].problem(
                (), f"the matrix expands to {total:,} cells, more than the limit of {limit:,}: {advice}"
            )
        )
