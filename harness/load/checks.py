"""Cross-file checks: what no single matrix file can check on its own.

Every name a sweep or case uses exists, ids are unique, the precedence table
names declared backends, each profile's declared ``supported`` list agrees
with the backends' rules (through :mod:`harness.rules`, the interpreter the
oracle uses too), and every boundary of every support rule is crossed by the
profiles (:func:`check_boundaries`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from harness.errors import Problem
from harness.load.limits import current_limits
from harness.load.problems import unknown_name
from harness.load.yamlsrc import PathKey, Source
from harness.models import BACKENDS_TOKEN, CASES_GROUP, SupportRule, parse_version
from harness.rules.support import rule_verdict, support_verdict
from kernels.errors import quoted

if TYPE_CHECKING:
    from harness.load.matrix import Matrix

__all__ = [
    "check_boundaries",
    "check_cell_count",
    "check_declared_support",
    "check_references",
    "describes_own_kernels",
    "no_precedence",
    "sweep_cell_bound",
    "uncrossed_boundaries",
]

#: The target a matrix without ``target:`` describes: this project's kernels.
OWN_TARGET = "nvfp4-matrix"


def describes_own_kernels(matrix: Matrix) -> bool:
    """Does ``matrix`` describe this project's kernels (whose profiles declare ``supported``)?"""
    return matrix.target is None or matrix.target.name == OWN_TARGET


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

    for pid, profile in matrix.profiles.items():
        src, path = matrix.source_of("profile", pid)
        if backends and describes_own_kernels(matrix):
            for index, name in enumerate(profile.supported):
                check("backend", name, backends, src, path + ("supported", index))

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
            for j, entry in enumerate(values):
                if entry is not None and entry.startswith("$") and entry != BACKENDS_TOKEN:
                    problems.append(
                        src.problem(
                            path + ("cross", variable, j),
                            f"unknown token {quoted(entry)} (the only token is {BACKENDS_TOKEN})",
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


def check_declared_support(matrix: Matrix, problems: list[Problem]) -> None:
    """Each profile's ``supported`` list must equal what the backends' rules derive.

    ``supported`` describes this project's own backends; a matrix of another
    target (whose backends are another engine's) derives support from its
    rules alone.
    """
    if not matrix.backends or not describes_own_kernels(matrix):
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


# --- rule boundaries ---------------------------------------------------------------------------


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


def _sides(rule: SupportRule, families: list[int]):  # noqa: ANN202 - (key, [(label, test)])
    if rule.families is not None:
        listed = set(rule.families)
        sides = [
            (f"in family sm_{f}x", lambda p, f=f: p.capability is not None and p.capability[0] == f)
            for f in sorted(listed)
        ]
        low, high = (families[0], families[-1]) if families else (0, -1)
        neighbours = sorted({g for f in listed for g in (f - 1, f + 1)} - listed)
        sides += [
            (
                f"in the unlisted family sm_{g}x",
                lambda p, g=g: p.capability is not None and p.capability[0] == g,
            )
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

        def is_at(p, field=field, at=at):  # noqa: ANN001, ANN202
            return getattr(p, field) == at

        def is_below(p, field=field, below=below):  # noqa: ANN001, ANN202
            v = getattr(p, field)
            if v is None:
                return False
            return v == below if below[1] >= 0 else v[0] == below[0]

        yield key, [(f"at {text}", is_at), (f"at {below_text} (just below)", is_below)]
    for package in rule.packages:
        yield f"packages.{package}", [
            (f"with {package}", lambda p, n=package: n in p.packages),
            (f"without {package}", lambda p, n=package: n not in p.packages),
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
