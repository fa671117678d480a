"""The ``vllm`` target: the installed vLLM's own ``init_nvfp4_linear_kernel``.

The machinery that drives vLLM on a CPU with a fake GPU (the platform object
replaced before import, vLLM's ``envs`` read from a clean ``os.environ``,
``is_supported()`` mocked or its leaf probes faked) lives in
:mod:`harness.targets.vllm_runtime`; this module maps between it and the
matrix: profiles to fake platforms, backend ids to vLLM's kernel classes,
vLLM's answer (a kernel class, or an exception) to an
:class:`~harness.targets.base.Outcome`.

vLLM exposes no decision record: the comparison checks outcomes (the chosen
class, or the error and its text), never a rule. vLLM's log lines during the
call are the outcome's notes (``"WARNING: <text>"``) and its ``logged``
pairs, so golden cases can pin them. A weight-only layer is asked with
``use_a16=True`` (vLLM's W4A16 schemes pass it). One vLLM version per
process: the first evaluation imports it (3-5 s).
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import Problem, UsageError
from harness.targets.base import Outcome, Query, Target

if TYPE_CHECKING:
    from harness.load.matrix import Matrix

__all__ = ["MATRIX_FOLDER", "VllmTarget", "installed_version"]

#: Where the matrix files of vLLM's release lines live, under the project root.
MATRIX_FOLDER = "matrix/vllm"
#: The engine option a cell sets like a variable.
LINEAR_BACKEND = "--linear-backend"
#: An exception raised in this module is vLLM refusing a variable's value.
ENVS_MODULE = "vllm.envs"
#: The runtime reports a log record's level by name; the outcome keeps the number.
_LEVELS = logging.getLevelNamesMapping()


def installed_version() -> str | None:
    """The installed vLLM's version, read from its metadata (nothing is imported)."""
    try:
        return importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return None


class VllmTarget(Target):
    """vLLM's ``init_nvfp4_linear_kernel``, as installed.

    Args:
        mutant: ``"vllm-39129"`` rebuilds the function with vLLM's #39820 hunk
            reversed (the batch-invariant branch removed), from its own source.
    """

    name = "vllm"
    description = "the installed vLLM's init_nvfp4_linear_kernel (vllm.model_executor.kernels.linear)"
    decision_record = False
    observes_log = True

    def __init__(self, mutant: str | None = None) -> None:
        self.mutant = mutant
        self._runtime: Any = None

    # --- what is installed ----------------------------------------------------------------
    def version(self) -> str | None:
        return installed_version()

    def describe(self) -> str:
        version = self.version() or "(not installed)"
        return f"vllm {version}" + (f" (mutant {self.mutant})" if self.mutant else "")

    @property
    def runtime(self) -> Any:
        """vLLM, imported on a fake platform (once per process)."""
        if self._runtime is None:
            if self.version() is None:
                raise UsageError(
                    "target vllm: vLLM is not installed here (tox -e vllm-0.20 builds an "
                    "environment with it)"
                )
            from harness.targets.vllm_runtime import VllmRuntime

            self._runtime = VllmRuntime.load(mutant=self.mutant)
        return self._runtime

    def default_matrix(self, root: Path) -> Sequence[Path]:
        """The file under ``matrix/vllm/`` whose ``target.versions`` covers the installed vLLM."""
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version

        from harness.load import load_matrix

        version = self.version()
        if version is None:
            raise UsageError(
                "target vllm: vLLM is not installed here (tox -e vllm-0.20 builds an "
                "environment with it)"
            )
        folder = root / MATRIX_FOLDER
        covered: list[str] = []
        for path in sorted(folder.glob("*.yaml")):
            matrix = load_matrix([path])
            spec = matrix.target.versions if matrix.target is not None else None
            if spec is None:
                continue
            covered.append(f"{spec} ({path.relative_to(root)})")
            if Version(version) in SpecifierSet(spec):
                return [path]
        raise UsageError(
            f"target vllm: no matrix file covers the installed vLLM {version}; covered: "
            + ("; ".join(covered) or f"nothing (no file in {folder})")
        )

    # --- the matrix as a description of this vLLM -------------------------------------------
    def check_matrix(self, matrix: Matrix) -> list[Problem]:
        """The matrix must cover this release, and its backends must be this release's classes."""
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version

        problems: list[Problem] = []
        version = self.version()
        if matrix.target is not None and matrix.target.versions and version is not None:
            if Version(version) not in SpecifierSet(matrix.target.versions):
                src, path = matrix.source_of("target", "")
                problems.append(
                    src.problem(
                        path + ("versions",),
                        f"the installed vLLM {version} is outside {matrix.target.versions!r}: "
                        "this file describes another release line",
                    )
                )
                return problems
        classes = self.runtime.kernel_classes
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
        if not self.runtime.accepts_use_a16:
            for layer_id, layer in matrix.layers.items():
                if layer.weight_only:
                    src, path = matrix.source_of("layer", layer_id)
                    problems.append(
                        src.problem(
                            path + ("weight_only",),
                            f"vLLM {version}'s init_nvfp4_linear_kernel"
                            f"{self.runtime.selection_signature} takes no use_a16: it has no "
                            "weight-only path to ask",
                        )
                    )
        missing = [c for c in classes if matrix.backend_of_kernel(c) is None]
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
    def evaluate(self, query: Query, matrix: Matrix) -> Outcome:
        rt = self.runtime
        p = query.platform
        env = {k: v for k, v in query.env.items() if k != LINEAR_BACKEND}
        linear_backend = query.env.get(LINEAR_BACKEND)
        if linear_backend is not None:
            problem = self._linear_backend_problem(linear_backend)
            if problem is not None:
                return Outcome("invalid-env", error=problem, error_type="ValueError")
        mocks = {matrix.backends[b].kernel: verdict for b, verdict in query.mocks.items()}
        probes = {name for name in p.packages if name in rt.probe_packages}
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
            ):
                answer = rt.select(
                    use_a16=query.layer.weight_only, linear_backend=linear_backend
                )
        except Exception as exc:  # the runtime's own failure, not vLLM's answer: a crash
            return Outcome("crash", error=f"{type(exc).__name__}: {exc}")
        messages = tuple(f"{level}: {text}" for level, text in answer.logs)
        logged = tuple((_LEVELS[level], text) for level, text in answer.logs)
        if answer.kernel is not None:
            backend = matrix.backend_of_kernel(answer.kernel)
            if backend is None:
                return Outcome(
                    "crash",
                    error=f"vLLM chose {answer.kernel}, a class the matrix does not declare",
                    messages=messages,
                    logged=logged,
                )
            return Outcome("backend", backend, answer.kernel, messages=messages, logged=logged)
        if answer.raised_in == ENVS_MODULE:
            kind = "invalid-env"  # vLLM's envs refused a value while the selection read it
        elif answer.error_type == "ValueError":
            kind = "error"  # the selection's own refusal: forced unsupported, nothing fits
        else:
            kind = "crash"
        return Outcome(
            kind,  # type: ignore[arg-type]
            error=answer.error,
            error_type=answer.error_type,
            messages=messages,
            logged=logged,
        )

    def _linear_backend_problem(self, value: str) -> str | None:
        """The engine's own refusal of a ``--linear-backend`` value, before any selection."""
        rt = self.runtime
        if not rt.has_linear_backend:
            return f"{LINEAR_BACKEND}: vLLM {self.version()} has no such option (it came in 0.22)"
        if value not in rt.linear_backends:
            return (
                f"{LINEAR_BACKEND}={value!r}: invalid choice "
                f"(choose from {', '.join(rt.linear_backends)})"
            )
        return None
