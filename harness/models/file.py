"""One matrix file: the target it describes, its parts, its known failures."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from harness.models.backends import BackendSpec, LayerSpec
from harness.models.cases import GoldenCase, Sweep
from harness.models.common import Ident, Strict
from harness.models.precedence import Precedence
from harness.models.profiles import GpuProfile

__all__ = ["KnownFailure", "MatrixFile", "TargetSpec", "interpreter_switched_on"]


# --- the file ----------------------------------------------------------------------------------


class TargetSpec(Strict):
    """The system under test a matrix describes (default: this project's ``kernels``)."""

    name: Ident = Field(description="a target id: kernels (this project's, the default), vllm, or a plugin's")
    versions: str | None = Field(
        None,
        description='the releases the file covers, a PEP 440 specifier such as ">=0.20,<0.22"',
    )
    source: str | None = Field(None, description="where the rules were read from")
    release: dict[str, Any] | None = Field(
        None,
        description="what the target needs to know about the release line to run it, in the "
        "target's own format (vLLM: its selection function, compiled and package probes; "
        "see docs/vllm.md)",
    )


def _triton_releases(text: str) -> str:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    if text.strip():
        try:
            SpecifierSet(text)
        except InvalidSpecifier:
            raise ValueError(
                f"{text!r} is not a PEP 440 specifier of Triton releases (e.g. \">=3.4\"; "
                "\"\" for none)"
            ) from None
    return text


TritonReleases = Annotated[str, AfterValidator(_triton_releases)]


def interpreter_switched_on(releases: str, triton: str | None) -> bool:
    """Do the Triton ``releases`` (a specifier; ``""``: none) include this printed version?"""
    from packaging.specifiers import SpecifierSet

    if triton is None or not releases.strip():
        return False
    return SpecifierSet(releases).contains(triton, prereleases=True)


class KnownFailure(Strict):
    """A real finding: cells where the code under test disagrees with the rules it should follow.

    A mismatching cell is this finding when its id matches ``cells`` and what
    the code did matches ``got`` (and the oracle's expectation ``expected``),
    both globs over the one-line summaries the reports print (``backend
    flashinfer-trtllm``, ``ValueError: invalid literal for int()*``). Such
    cells are reported in their own section and do not fail the run. Strict:
    an entry that no mismatching cell shows any more (the code was fixed, or
    the pattern rotted) fails the run, so the list cannot rot.
    """

    cells: str = Field("*", description="glob over cell ids (group::id also accepted)")
    got: str = Field(description="glob over what the code did, e.g. 'backend fbgemm'")
    expected: str = Field("*", description="glob over what the rules say it must do")
    reason: str
    upstream: str = Field(description='an issue/PR reference, or "not reported upstream"')


class MatrixFile(Strict):
    """One matrix YAML file. Several files merge into one matrix (see ``include``)."""

    version: Literal[1] = Field(description="format version")
    target: TargetSpec | None = None
    include: list[str] = Field(
        default_factory=list, description="other matrix files, relative to this one"
    )
    profiles: dict[Ident, GpuProfile] = Field(default_factory=dict)
    layers: dict[Ident, LayerSpec] = Field(default_factory=dict)
    default_layer: Ident | None = None
    backends: dict[Ident, BackendSpec] = Field(default_factory=dict)
    precedence: Precedence | None = None
    sweeps: list[Sweep] = Field(default_factory=list)
    cases: list[GoldenCase] = Field(default_factory=list)
    known_failures: list[KnownFailure] = Field(default_factory=list)
    triton_interpret: dict[str, TritonReleases] | None = Field(
        None,
        description="how Triton reads TRITON_INTERPRET: each value a detection cell sets -> the "
        "Triton releases that switch the interpreter on for it (a PEP 440 specifier; \"\": none)",
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_an_integer(cls, value: object) -> object:
        # true and 1.0 equal 1 to Python: a version is the integer itself
        if isinstance(value, bool) or not isinstance(value, int):
            got = type(value).__name__ if value is not None else "nothing"
            raise ValueError(f"version must be the integer 1, got {got} {value!r}")
        return value
