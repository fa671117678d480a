"""Cross-file checks: what no single matrix file can check on its own.

Every name a sweep or case uses exists, ids are unique, the precedence table
names declared backends, and the matrix stays within the cell bound. What
depends on the target a matrix describes (its vocabulary; whether profiles
declare its support) is checked when the matrix is bound to it
(:mod:`harness.load.binding`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from harness.errors import Problem
from harness.load.limits import current_limits
from harness.load.problems import unknown_name
from harness.load.yamlsrc import PathKey, Source
from harness.models import BACKENDS_TOKEN, CASES_GROUP

if TYPE_CHECKING:
    from harness.load.matrix import Matrix

__all__ = [
    "check_cell_count",
    "check_references",
    "no_precedence",
    "sweep_cell_bound",
]

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
        for index, rule in enumerate(matrix.precedence.forcing):
            path = base + ("forcing", index)
            if rule.rule in rule_ids:
                problems.append(src.problem(path + ("rule",), f"duplicate rule id {rule.rule!r}"))
            rule_ids.add(rule.rule)
            # a 'value: unset' rule reads no value, so it may share its variable with the
            # rule that reads the values
            if rule.value != "unset":
                if rule.variable in variables:
                    problems.append(
                        src.problem(path + ("variable",), f"{rule.variable} already has a rule")
                    )
                variables.add(rule.variable)
            for value, names in (rule.names or {}).items():
                for j, name in enumerate(names):
                    check("backend", name, backends, src, path + ("names", value, j))
                if rule.choices is not None and value not in rule.choices:
                    problems.append(
                        src.problem(
                            path + ("names", value),
                            f"{value!r} is not one of the rule's choices ({', '.join(rule.choices)})",
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
                    and rule.rule == "batch_invariant"
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
                            f"unknown token {crossed!r} (the only token is {BACKENDS_TOKEN})",
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


def sweep_cell_bound(matrix: Matrix, sweep: Any) -> tuple[int, str]:
    """How many cells ``sweep`` expands to at most, and the factors, without expanding it.

    Exact but for repeated environments (counted once when expanded) and, with
    ``mock_relevant``, the mocked combinations (bounded by every combination of
    the longest list of backends one rule consults).
    """
    profiles = len(sweep.profiles) if sweep.profiles is not None else len(matrix.profiles)
    layers = len(sweep.layers) if sweep.layers is not None else 1
    packages = len(sweep.packages) if sweep.packages is not None else 1
    combos = 1
    for values in sweep.cross.values():
        width = sum(len(matrix.backends) if v == BACKENDS_TOKEN else 1 for v in values)
        combos *= max(width, 1)
    envs = combos + len(sweep.envs)
    total = profiles * layers * packages * envs
    parts = [f"{profiles} profiles", f"{layers} layers", f"{packages} package sets",
             f"{envs} environments"]
    if sweep.mock_relevant and matrix.precedence is not None:
        consulted = max(
            [len(matrix.precedence.auto.order), 1]
            + [len(rule.forces) for rule in matrix.precedence.forcing]
        )
        total *= 2**consulted
        parts.append(f"up to {2**consulted} mocked outcomes")
    return total, " x ".join(parts)


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
