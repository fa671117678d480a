"""Stage 2, loading: YAML files -> validated models -> one merged :class:`Matrix`.

:func:`load_matrix` reads one or more YAML files (following ``include:``),
validates each against :class:`~harness.models.MatrixFile`, merges them and
runs the cross-file checks of :mod:`harness.load.checks`. Every problem comes
back in one :class:`~harness.errors.MatrixError`, each with file, line and
key. What depends on the target the matrix describes is checked when the
matrix is bound to it (:mod:`harness.load.binding`).
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import MatrixError, Problem
from harness.load.checks import check_cell_count, check_references
from harness.load.limits import current_limits
from harness.load.matrix import Matrix
from harness.load.problems import validate_file
from harness.load.text import describe_char, escape_unsafe, unsafe_char
from harness.load.yamlsrc import (
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
from harness.models import MatrixFile
from kernels.errors import quoted

__all__ = ["DEFAULT_MATRIX_GLOB", "default_matrix_paths", "load_matrix"]

#: What ``nvfp4-matrix`` reads when no file is named (the default target's matrix).
DEFAULT_MATRIX_GLOB = "matrix/*.yaml"


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
            at = where[0] if where else Problem(display_path(path), None, "", "")
            problems.append(
                Problem(at.file, at.line, at.key,
                        f"more than {limits.max_files} matrix files (includes counted)")
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
