"""vLLM's facts as data: the engine's (``engine.yaml`` beside this module) and each release line's.

Nothing here names a vLLM release: what differs between release lines is read
from the line's matrix file, under ``target.release`` (:class:`ReleaseFacts`),
so a new release line is a constraints file, a matrix file and a tox factor.
The shapes are pydantic models; a malformed ``target.release`` is reported
with its file, line and key like every other matrix problem.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from harness.errors import Problem

if TYPE_CHECKING:
    from harness.load.matrix import Matrix

__all__ = [
    "CompiledProbe",
    "EngineFacts",
    "EntryPoint",
    "PackageProbe",
    "ReleaseFacts",
    "engine_facts",
    "release_facts",
]

ENGINE_FILE = Path(__file__).with_name("engine.yaml")
Dotted = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
CudaVersion = Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+$")]


class _Strict(BaseModel):
    # not pydantic's strict mode: YAML lists are read into tuples
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the engine ------------------------------------------------------------------------------


class EngineVocabulary(_Strict):
    inputs: tuple[str, ...]
    packages: tuple[str, ...]


class OnceCaches(_Strict):
    module: Dotted
    names: tuple[Name, ...]


class LinearBackendOption(_Strict):
    option: str
    reader: Name
    choices_module: Dotted
    choices_alias: Name


class EngineFacts(_Strict):
    """How vLLM is driven, whatever the release (``engine.yaml``)."""

    vocabulary: EngineVocabulary
    matrix_folder: str
    envs_module: Dotted
    logger: str
    once_caches: OnceCaches
    linear_backend: LinearBackendOption


@functools.cache
def engine_facts() -> EngineFacts:
    """The engine facts shipped with the harness (read once)."""
    return EngineFacts.model_validate(yaml.safe_load(ENGINE_FILE.read_text(encoding="utf-8")))


# --- a release line --------------------------------------------------------------------------


class EntryPoint(_Strict):
    """The selection function: where it is, what it is called, what it takes."""

    module: Dotted = Field(description="the module that defines the selection function")
    function: Name = Field(description="the selection function")
    signature: str = Field(
        description="its signature as inspect prints it, return annotation left out "
        "(\"()\", \"(use_a16: bool = False)\"); the installed release must have it"
    )
    kernel_base: Name = Field(
        "NvFp4LinearKernel", description="the base class of every NVFP4 kernel, in that module"
    )
    candidates: Name = Field(
        "_POSSIBLE_NVFP4_KERNELS", description="the automatic candidate lists per platform"
    )


class PackageProbe(_Strict):
    """A vLLM function that reports whether an optional package (or a feature of it) is there.

    ``returns`` is ``bool`` for ``has_*`` functions and ``module`` for accessors that return
    the package's submodule or ``None`` (a fake one answers ``is_supported() -> True``).
    """

    module: Dotted
    name: Name
    package: Name
    returns: Literal["bool", "module"] = "bool"


class CompiledProbe(_Strict):
    """A compiled support probe a CPU cannot load, stated as the rule its machine code implements.

    True when the CUDA runtime is at least ``min_cuda_runtime`` and the capability integer
    (``major * 10 + minor``) lies in one of ``capability_ranges``: half-open ``[low, high)``
    intervals.
    """

    module: Dotted
    name: Name
    min_cuda_runtime: CudaVersion
    capability_ranges: tuple[tuple[int, int], ...] = Field(min_length=1)
    source: str = Field(description="the C++ source of the rule")
    evidence: str = Field(description="how the rule was read in the released machine code")

    def supports(self, capability: int, cuda_runtime: tuple[int, int]) -> bool:
        major, minor = (int(p) for p in self.min_cuda_runtime.split("."))
        if cuda_runtime < (major, minor):
            return False
        return any(low <= capability < high for low, high in self.capability_ranges)


class ReleaseFacts(_Strict):
    """What one release line's code looks like to the runtime (``target.release``)."""

    entry: EntryPoint
    compiled_probes: tuple[CompiledProbe, ...] = ()
    package_probes: tuple[PackageProbe, ...] = ()

    @property
    def probe_packages(self) -> frozenset[str]:
        return frozenset(p.package for p in self.package_probes)


def release_facts(matrix: Matrix) -> tuple[ReleaseFacts | None, list[Problem]]:
    """The ``target.release`` facts of a vLLM matrix, or the problems, each at its line."""
    if matrix.target is None:
        return None, [matrix.files[0].problem((), "a vLLM matrix needs 'target:'")]
    src, path = matrix.source_of("target", "")
    if matrix.target.release is None:
        return None, [
            src.problem(
                path,
                "a vLLM matrix states its release line's facts under 'target.release' (entry, "
                "compiled_probes, package_probes): see docs/vllm.md",
            )
        ]
    try:
        return ReleaseFacts.model_validate(matrix.target.release), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            problems.append(src.problem(path + ("release",) + loc, error["msg"]))
        return None, problems
