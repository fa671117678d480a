"""The matrix format: pydantic models for one matrix YAML file.

Every model forbids unknown keys and is strict about types (a capability
written as the YAML float ``9.0`` or a boolean written as ``yes`` where a
string is expected is refused, not coerced). Cross-file rules (a sweep naming
an unknown profile, a duplicate case id, ...) are checked after the files are
merged (:mod:`harness.load.checks`). Every stage reads these models.

The JSON schema shipped as ``matrix/schema.json`` is generated from
:class:`MatrixFile` (``nvfp4-matrix schema --write matrix/schema.json``).

Nothing here imports torch.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from kernels.platform import OPTIONAL_PACKAGES, Platform, sm_label

__all__ = [
    "BACKENDS_TOKEN",
    "ENGINE_PACKAGES",
    "CASES_GROUP",
    "DISTRIBUTION_NAME_PATTERN",
    "PRINTED_VERSION_PATTERN",
    "KNOWN_VARIABLES",
    "MAX_FAMILY",
    "MAX_FEATURES",
    "MAX_K_MULTIPLE",
    "MAX_MEMORY_GIB",
    "MAX_PRINTED_VERSION",
    "MAX_SHARDS",
    "VERSION_PATTERN",
    "LINEAR_BACKEND_OPTION",
    "SCHEMA_VERSION",
    "AutoRule",
    "BooleanSpellings",
    "BackendSpec",
    "ErrorTemplates",
    "ForcingRule",
    "GoldenCase",
    "GoldenExpect",
    "GpuProfile",
    "Implements",
    "KnownFailure",
    "LayerSpec",
    "MatrixFile",
    "MockOutcome",
    "Precedence",
    "RealTests",
    "SupportRule",
    "Sweep",
    "TargetSpec",
    "parse_version",
]

#: The only format version this harness reads.
SCHEMA_VERSION = 1
#: In a sweep's ``cross`` list, expands to every declared backend name.
BACKENDS_TOKEN = "$BACKENDS"
#: The group of the golden cases (so no sweep may take this id).
CASES_GROUP = "cases"

# Every count and size in the format has an upper bound: a typo (or a pull request) cannot
# turn into a pipeline with 10**400 parallel jobs or a number that no code can convert.
#: Buildkite parallelism of one profile's real-hardware suite.
MAX_SHARDS = 256
#: A layer's in_features (K) and out_features (N).
MAX_FEATURES = 1 << 20
#: A backend's in_features multiple.
MAX_K_MULTIPLE = 4096
#: A capability major (``families``).
MAX_FAMILY = 99
#: A profile's device memory, in GiB.
MAX_MEMORY_GIB = 1 << 20

#: ``"major.minor"``, each part at most four digits (a bound of the format, like every count).
VERSION_PATTERN = r"^[0-9]{1,4}\.[0-9]{1,4}$"
VersionStr = Annotated[
    str,
    StringConstraints(pattern=VERSION_PATTERN),
    Field(description='"major.minor", quoted (YAML reads 10.10 as the float 10.1)'),
]
Ident = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$"),
    Field(description="lowercase id: letters, digits, '.', '_' and '-'"),
]
#: A distribution's name (PEP 508): what pip lists, e.g. ``pytorch-triton``.
DISTRIBUTION_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"
DistributionName = Annotated[
    str,
    StringConstraints(pattern=DISTRIBUTION_NAME_PATTERN),
    Field(description="an installed distribution's name, as pip lists it"),
]
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
KernelClassName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
#: An engine option that selects the linear backend (vLLM >= 0.22's ``--linear-backend``),
#: written in a cell's environment like a variable.
LINEAR_BACKEND_OPTION = "--linear-backend"
#: Every input a precedence table may read, in the order cell ids list them. The
#: harness owns this list: a variable renamed in the code under test is a mismatch.
KNOWN_VARIABLES: tuple[str, ...] = (
    "VLLM_BATCH_INVARIANT",
    "VLLM_USE_FBGEMM",
    "VLLM_USE_NVFP4_CT_EMULATIONS",
    "VLLM_NVFP4_GEMM_BACKEND",
    LINEAR_BACKEND_OPTION,
    "VLLM_DISABLED_KERNELS",
)
SelectionVariable = Literal[KNOWN_VARIABLES]  # type: ignore[valid-type]
#: Optional packages other engines probe for (vLLM >= 0.24: the Humming and B12X GEMM
#: libraries); this project's kernels use none of them.
ENGINE_PACKAGES: tuple[str, ...] = ("humming", "b12x")
if TYPE_CHECKING:  # a Literal built from tuples at run time: a plain str to the type checker
    PackageName = str
else:
    PackageName = Literal[OPTIONAL_PACKAGES + ENGINE_PACKAGES]
ActDtype = Literal["bfloat16", "float16", "float32"]
CandidateStatus = Literal["selected", "unsupported", "cannot-implement", "disabled", "not-reached"]


def parse_version(text: str | None) -> tuple[int, int] | None:
    """``"12.8"`` -> ``(12, 8)``; ``None`` stays ``None``."""
    if text is None:
        return None
    major, minor = text.split(".")
    return int(major), int(minor)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- hardware profiles -----------------------------------------------------------


class RealTests(_Strict):
    """Which real-hardware tests must run and which may skip on this profile's runner.

    Patterns are pytest node-id globs (``tests/linear/test_triton.py::*``) or
    ``marker:<name>`` (every test carrying that marker). On a runner started
    with ``--nvfp4-profile <id>``, a skipped test that matches no ``may_skip``
    pattern fails, a test matching ``must_run`` may never skip, and every
    ``must_run`` pattern must match at least one collected test.
    """

    must_run: list[str] = Field(default_factory=list)
    may_skip: list[str] = Field(default_factory=list)


#: A version as the machine prints it (``torch.__version__``, a distribution's
#: version): ``"2.9.1+cu128"``, ``"2.10.0.dev20251208+cu130"``, ``"3.6.0+git5261b273"``,
#: or only ``"major.minor"``.
#: The longest printed version the format accepts (a bound, like every count).
MAX_PRINTED_VERSION = 64
PRINTED_VERSION_PATTERN = (
    r"^[0-9]+\.[0-9]+(\.[0-9]+)?((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?"
    r"(\+[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$"
)
PrintedVersion = Annotated[
    str,
    StringConstraints(pattern=PRINTED_VERSION_PATTERN, max_length=MAX_PRINTED_VERSION),
    Field(
        description='as the machine prints it, e.g. "2.9.1+cu128", "3.6.0+git5261b273", '
        'or "major.minor"; quoted'
    ),
]
_MAJOR_MINOR = re.compile(r"[0-9]+\.[0-9]+")
_CUDA_TAG = re.compile(r"\+cu([0-9]+)([0-9])$")


def _major_minor(printed: str | None) -> tuple[int, int] | None:
    """``"2.10.0.dev20251208+cu130"`` -> ``(2, 10)`` (a :data:`PrintedVersion`)."""
    if printed is None:
        return None
    found = _MAJOR_MINOR.match(printed)
    assert found is not None, printed  # the field's pattern guarantees it
    return parse_version(found.group())


class GpuProfile(_Strict):
    """A fake machine: what :class:`kernels.platform.Platform` would report on it."""

    name: str = Field(description="device name as torch reports it")
    device_type: Literal["cuda", "cpu"]
    capability: VersionStr | None = Field(
        None, description='compute capability, e.g. "10.0"; cuda only'
    )
    cuda: VersionStr | None = Field(
        None, description='CUDA runtime torch was built with, e.g. "12.8"'
    )
    memory_gib: float | None = Field(
        None,
        ge=0,
        le=MAX_MEMORY_GIB,
        allow_inf_nan=False,
        description="device memory as torch reports it (total_memory / 2**30), to a tenth of a GiB",
    )
    packages: list[PackageName] = Field(
        default_factory=list, description="optional packages installed on this machine"
    )
    torch: PrintedVersion = Field(
        "2.9", description="torch.__version__ as this machine prints it (e.g. \"2.9.1+cu128\")"
    )
    fp4_dtype: bool = Field(True, description="torch provides float4_e2m1fn_x2")
    triton: PrintedVersion | None = Field(
        None, description="version of the installed Triton distribution (when triton is installed)"
    )
    triton_distribution: DistributionName | None = Field(
        None,
        description="the distribution that installs the triton module when it is not 'triton' "
        "(torch nightlies: pytorch-triton; ROCm builds: pytorch-triton-rocm)",
    )
    triton_interpret: bool = Field(
        False, description="Triton's interpreter is on (the fake machine sets TRITON_INTERPRET=1)"
    )
    queue: str | None = Field(
        None, description="Buildkite queue whose agents have this GPU; null when no runner has it"
    )
    shards: int = Field(
        1,
        ge=1,
        le=MAX_SHARDS,
        description="parallel jobs for this profile's real-hardware suite (Buildkite parallelism)",
    )
    supported: list[str] = Field(
        description="the backends whose support rule accepts this machine (declared, and "
        "checked against the backends' rules when the matrix loads)",
    )
    real_tests: RealTests = Field(default_factory=RealTests)
    notes: str | None = None

    _id: str = PrivateAttr("")

    @model_validator(mode="after")
    def _device_fields(self) -> GpuProfile:
        if self.device_type == "cuda" and (self.capability is None or self.cuda is None):
            raise ValueError("a cuda profile needs both 'capability' and 'cuda'")
        if self.device_type == "cpu" and (self.capability is not None or self.cuda is not None):
            raise ValueError("a cpu profile has no 'capability' or 'cuda'")
        if self.triton is not None and "triton" not in self.packages:
            raise ValueError("'triton' (a version) is set but triton is not in 'packages'")
        if self.triton_distribution is not None and "triton" not in self.packages:
            raise ValueError("'triton_distribution' is set but triton is not in 'packages'")
        # A CUDA build's torch.version.cuda is its +cuXYZ tag (without a GPU, as on a
        # cpu profile, nothing reads it).
        tag = _CUDA_TAG.search(self.torch)
        if tag is not None and self.device_type == "cuda" and self.cuda != f"{tag[1]}.{tag[2]}":
            raise ValueError(
                f"'torch' {self.torch!r} is a build for CUDA {tag[1]}.{tag[2]}, "
                f"but 'cuda' is {self.cuda!r}"
            )
        if len(set(self.packages)) != len(self.packages):
            raise ValueError("'packages' lists a package twice")
        return self

    @property
    def id(self) -> str:
        """The profile's key in ``profiles:`` (``b200``, ``cpu-interpret``, ...)."""
        return self._id

    @property
    def capability_tuple(self) -> tuple[int, int] | None:
        return parse_version(self.capability)

    @property
    def torch_version(self) -> tuple[int, int]:
        """``(major, minor)`` of :attr:`torch` (``"2.9.1+cu128"`` -> ``(2, 9)``)."""
        return _major_minor(self.torch)  # type: ignore[return-value]

    @property
    def triton_version(self) -> tuple[int, int] | None:
        """``(major, minor)`` of :attr:`triton`, ``None`` without one."""
        return _major_minor(self.triton)

    @property
    def sm(self) -> str:
        """``"sm_100"`` style label, or ``"cpu"``."""
        return sm_label(self.capability_tuple)

    @property
    def is_blackwell(self) -> bool:
        cap = self.capability_tuple
        return cap is not None and cap[0] in (10, 11, 12)

    def declares_support(self, backend: str) -> bool:
        """Declared support of ``backend`` on this profile (the ``supported`` list)."""
        return backend in self.supported

    def platform(self, packages: tuple[str, ...] | list[str] | None = None) -> Platform:
        """The :class:`~kernels.platform.Platform` this profile fakes (cached).

        ``packages`` replaces the profile's installed optional packages.
        """
        key = tuple(sorted(self.packages if packages is None else packages))
        return _platform(self, key)


@functools.lru_cache(maxsize=1024)
def _platform_cached(
    name: str,
    device_type: str,
    capability: tuple[int, int] | None,
    cuda: tuple[int, int] | None,
    packages: tuple[str, ...],
    torch: tuple[int, int],
    fp4_dtype: bool,
    triton: tuple[int, int] | None,
    triton_interpret: bool,
    memory_gib: float | None,
) -> Platform:
    return Platform(
        name=name,
        device_type=device_type,  # type: ignore[arg-type]
        capability=capability,
        cuda_version=cuda,
        packages=frozenset(packages),
        torch_version=torch,
        has_fp4_dtype=fp4_dtype,
        triton_interpret=triton_interpret,
        triton_version=triton if "triton" in packages else None,
        memory_gib=memory_gib,
    )


def _platform(profile: GpuProfile, packages: tuple[str, ...]) -> Platform:
    return _platform_cached(
        profile.name,
        profile.device_type,
        parse_version(profile.capability),
        parse_version(profile.cuda),
        packages,
        profile.torch_version,
        profile.fp4_dtype,
        profile.triton_version,
        profile.triton_interpret,
        profile.memory_gib,
    )


# --- layers ------------------------------------------------------------------------


class LayerSpec(_Strict):
    """One NVFP4 linear layer shape (:class:`kernels.linear.NvFp4LinearConfig`)."""

    in_features: int = Field(gt=0, le=MAX_FEATURES, description="K")
    out_features: int = Field(gt=0, le=MAX_FEATURES, description="N")
    act_dtype: ActDtype = "bfloat16"
    weight_only: bool = Field(default=False, description="W4A16 checkpoint (no static input scale)")
    has_bias: bool = False


# --- backends and their declared rules ------------------------------------------------------


class SupportRule(_Strict):
    """One way a backend can be supported; every stated requirement must hold.

    ``families`` is an exact set of capability majors (10 = B200/B300,
    12 = RTX 50 / GB10), never "this or newer"; ``min_capability`` is the
    "this generation or newer" form for rules that really mean it.
    """

    device: Literal["cuda", "cpu", "any"]
    families: list[Annotated[int, Field(ge=0, le=MAX_FAMILY)]] | None = Field(
        None, description="exact capability majors"
    )
    min_capability: VersionStr | None = None
    min_cuda: VersionStr | None = None
    packages: list[PackageName] = Field(default_factory=list)
    fp4_dtype: bool | None = Field(None, description="torch must (not) provide float4_e2m1fn_x2")
    triton_interpret: bool | None = Field(None, description="TRITON_INTERPRET=1 must (not) be set")

    @model_validator(mode="after")
    def _cuda_only_keys(self) -> SupportRule:
        cuda_keys = [
            k for k in ("families", "min_capability", "min_cuda") if getattr(self, k) is not None
        ]
        if cuda_keys and self.device != "cuda":
            raise ValueError(f"{', '.join(cuda_keys)} only make sense with device: cuda")
        return self

    def describe(self) -> str:
        parts: list[str] = [self.device if self.device != "any" else "any device"]
        if self.families is not None:
            parts.append("family " + " or ".join(f"sm_{f}x" for f in self.families))
        if self.min_capability:
            parts.append(f"capability >= {self.min_capability}")
        if self.min_cuda:
            parts.append(f"CUDA >= {self.min_cuda}")
        if self.packages:
            parts.append("packages " + ", ".join(self.packages))
        if self.fp4_dtype is not None:
            parts.append(("" if self.fp4_dtype else "no ") + "torch fp4 dtype")
        if self.triton_interpret is not None:
            parts.append("TRITON_INTERPRET=" + ("1" if self.triton_interpret else "0"))
        return ", ".join(parts)


class Implements(_Strict):
    """Which layers the backend can implement (its ``can_implement`` rule)."""

    act_dtypes: list[ActDtype]
    weight_only: bool = Field(False, description="supports W4A16 checkpoints")
    k_multiple: int = Field(
        16, gt=0, le=MAX_K_MULTIPLE, description="in_features must be a multiple of this"
    )


class BackendSpec(_Strict):
    """A registered NVFP4 backend, described as data for the oracle."""

    kernel: KernelClassName = Field(
        description="class name (the spelling VLLM_DISABLED_KERNELS uses)"
    )
    batch_invariant: bool = False
    support: list[SupportRule] = Field(min_length=1, description="supported when any rule holds")
    implements: Implements

    def describe_support(self) -> str:
        return " | ".join(rule.describe() for rule in self.support)


# --- precedence ---------------------------------------------------------------------------------


Match = Literal["stripped", "exact"]


class ForcingRule(_Strict):
    """A row of the precedence table: a variable (or engine option) that decides when set.

    ``value: boolean``: the variable is a boolean (the spellings of
    ``precedence.booleans``), true forces the ``forces`` list (the first
    supported one wins). ``value: int-flag``: the same, but the value is read
    as an integer, non-zero meaning true (``bool(int(value))``, the way vLLM
    reads its flags). ``value: backend-name``: the variable names the
    backend; ``names`` maps each accepted value to its backends (default: the
    value is a backend id), ``choices`` lists the accepted values (default:
    every backend id), ``auto_values`` are values that mean "no choice" (the
    next rules go on).

    ``value: unset``: the rule fires while the variable leaves the choice
    open (unset, or one of ``auto_values``); it does not interpret any other
    value (a later rule on the same variable does).

    ``mode: force``: the backends are forced; one that is not supported is an
    error, never a fallback. ``mode: restrict``: automatic selection over those
    backends only (in the automatic order; ``disabled_by`` applies; the
    automatic error when none fits), as vLLM's ``--linear-backend`` does.

    ``layers: weight-only``: the rule applies to weight-only (W4A16) layers
    only; for any other layer it is skipped, its variable unread.
    ``forces_by_capability``: per compute capability (``"10.0"``), the
    backends forced there instead of ``forces``; an empty list there means the
    rule does not fire on that capability. A device without a capability (a
    CPU) gets ``forces``.

    ``match: stripped``: blanks around a value are ignored and an empty value
    means unset; ``exact``: the value is compared as written (an empty value is
    a value, and not an accepted one).
    """

    rule: RuleId
    variable: SelectionVariable
    value: Literal["boolean", "int-flag", "backend-name", "unset"] = "boolean"
    forces: list[str] = Field(default_factory=list)
    forces_by_capability: dict[VersionStr, list[str]] | None = Field(
        None,
        description="per compute capability, the backends forced there instead of 'forces' "
        "(an empty list: the rule does not fire there)",
    )
    layers: Literal["any", "weight-only"] = Field(
        "any", description="weight-only: the rule applies to weight-only (W4A16) layers only"
    )
    mode: Literal["force", "restrict"] = "force"
    on_empty: Literal["error", "auto"] = Field(
        "error",
        description="restrict rules whose value names no candidate here: an error "
        "(errors.restrict_empty), or automatic selection over every candidate",
    )
    match: Match = "stripped"
    choices: list[str] | None = Field(
        None, description="backend-name rules: the accepted values (default: every backend id)"
    )
    names: dict[str, list[str]] | None = Field(
        None,
        description="backend-name rules: value -> the backends it selects "
        "(default: the value is a backend id)",
    )
    auto_values: list[str] = Field(
        default_factory=list,
        description="backend-name rules: values that leave the choice to the next rules",
    )
    summary: str | None = None
    source: str | None = Field(None, description="where the rule comes from (file:line, PR)")

    @model_validator(mode="after")
    def _forces_matches_value(self) -> ForcingRule:
        named = self.value == "backend-name"
        if not named and not self.forces:
            article = "an" if self.value[0] in "aeiou" else "a"
            raise ValueError(
                f"{article} {self.value} rule needs 'forces' (the backends it forces, best first)"
            )
        for key in ("choices", "names"):
            if not named and getattr(self, key) is not None:
                raise ValueError(f"'{key}' only makes sense with value: backend-name")
        if self.auto_values and self.value not in ("backend-name", "unset"):
            raise ValueError("'auto_values' only makes sense with value: backend-name or unset")
        if named and self.forces_by_capability is not None:
            raise ValueError(
                "a backend-name rule forces the backend its variable names: drop "
                "'forces_by_capability'"
            )
        if named and self.forces:
            raise ValueError(
                "a backend-name rule forces the backend its variable names: drop 'forces'"
            )
        if not named and self.mode == "restrict":
            raise ValueError("'mode: restrict' needs value: backend-name")
        if self.mode != "restrict" and self.on_empty != "error":
            raise ValueError("'on_empty' only makes sense with mode: restrict")
        return self


class AutoRule(_Strict):
    """Automatic selection: the first supported backend in ``order``.

    ``devices`` gives each device type its own candidate list (a device type
    not listed has none); without it, ``order`` applies everywhere.
    ``unfit: drop``: the list is first cut to the backends whose
    ``implements`` accepts the layer, as code that keeps a separate list per
    layer kind does (vLLM 0.27+ keeps only its W4A16 kernels for a
    weight-only layer): the others are neither consulted nor named in the
    error, and a restrict rule that names only them finds nothing here.
    """

    rule: RuleId = "auto"
    disabled_by: SelectionVariable = Field(
        description="comma-separated kernel class names to skip (automatic selection only)"
    )
    disabled_match: Match = Field(
        "stripped", description="exact: names are compared as split, blanks included"
    )
    order: list[str] = Field(min_length=1, description="every backend, in the order tried")
    devices: dict[Literal["cuda", "cpu"], list[str]] | None = Field(
        None, description="per device type, the backends tried (a subset of order, same order)"
    )
    unfit: Literal["consult", "drop"] = Field(
        "consult",
        description="drop: a backend whose 'implements' refuses the layer is left out of the "
        "list before anything reads it (a restrict rule included), never consulted",
    )
    source: str | None = None

    def candidates(self, device_type: str) -> list[str]:
        """The backends automatic selection tries on ``device_type``, in order."""
        if self.devices is None:
            return list(self.order)
        return list(self.devices.get(device_type, []))  # type: ignore[call-overload]


class ErrorTemplates(_Strict):
    """The start of each error message; ``{kernel}`` is the class name, ``{reason}`` the verdict."""

    forced_unsupported: str = "Forced NVFP4 kernel {kernel} is not supported: {reason}"
    forced_cannot_implement: str = (
        "Forced NVFP4 kernel {kernel} cannot implement this layer: {reason}"
    )
    auto_nothing: str = "Failed to find a kernel that can implement the NVFP4 linear layer"
    restrict_empty: str = (
        "{variable}={value} was requested but no '{value}' kernel exists for NVFP4 layers"
    )
    also_tried: str | None = Field(
        default=None,
        description="appended to a forced error when earlier forced backends failed too; "
        "{tried} is '<kernel>: <reason>' for each, joined by '; '",
    )
    invalid_env_type: str | None = Field(
        default=None, description="exception class of an invalid environment value (a ValueError)"
    )
    no_kernel_type: str | None = Field(
        default=None, description="exception class raised when no kernel can be selected (a ValueError)"
    )


class BooleanSpellings(_Strict):
    """The values a ``boolean`` variable accepts (case-insensitive, blanks around ignored)."""

    true_values: list[str] = Field(default_factory=lambda: ["1", "true", "yes", "on"])
    false_values: list[str] = Field(default_factory=lambda: ["0", "false", "no", "off", ""])

    @model_validator(mode="after")
    def _disjoint(self) -> BooleanSpellings:
        both = sorted(set(self.true_values) & set(self.false_values))
        if both:
            raise ValueError(f"{', '.join(map(repr, both))} cannot be both true and false")
        if any(v != v.strip().lower() for v in self.true_values + self.false_values):
            raise ValueError("spellings are compared lowercased and stripped: write them so")
        return self


class Precedence(_Strict):
    """The precedence table: forcing rules in order (first match wins), then auto.

    ``validation: upfront``: every variable is parsed before any rule runs (an
    invalid value is an error even under a higher rule). ``lazy``: a variable
    is parsed only when its rule is reached, as code that reads each variable
    inside its own ``if`` does.

    ``forced_pick`` says how a forcing rule's list is walked. ``usable``: the
    first forced backend that is supported and implements the layer wins; an
    error when none does. ``supported``: the first supported one is forced
    (the last one when none is), and only then checked: a layer it cannot
    implement is an error (``errors.forced_cannot_implement``), then an
    unsupported one (``errors.forced_unsupported``), as code that picks by
    ``is_supported()`` alone and checks the layer afterwards does.
    """

    forcing: list[ForcingRule]
    auto: AutoRule
    errors: ErrorTemplates = Field(default_factory=ErrorTemplates)
    booleans: BooleanSpellings = Field(default_factory=BooleanSpellings)
    validation: Literal["upfront", "lazy"] = "upfront"
    forced_pick: Literal["usable", "supported"] = "usable"


# --- sweeps and golden cases ---------------------------------------------------------------------


class MockOutcome(_Strict):
    """A forced ``is_supported()`` result for one backend."""

    supported: bool
    reason: str = "mocked unsupported"


class Sweep(_Strict):
    """A block of cells: profiles x environments x layers (x mocked support outcomes).

    Environments are the cross product of ``cross`` (``null`` = unset;
    ``$BACKENDS`` expands to every backend name) plus every explicit entry of
    ``envs``. With ``mock_relevant``, every backend the deciding rule consults
    is additionally forced supported and unsupported, in every combination.
    """

    id: Ident
    description: str | None = None
    profiles: list[str] | None = Field(
        None, min_length=1, description="default (omitted): every profile"
    )
    layers: list[str] | None = Field(
        None, min_length=1, description="default (omitted): the default layer"
    )
    cross: dict[SelectionVariable, list[str | None]] = Field(default_factory=dict)
    packages: list[list[PackageName]] | None = Field(
        None,
        min_length=1,
        description="package sets replacing each profile's optional packages, one cell each "
        "(default: the profile's own)",
    )
    envs: list[dict[SelectionVariable, str]] = Field(default_factory=list)
    mock: dict[str, MockOutcome] = Field(
        default_factory=dict, description="fixed mocks for every cell"
    )
    mock_relevant: bool = False


class GoldenExpect(_Strict):
    """The hand-written outcome of a golden case: a backend, or an error."""

    backend: str | None = None
    rule: RuleId | None = None
    error: str | None = Field(None, description="text the error message must contain")
    invalid_env: bool = Field(False, description="the error is an invalid environment value")
    candidates: dict[str, CandidateStatus] | None = Field(
        None, description="verdicts the decision record must show (a subset)"
    )
    messages: list[str] = Field(default_factory=list, description="text some note must contain")
    error_exact: bool = Field(
        False, description="the error message must equal 'error' in full (the message is the interface)"
    )
    messages_exact: bool = Field(
        False, description="the notes must equal 'messages' in full, in order"
    )
    warnings: list[str] | None = Field(
        None,
        description="the notes logged at WARNING, each containing one of these texts; every "
        "other note is logged at INFO (checked through init_nvfp4_linear_kernel's log)",
    )

    @model_validator(mode="after")
    def _backend_or_error(self) -> GoldenExpect:
        if (self.backend is None) == (self.error is None):
            raise ValueError("expect exactly one of 'backend' or 'error'")
        if self.invalid_env and self.error is None:
            raise ValueError("'invalid_env' needs 'error' (the text the message must contain)")
        if self.error_exact and self.error is None:
            raise ValueError("'error_exact' needs 'error' (the whole message)")
        return self


class GoldenCase(_Strict):
    """One explicit case: profile + env (+ mocks, packages, layer) -> expected outcome."""

    id: Ident
    profile: str
    env: dict[SelectionVariable, str] = Field(default_factory=dict)
    layer: str | None = None
    packages: list[PackageName] | None = Field(None, description="replaces the profile's packages")
    mock: dict[str, MockOutcome] = Field(default_factory=dict)
    expect: GoldenExpect
    why: str | None = None


# --- the file ----------------------------------------------------------------------------------


class TargetSpec(_Strict):
    """The system under test a matrix describes (default: this project's ``kernels``)."""

    name: Ident = Field(description="a target id: nvfp4-matrix, vllm, or a plugin's")
    versions: str | None = Field(
        None,
        description='the releases the file covers, a PEP 440 specifier such as ">=0.20,<0.22"',
    )
    source: str | None = Field(None, description="where the rules were read from")


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


class KnownFailure(_Strict):
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


class MatrixFile(_Strict):
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
