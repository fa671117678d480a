"""Load, merge and cross-check matrix files.

:func:`load_matrix` reads one or more YAML files (following ``include:``),
validates each against :class:`~harness.models.MatrixFile`, merges them and
checks what no single file can: every name a sweep or case uses exists, ids
are unique, the precedence table names declared backends, each profile's
declared ``supported`` list agrees with the backends' rules, and the declared
backends are exactly the registered ones. Every problem comes back in one
:class:`~harness.errors.MatrixError`, each with file, line and key.
"""

from __future__ import annotations

import dataclasses
import difflib
import glob
import re
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.errors import MatrixError, Problem
from harness.models import (
    BackendSpec,
    GoldenCase,
    GpuProfile,
    LayerSpec,
    MatrixFile,
    Precedence,
    Sweep,
)
from harness.yamlsrc import PathKey, Source, load_yaml, resolve_include

__all__ = [
    "BACKENDS_TOKEN",
    "CASES_GROUP",
    "DEFAULT_MATRIX_GLOB",
    "Location",
    "Matrix",
    "default_matrix_paths",
    "load_matrix",
    "unknown_name",
]

#: What ``nvfp4-matrix`` reads when no file is named.
DEFAULT_MATRIX_GLOB = "matrix/*.yaml"
#: In a sweep's ``cross`` list, expands to every declared backend name.
BACKENDS_TOKEN = "$BACKENDS"
#: The group of the golden cases (so no sweep may take this id).
CASES_GROUP = "cases"


@dataclasses.dataclass(frozen=True)
class Location:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclasses.dataclass
class Matrix:
    """Every matrix file merged into one model.

    Attributes:
        files: the files read, in order (includes after their includer).
        profiles: profile id -> :class:`GpuProfile`, in file order.
        layers: layer id -> :class:`LayerSpec`.
        default_layer: the layer a cell uses unless it names another.
        backends: backend name -> :class:`BackendSpec`, in file order.
        precedence: the precedence table (exactly one file defines it).
        sweeps: every sweep, in file order.
        cases: every golden case, in file order.
    """

    files: list[Source]
    profiles: dict[str, GpuProfile]
    layers: dict[str, LayerSpec]
    default_layer: str | None
    backends: dict[str, BackendSpec]
    precedence: Precedence | None
    sweeps: list[Sweep]
    cases: list[GoldenCase]
    _origins: dict[tuple[str, str], tuple[Source, PathKey]] = dataclasses.field(
        default_factory=dict, repr=False
    )

    # --- lookups -------------------------------------------------------------------
    def profile(self, profile_id: str) -> GpuProfile:
        """The profile called ``profile_id``; ``KeyError`` naming the known ones otherwise."""
        try:
            return self.profiles[profile_id]
        except KeyError:
            raise KeyError(unknown_name("profile", profile_id, self.profiles)) from None

    def layer(self, layer_id: str | None = None) -> LayerSpec:
        return self.layers[layer_id or self.default_layer_id]

    @property
    def default_layer_id(self) -> str:
        if self.default_layer is not None:
            return self.default_layer
        return next(iter(self.layers))

    def declared_support(self, profile_id: str, backend: str) -> bool:
        """Does the matrix declare ``backend`` supported on profile ``profile_id``?"""
        if backend not in self.backends:
            raise KeyError(unknown_name("backend", backend, self.backends))
        return self.profile(profile_id).declares_support(backend)

    def kernel_class_name(self, backend: str) -> str:
        return self.backends[backend].kernel

    def backend_of_kernel(self, kernel: str) -> str | None:
        for name, spec in self.backends.items():
            if spec.kernel == kernel:
                return name
        return None

    def queues(self) -> dict[str, list[str]]:
        """Buildkite queue -> profile ids that run on it (profiles without a queue omitted)."""
        out: dict[str, list[str]] = {}
        for pid, profile in self.profiles.items():
            if profile.queue:
                out.setdefault(profile.queue, []).append(pid)
        return out

    def where(self, kind: str, key: str, *subpath: str | int) -> Location:
        """Where ``kind`` (profile, backend, layer, sweep, case, precedence) ``key`` is defined."""
        source, path = self._origins[(kind, key)]
        return Location(source.name, source.line(path + tuple(subpath)))

    def source_of(self, kind: str, key: str) -> tuple[Source, PathKey]:
        return self._origins[(kind, key)]

    def forcing_rule_location(self, rule_id: str) -> Location | None:
        if self.precedence is None:
            return None
        for index, rule in enumerate(self.precedence.forcing):
            if rule.rule == rule_id:
                return self.where("precedence", "", "forcing", index)
        if rule_id == self.precedence.auto.rule:
            return self.where("precedence", "", "auto")
        return None


def default_matrix_paths(root: Path | None = None) -> list[Path]:
    """``matrix/*.yaml`` under ``root`` (default: the working directory), sorted."""
    base = Path.cwd() if root is None else root
    return sorted(Path(p) for p in glob.glob(str(base / DEFAULT_MATRIX_GLOB)))


def load_matrix(paths: Sequence[str | Path] | str | Path, *, check_registry: bool = True) -> Matrix:
    """Load ``paths`` (and what they include) into one validated :class:`Matrix`.

    ``check_registry`` also compares the declared backends with
    :data:`kernels.linear.registry.NVFP4_BACKENDS` (this imports torch).
    Raises :class:`~harness.errors.MatrixError` listing every problem.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    sources: list[Source] = []
    models: list[MatrixFile] = []
    problems: list[Problem] = []
    seen: set[Path] = set()

    def read(path: Path, included_from: tuple[Source, PathKey, str] | None) -> None:
        resolved = path.resolve()
        if resolved in seen:
            return
        seen.add(resolved)
        if included_from is not None and not path.is_file():
            src, key, entry = included_from
            problems.append(
                src.problem(key, f"included file {entry!r} does not exist (looked for {path})")
            )
            return
        try:
            source = load_yaml(path)
        except MatrixError as exc:
            problems.extend(exc.problems)
            return
        model = _validate_file(source, problems)
        if model is None:
            return
        sources.append(source)
        models.append(model)
        for index, entry in enumerate(model.include):
            read(resolve_include(path, entry), (source, ("include", index), entry))

    for path in paths:
        read(Path(path), None)
    if problems:
        raise MatrixError(problems)
    matrix = _merge(sources, models, problems)
    if not problems:
        _check_references(matrix, problems)
    if not problems:
        _check_declared_support(matrix, problems)
    if not problems and check_registry:
        _check_registry(matrix, problems)
    if problems:
        raise MatrixError(problems)
    return matrix


# --- per-file validation ---------------------------------------------------------------


def _validate_file(source: Source, problems: list[Problem]) -> MatrixFile | None:
    if not isinstance(source.data, dict):
        kind = "empty" if source.data is None else f"a {_yaml_type(source.data)}"
        problems.append(
            source.problem(
                (), f"a matrix file is a mapping with 'version: 1' at the top; this one is {kind}"
            )
        )
        return None
    try:
        model = MatrixFile.model_validate(source.data)
    except ValidationError as exc:
        problems.extend(_translate(source, exc))
        return None
    for pid, profile in model.profiles.items():
        profile._id = pid
    return model


def _translate(source: Source, exc: ValidationError) -> list[Problem]:
    """Pydantic errors -> problems with the YAML line and a readable message."""
    out: list[Problem] = []
    seen: set[tuple[int, str, str]] = set()
    for error in exc.errors(include_url=False):
        path = _data_path(source.data, error["loc"])
        message = _message(error, path)
        if error["type"] == "value_error":
            path = _point_at_field(source.data, path, message)
        problem = source.problem(path, message)
        key = (problem.line or 0, problem.key, problem.message)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def _data_path(data: Any, loc: tuple[Any, ...]) -> PathKey:
    """Keep the parts of a pydantic ``loc`` that are real keys/indexes of ``data``.

    Pydantic inserts tags (``"function-after[...]"``, union member names) that
    are not in the document; a missing key is kept as the last part so the
    message can name it.
    """
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        if part == "[key]":  # pydantic's tag for "the key itself is invalid"
            continue
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif index == len(loc) - 1 and isinstance(part, str) and isinstance(node, dict):
            path.append(part)
    return tuple(path)


def _point_at_field(data: Any, path: PathKey, message: str) -> PathKey:
    """A model-level check names fields in quotes: point at the first one that is present."""
    node = data
    for part in path:
        node = node[part]
    if isinstance(node, dict):
        for name in re.findall(r"'([A-Za-z_]+)'", message):
            if name in node:
                return path + (name,)
    return path


def _message(error: Any, path: PathKey) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        valid = _valid_keys(error["loc"][:-1])
        hint = ""
        if valid:
            close = difflib.get_close_matches(str(path[-1]), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            hint += f" (valid keys: {', '.join(valid)})"
        return f"unknown key {path[-1]!r}{hint}"
    if kind == "missing":
        return f"missing required key {error['loc'][-1]!r}"
    if kind == "literal_error" and not isinstance(value, bool):
        options = re.findall(r"'([^']*)'", error.get("ctx", {}).get("expected", "")) or [
            o.strip()
            for o in re.split(r",| or ", error.get("ctx", {}).get("expected", ""))
            if o.strip()
        ]
        close = (
            difflib.get_close_matches(str(value), options, n=1) if isinstance(value, str) else []
        )
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{_short(value)} is not one of: {', '.join(options)}{hint}"
    if kind in (
        "string_type",
        "int_type",
        "float_type",
        "bool_type",
        "dict_type",
        "list_type",
        "model_type",
        "literal_error",
        "int_from_float",
        "model_attributes_type",
    ):
        expected = error["msg"].removeprefix("Input should be ").removeprefix("a valid ")
        got = f"got {_yaml_type(value)} {_short(value)}"
        hint = ""
        if isinstance(value, bool) and kind in ("string_type", "literal_error"):
            hint = " (YAML reads unquoted yes/no/on/off/true/false as booleans: quote it)"
        elif isinstance(value, (int, float)) and kind in ("string_type", "literal_error"):
            hint = f' (quote it: "{value}")'
        return f"wrong type: expected {expected}, {got}{hint}"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        if pattern == r"^\d+\.\d+$":
            return f'expected a version "major.minor" such as "10.0", got {_short(value)}'
        if pattern.startswith("^[a-z0-9]"):
            return f"{_short(value)} is not a valid id: use lowercase letters, digits, '.', '_' and '-'"
        return f"{_short(value)} does not match {pattern}"
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    return f"{error['msg']} (got {_short(value)})"


def _valid_keys(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found at ``loc`` (walking MatrixFile's annotations)."""
    current: Any = MatrixFile
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return []
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is dict and args:
            current = args[1]
        elif origin is list and args:
            current = args[0]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        args = typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType) and args:
            non_none = [a for a in args if a is not type(None)]
            if len(non_none) == 1:
                annotation = non_none[0]
                continue
        return annotation


def _yaml_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}{hint} (known: {', '.join(known) or 'none'})"


# --- merging -------------------------------------------------------------------------------


def _merge(sources: list[Source], models: list[MatrixFile], problems: list[Problem]) -> Matrix:
    matrix = Matrix(
        files=sources,
        profiles={},
        layers={},
        default_layer=None,
        backends={},
        precedence=None,
        sweeps=[],
        cases=[],
    )
    origins = matrix._origins
    for source, model in zip(sources, models, strict=True):
        sections: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = (
            ("profile", model.profiles, matrix.profiles),
            ("layer", model.layers, matrix.layers),
            ("backend", model.backends, matrix.backends),
        )
        for kind, table, target in sections:
            section = f"{kind}s"
            for key, value in table.items():
                if key in target:
                    first = matrix.where(kind, key)
                    problems.append(
                        source.problem(
                            (section, key), f"{kind} {key!r} is already defined at {first}"
                        )
                    )
                    continue
                target[key] = value
                origins[(kind, key)] = (source, (section, key))
        for single in ("default_layer", "precedence"):
            value = getattr(model, single)
            if value is None:
                continue
            if getattr(matrix, single) is not None:
                first = matrix.where(single, "")
                problems.append(
                    source.problem((single,), f"{single} is already defined at {first}")
                )
                continue
            setattr(matrix, single, value)
            origins[(single, "")] = (source, (single,))
        for index, sweep in enumerate(model.sweeps):
            _add_unique(matrix, origins, problems, source, "sweep", sweep.id, ("sweeps", index))
            matrix.sweeps.append(sweep)
        for index, case in enumerate(model.cases):
            _add_unique(matrix, origins, problems, source, "case", case.id, ("cases", index))
            matrix.cases.append(case)
    return matrix


def _add_unique(
    matrix, origins, problems, source: Source, kind: str, key: str, path: PathKey
) -> None:
    if (kind, key) in origins:
        first = matrix.where(kind, key)
        problems.append(
            source.problem(
                path + ("id",), f"duplicate {kind} id {key!r} (first defined at {first})"
            )
        )
        return
    origins[(kind, key)] = (source, path)


# --- cross-file checks ----------------------------------------------------------------------


def _check_references(matrix: Matrix, problems: list[Problem]) -> None:
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

    for pid, profile in matrix.profiles.items():
        src, path = matrix.source_of("profile", pid)
        if backends:
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
        named = 0
        for index, rule in enumerate(matrix.precedence.forcing):
            path = base + ("forcing", index)
            if rule.rule in rule_ids:
                problems.append(src.problem(path + ("rule",), f"duplicate rule id {rule.rule!r}"))
            rule_ids.add(rule.rule)
            if rule.variable in variables:
                problems.append(
                    src.problem(path + ("variable",), f"{rule.variable} already has a rule")
                )
            variables.add(rule.variable)
            named += rule.value == "backend-name"
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
        if named > 1:
            problems.append(
                src.problem(base + ("forcing",), "at most one rule may take a backend name")
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
            for j, value in enumerate(values):
                if value is not None and value.startswith("$") and value != BACKENDS_TOKEN:
                    problems.append(
                        src.problem(
                            path + ("cross", variable, j),
                            f"unknown token {value!r} (the only token is {BACKENDS_TOKEN})",
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


def _check_declared_support(matrix: Matrix, problems: list[Problem]) -> None:
    """Each profile's ``supported`` list must equal what the backends' rules derive."""
    if not matrix.backends:
        return
    from harness.oracle import rule_support

    for pid, profile in matrix.profiles.items():
        platform = profile.platform()
        derived = [
            name for name, spec in matrix.backends.items() if rule_support(spec, platform)[0]
        ]
        declared = [name for name in matrix.backends if name in profile.supported]
        if derived == declared:
            continue
        src, path = matrix.source_of("profile", pid)
        parts = []
        for name in matrix.backends:
            ok, reason = rule_support(matrix.backends[name], platform)
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


def _check_registry(matrix: Matrix, problems: list[Problem]) -> None:
    """The declared backends must be exactly the registered ones, with the same class names."""
    if not matrix.backends:
        return
    from kernels.linear.registry import NVFP4_BACKENDS

    src = matrix.source_of("backend", next(iter(matrix.backends)))[0]
    for name, spec in matrix.backends.items():
        bsrc, path = matrix.source_of("backend", name)
        cls = NVFP4_BACKENDS.get(name)
        if cls is None:
            problems.append(
                bsrc.problem(
                    path,
                    f"backend {name!r} is not registered in kernels.linear.registry.NVFP4_BACKENDS (registered: {', '.join(NVFP4_BACKENDS)})",
                )
            )
        elif cls.__name__ != spec.kernel:
            problems.append(
                bsrc.problem(
                    path + ("kernel",),
                    f"the registered {name} class is {cls.__name__}, not {spec.kernel}",
                )
            )
    missing = [name for name in NVFP4_BACKENDS if name not in matrix.backends]
    if missing:
        problems.append(
            src.problem(
                ("backends",), f"registered backends missing from the matrix: {', '.join(missing)}"
            )
        )
