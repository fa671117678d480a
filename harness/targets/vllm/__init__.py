"""The ``vllm`` target: the installed vLLM's own NVFP4 selection (``init_nvfp4_linear_kernel``).

The package, one job per module:

* :mod:`~harness.targets.vllm.facts`: the engine's facts (``engine.yaml``) and
  a release line's (its matrix file's ``target.release``), as data;
* :mod:`~harness.targets.vllm.platform`: vLLM's platform replaced by a fake one;
* :mod:`~harness.targets.vllm.probes`: the leaf support probes, faked;
* :mod:`~harness.targets.vllm.controls`, :mod:`~harness.targets.vllm.logs`:
  vLLM's environment, fixed support verdicts, its log during a call;
* :mod:`~harness.targets.vllm.runtime`: the selection, called per cell;
* :mod:`~harness.targets.vllm.recompile`, :mod:`~harness.targets.vllm.regression`:
  the installed function compiled anew, with a real regression put back;
* :mod:`~harness.targets.vllm.selftest`: ``python -m harness.targets.vllm``.

This module maps between the runtime and the matrix: profiles to fake
platforms, backend ids to vLLM's kernel classes, vLLM's answer to an
:class:`~harness.targets.protocol.Outcome`. vLLM exposes no decision record:
outcomes are compared (the chosen class, or the error and its text), never a
rule. A weight-only layer is asked with ``use_a16=True``. One vLLM version
per process: the first evaluation imports it (3-5 s).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import Problem, TargetUnavailable, UsageError
from harness.targets.protocol import (
    Capabilities,
    CiLane,
    MutantInfo,
    Outcome,
    Query,
    Target,
    Vocabulary,
)
from harness.targets.vllm.facts import ReleaseFacts, engine_facts, release_facts

if TYPE_CHECKING:
    from harness.load.matrix import Matrix
    from harness.targets.vllm.runtime import VllmRuntime

__all__ = ["VllmTarget", "installed_version"]

_NOT_INSTALLED = (
    "target vllm: vLLM is not installed here (tox -e vllm-0.20 builds an environment with it)"
)


def installed_version() -> str | None:
    """The installed vLLM's version, read from its metadata (nothing is imported)."""
    try:
        return importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return None


class VllmTarget(Target):
    """vLLM's NVFP4 selection, as installed.

    Args:
        mutant: a key of :data:`~harness.targets.vllm.regression.REGRESSIONS`: the
            installed function rebuilt with that regression put back.
    """

    name = "vllm"
    description = "the installed vLLM's init_nvfp4_linear_kernel (vllm.model_executor.kernels.linear)"
    capabilities = Capabilities(observes_log=True, environment="process")

    def __init__(self, mutant: str | None = None) -> None:
        engine = engine_facts()
        self.vocabulary = Vocabulary(engine.vocabulary.inputs, engine.vocabulary.packages)
        self.option = engine.linear_backend.option
        self.mutant_name = mutant
        self._runtime: VllmRuntime | None = None
        self._broken: Callable[..., Any] | None = None
        #: the release facts of each matrix seen (its target section), parsed once
        self._facts: dict[int, tuple[object, ReleaseFacts | None, list[Problem]]] = {}
        #: what the last matrix checked needs said but does not fail (``check_matrix``)
        self.notes: Sequence[str] = ()

    # --- what is installed ----------------------------------------------------------------
    def version(self) -> str | None:
        return installed_version()

    def describe(self) -> str:
        version = self.version() or "(not installed)"
        return f"vllm {version}" + (f" (mutant {self.mutant_name})" if self.mutant_name else "")

    def runtime(self, facts: ReleaseFacts) -> VllmRuntime:
        """vLLM, imported on a fake platform with a release line's facts (once per target)."""
        if self._runtime is None or self._runtime.facts != facts:
            if self.version() is None:
                raise TargetUnavailable(_NOT_INSTALLED)
            from harness.targets.vllm.runtime import VllmRuntime

            self._runtime = VllmRuntime.load(facts)
            if self.mutant_name is not None:
                from harness.targets.vllm.regression import REGRESSIONS, MutantShapeError

                try:
                    self._broken = REGRESSIONS[self.mutant_name][1](
                        self._runtime.selection_function
                    )
                except MutantShapeError as exc:
                    raise UsageError(f"mutant {self.mutant_name}: {exc}") from None
        return self._runtime

    def facts_of(self, matrix: Matrix) -> tuple[ReleaseFacts | None, list[Problem]]:
        """The release facts ``matrix`` states (parsed once per matrix)."""
        key = id(matrix.target)
        cached = self._facts.get(key)
        if cached is None or cached[0] is not matrix.target:
            facts, problems = release_facts(matrix)
            cached = (matrix.target, facts, problems)
            self._facts[key] = cached
        return cached[1], list(cached[2])

    def default_matrix(self, root: Path, line: str | None = None) -> Sequence[Path]:
        """The release line's file that describes the installed vLLM.

        With ``line``, that line's file (``0.33``: ``matrix/vllm/0.33.yaml``), whichever
        release is installed. Without, the file whose ``target.versions`` covers the installed
        release; a release newer than every line gets the newest line's file. Either way a
        file that does not cover the installed release comes with :attr:`matrix_notice`, and
        its cells run leniently: the mismatches show what changed.
        """
        from packaging.specifiers import SpecifierSet
        from packaging.version import InvalidVersion, Version

        from harness.errors import MatrixError
        from harness.load import load_matrix
        from harness.load.problems import unknown_name

        version = self.version()
        if version is None:
            raise TargetUnavailable(_NOT_INSTALLED)
        folder = root / engine_facts().matrix_folder
        files = {path.stem: path for path in sorted(folder.glob("*.yaml"))}
        specs: dict[str, str] = {}
        broken: list[str] = []
        for name, path in files.items():
            try:
                matrix = load_matrix([path])
            except MatrixError as exc:  # that line's own lane reports it
                broken.append(f"{path.relative_to(root)} ({exc.first})")
                continue
            if matrix.target is not None and matrix.target.versions:
                specs[name] = matrix.target.versions
        self.matrix_notice = None
        if line is not None:
            if line not in specs:
                raise UsageError(unknown_name("release line", line, specs))
            if Version(version) not in SpecifierSet(specs[line]):
                self.matrix_notice = (
                    f"vLLM {version} is checked against the {line} line's matrix "
                    f"({specs[line]}), as asked: mismatches are what changed since that line"
                )
            return [files[line]]
        for name, spec in specs.items():
            if Version(version) in SpecifierSet(spec):
                return [files[name]]

        def newest(name: str) -> Version:
            try:
                return Version(name)
            except InvalidVersion:
                return Version("0")

        latest = max(specs, key=newest, default=None)
        if latest is not None and Version(version) > newest(latest):
            self.matrix_notice = (
                f"vLLM {version} is newer than every release line: checked against the newest, "
                f"{latest} ({specs[latest]}); mismatches are what changed since that line "
                "(add a line for it: docs/vllm.md)"
            )
            return [files[latest]]
        covered = "; ".join(f"{spec} ({files[n].relative_to(root)})" for n, spec in specs.items())
        unreadable = f"; unreadable: {'; '.join(broken)}" if broken else ""
        raise UsageError(
            f"target vllm: no matrix file covers the installed vLLM {version}; covered: "
            + (covered or f"nothing (no file in {folder})") + unreadable
        )

    def ci_lanes(self, root: Path) -> Sequence[CiLane]:
        """Two steps per release line (a file of the release-line folder): ``vllm-<line>``
        checks the line's newest release, ``mutation-vllm-<line>`` its mutants."""
        lanes: list[CiLane] = []
        for path in sorted((root / engine_facts().matrix_folder).glob("*.yaml")):
            line = path.stem
            key = line.replace(".", "-")
            lanes.append(CiLane(f"vllm-{line}", f"vllm-{key}", f":vllm: vLLM {line} selection",
                                ("--reports", f"reports/vllm-{line}")))
            lanes.append(CiLane(f"mutation-vllm-{line}", f"mutation-vllm-{key}",
                                f":dna: vLLM {line} mutation lane", ("--quiet",)))
        return lanes

    # --- broken variants --------------------------------------------------------------------
    def mutants(self) -> Sequence[MutantInfo]:
        from harness.targets.vllm.regression import REGRESSIONS

        return [info for info, _ in REGRESSIONS.values()]

    def mutant(self, name: str) -> VllmTarget:
        if name not in [m.name for m in self.mutants()]:
            return super().mutant(name)  # type: ignore[return-value]  # raises UsageError
        return VllmTarget(mutant=name)

    # --- the matrix as a description of this vLLM -------------------------------------------
    def check_matrix(self, matrix: Matrix) -> list[Problem]:
        """The matrix must cover this release, state its line's facts, and its backends must
        be this release's classes."""
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version

        version = self.version()
        if version is None:
            raise TargetUnavailable(_NOT_INSTALLED)
        facts, problems = self.facts_of(matrix)
        if matrix.target is not None and matrix.target.versions:
            if Version(version) not in SpecifierSet(matrix.target.versions):
                src, path = matrix.source_of("target", "")
                problems.insert(
                    0,
                    src.problem(
                        path + ("versions",),
                        f"the installed vLLM {version} is outside {matrix.target.versions!r}: "
                        "this file describes another release line",
                    ),
                )
        if facts is None:
            return problems
        from harness.targets.vllm.runtime import ReleaseMismatch

        src, path = matrix.source_of("target", "")
        try:
            runtime = self.runtime(facts)
        except ReleaseMismatch as exc:
            problems.append(src.problem(path + exc.field, f"vLLM {version}: {exc}"))
            return problems
        problems += [
            src.problem(path + field, f"vLLM {version}: {what}")
            for field, what in runtime.probes.missing
        ]
        if runtime.selection_signature != facts.entry.signature:
            problems.append(
                src.problem(
                    path + ("release", "entry", "signature"),
                    f"vLLM {version}'s {facts.entry.function} is "
                    f"{facts.entry.function}{runtime.selection_signature}, the line says "
                    f"{facts.entry.signature}",
                )
            )
        classes = runtime.kernel_classes
        for name, spec in matrix.backends.items():
            if spec.kernel not in classes:
                src, path = matrix.source_of("backend", name)
                problems.append(
                    src.problem(
                        path + ("kernel",),
                        f"vLLM {version} has no NVFP4 kernel class {spec.kernel} "
                        f"(it has: {', '.join(classes)})",
                    )
                )
        if not runtime.accepts_use_a16:
            for layer_id, layer in matrix.layers.items():
                if layer.weight_only:
                    src, path = matrix.source_of("layer", layer_id)
                    problems.append(
                        src.problem(
                            path + ("weight_only",),
                            f"vLLM {version}'s {facts.entry.function}"
                            f"{runtime.selection_signature} takes no use_a16: it has no "
                            "weight-only path to ask",
                        )
                    )
        unreachable = runtime.unreachable()
        self.notes = [
            f"vLLM {version} defines {name}, which its {facts.entry.function} can never return "
            "(another code path builds it): it is not a backend of this matrix"
            for name in unreachable if matrix.backend_of_kernel(name) is None
        ]
        missing = [
            c for c in classes if matrix.backend_of_kernel(c) is None and c not in unreachable
        ]
        if missing and matrix.backends:
            src, path = matrix.source_of("backend", next(iter(matrix.backends)))
            problems.append(
                src.problem(
                    ("backends",),
                    f"vLLM {version}'s NVFP4 kernel classes missing from the matrix: "
                    + ", ".join(missing),
                )
            )
        return problems

    # --- one cell ---------------------------------------------------------------------------
    def evaluate(self, query: Query, matrix: Matrix | None, entry: str | None = None) -> Outcome:
        if matrix is None:
            raise UsageError("target vllm runs on fake hardware only: give --gpu PROFILE")
        facts, problems = self.facts_of(matrix)
        if facts is None:
            return Outcome("crash", error="; ".join(str(p) for p in problems))
        rt = self.runtime(facts)
        p = query.platform
        env = {k: v for k, v in query.env.items() if k != self.option}
        linear_backend = query.env.get(self.option)
        if linear_backend is not None:
            problem = self._option_problem(rt, linear_backend)
            if problem is not None:
                return Outcome("invalid-env", error=problem, error_type="ValueError")
        mocks = {matrix.backends[b].kernel: verdict for b, verdict in query.mocks.items()}
        probes = {name for name in p.packages if name in rt.probes.packages}
        try:
            rt.set_platform(p.device_type, p.capability)
            with (
                rt.env(env),
                rt.real_support(
                    probes,
                    cuda_runtime=p.cuda_version or (0, 0),
                    torch_fp4_dtype=p.has_fp4_dtype,
                ),
                rt.mock_support(mocks),
                rt.selection_replaced(self._broken) if self._broken else contextlib.nullcontext(),
            ):
                answer = rt.select(use_a16=query.layer.weight_only, linear_backend=linear_backend)
        except Exception as exc:  # the runtime's own failure, not vLLM's answer: a crash
            return Outcome("crash", error=f"{type(exc).__name__}: {exc}")
        if answer.kind != "backend":
            return answer
        backend = matrix.backend_of_kernel(answer.kernel or "")
        if backend is None:
            return dataclasses.replace(
                answer,
                kind="crash",
                error=f"vLLM chose {answer.kernel}, a class the matrix does not declare",
            )
        return dataclasses.replace(answer, backend=backend)

    def _option_problem(self, rt: VllmRuntime, value: str) -> str | None:
        """The engine's own refusal of a ``--linear-backend`` value, before any selection."""
        if not rt.has_linear_backend:
            return f"{self.option}: vLLM {self.version()} has no such option"
        if value not in rt.linear_backends:
            return (
                f"{self.option}={value!r}: invalid choice "
                f"(choose from {', '.join(rt.linear_backends)})"
            )
        return None
