"""Stage 1, loading: YAML files -> validated models -> one merged :class:`Matrix`.

:func:`load_matrix` reads one or more YAML files (following ``include:``),
validates each against :class:`~harness.models.MatrixFile`, merges them and
runs the cross-file checks of :mod:`harness.load.checks`. Every problem comes
back in one :class:`~harness.errors.MatrixError`, each with file, line and
key. Whether the declared backends are the ones the system under test really
has is the target's question (:meth:`harness.targets.Target.check_matrix`).
"""

from __future__ import annotations

import dataclasses
import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import MatrixError, Problem
from harness.load.checks import check_cell_count, check_declared_support, check_references
from harness.load.limits import current_limits
from harness.load.problems import unknown_name, validate_file
from harness.load.text import describe_char, escape_unsafe, unsafe_char
from harness.load.yamlsrc import (
    Location,
    PathKey,
    Source,
    UnreadableFile,
    decode,
    display_path,
    inside,
    parse_yaml,
    read_bytes,
    resolve_include,
)
from harness.models import (
    BackendSpec,
    GoldenCase,
    GpuProfile,
    KnownFailure,
    LayerSpec,
    MatrixFile,
    Precedence,
    Sweep,
    TargetSpec,
)
from kernels.errors import quoted

__all__ = ["DEFAULT_MATRIX_GLOB", "Matrix", "default_matrix_paths", "load_matrix"]

#: What ``nvfp4-matrix`` reads when no file is named (the default target's matrix).
DEFAULT_MATRIX_GLOB = "matrix/*.yaml"


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
        target: the system under test the files describe (``None``: this
            project's kernels; at most one file says).
        known_failures: cells where the code under test is known to be wrong.
        triton_interpret: ``TRITON_INTERPRET`` value -> the Triton releases that
            switch the interpreter on for it (at most one file says; detection
            cells set each value on each profile with Triton).
    """

    files: list[Source]
    profiles: dict[str, GpuProfile]
    layers: dict[str, LayerSpec]
    default_layer: str | None
    backends: dict[str, BackendSpec]
    precedence: Precedence | None
    sweeps: list[Sweep]
    cases: list[GoldenCase]
    target: TargetSpec | None = None
    known_failures: list[KnownFailure] = dataclasses.field(default_factory=list)
    triton_interpret: dict[str, str] | None = None
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

    @property
    def target_name(self) -> str | None:
        return None if self.target is None else self.target.name

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


def include_root(path: Path) -> Path:
    """The folder the includes of the matrix file ``path`` must stay in.

    The working directory (the project) when ``path`` is in it, so that
    ``matrix/vllm/x.yaml`` may include ``../gpus.yaml``; else ``path``'s own
    folder. An include outside it (an absolute path, ``../`` past it, a
    symbolic link out of it) is refused at its line and never opened: a
    matrix is data, not a way to read other files of the machine.
    """
    cwd = Path.cwd()
    at_top = cwd == Path(cwd.anchor)  # "/" as the working directory would allow any file
    return cwd if not at_top and inside(path.parent, cwd) else path.parent


def load_matrix(paths: Sequence[str | Path] | str | Path) -> Matrix:
    """Load ``paths`` (and what they include) into one validated :class:`Matrix`.

    Raises :class:`~harness.errors.MatrixError` listing every problem.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    sources: list[Source] = []
    models: list[MatrixFile] = []
    problems: list[Problem] = []
    seen: set[Path] = set()

    limits = current_limits()

    def read(
        path: Path, included_from: tuple[Source, PathKey, str] | None, root: Path
    ) -> None:
        if included_from is not None:
            src, key, entry = included_from  # (a NUL or other control character: refused by YAML)
            if not inside(path, root):
                # Never opened: a matrix must not be a way to read other files of the machine.
                problems.append(
                    src.problem(
                        key,
                        f"included file {quoted(entry)} is outside {root.resolve()}: an include must "
                        "stay in the matrix's folder (the working directory, for a matrix in it)",
                    )
                )
                return
        resolved = path.resolve()
        if resolved in seen:
            return
        if len(seen) >= limits.max_files:
            where = [] if included_from is None else [included_from[0].problem(included_from[1], "")]
            file, line, dotted_key = (
                (where[0].file, where[0].line, where[0].key) if where else (display_path(path), None, "")
            )
            problems.append(
                Problem(file, line, dotted_key, f"more than {limits.max_files} matrix files (includes counted)")
            )
            return
        seen.add(resolved)
        name = display_path(path)
        bad = unsafe_char(name)
        if bad is not None:  # a name no report can hold (a control character, undecodable bytes)
            problems.append(
                Problem(
                    escape_unsafe(name),
                    None,
                    "",
                    f"the file name holds the character {describe_char(bad)}, which no report "
                    "can hold: rename the file",
                )
            )
            return
        try:
            source = parse_yaml(decode(read_bytes(path), name), path, name)
        except UnreadableFile as exc:
            if included_from is None:
                problems.append(Problem(name, None, "", f"cannot read the matrix file: it {exc.reason}"))
            else:
                src, key, entry = included_from
                problems.append(
                    src.problem(key, f"included file {quoted(entry)} {exc.reason} (looked for {display_path(path)})")
                )
            return
        except MatrixError as exc:
            problems.extend(exc.problems)
            return
        model = validate_file(source, problems)
        if model is None:
            return
        sources.append(source)
        models.append(model)
        for index, entry in enumerate(model.include):
            read(resolve_include(path, entry), (source, ("include", index), entry), root)

    for given in paths:
        path = Path(given)
        read(path, None, include_root(path))
    if problems:
        raise MatrixError(problems)
    matrix = _merge(sources, models, problems)
    if not problems:
        check_references(matrix, problems)
    if not problems:  # a resource bound: before any analysis that walks the cells' space
        check_cell_count(matrix, problems)
    if not problems:
        check_declared_support(matrix, problems)
    if problems:
        raise MatrixError(problems)
    return matrix


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
                            (section, key), f"{kind} {quoted(key)} is already defined at {first}"
                        )
                    )
                    continue
                target[key] = value
                origins[(kind, key)] = (source, (section, key))
        for single in ("default_layer", "precedence", "target", "triton_interpret"):
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
        for index, known in enumerate(model.known_failures):
            origins[("known_failure", str(len(matrix.known_failures)))] = (
                source,
                ("known_failures", index),
            )
            matrix.known_failures.append(known)
    return matrix


def _add_unique(
    matrix, origins, problems, source: Source, kind: str, key: str, path: PathKey
) -> None:
    if (kind, key) in origins:
        first = matrix.where(kind, key)
        problems.append(
            source.problem(
                path + ("id",), f"duplicate {kind} id {quoted(key)} (first defined at {first})"
            )
        )
        return
    origins[(kind, key)] = (source, path)
