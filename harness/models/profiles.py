"""The hardware profiles: fake machines, as :class:`~kernels.platform.Platform` would report them."""

from __future__ import annotations

import functools
import re
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, StringConstraints, model_validator

from harness.models.common import (
    MAX_MEMORY_GIB,
    MAX_SHARDS,
    DistributionName,
    PackageName,
    Strict,
    VersionStr,
    parse_version,
)
from kernels.platform import Platform, sm_label

__all__ = ["MAX_PRINTED_VERSION", "PRINTED_VERSION_PATTERN", "GpuProfile", "RealTests"]




class RealTests(Strict):
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


class GpuProfile(Strict):
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
