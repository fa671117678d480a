"""The one seam through which kernels see the hardware.

Every support rule and every selection decision reads the machine through a
:class:`Platform` value. :func:`current_platform` returns the active override
when one is installed with :func:`use_platform`, and otherwise detects the real
machine *at every call*: nothing in this package caches the capability, so a
test that swaps platforms can never be fooled by a stale value (the failure
mode of ``lru_cache``-d capability lookups in other projects).

Overrides live in a :class:`contextvars.ContextVar` holding a stack, so
``use_platform`` is nestable, restores the previous platform on exit (also on
error), and is thread-safe: each thread (and each asyncio task) sees only the
overrides it installed itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

__all__ = [
    "OPTIONAL_PACKAGES",
    "MachineProbes",
    "Platform",
    "current_platform",
    "detect_platform",
    "sm_label",
    "triton_interpret_on",
    "use_platform",
]

#: Optional packages whose presence changes which NVFP4 backends can run.
OPTIONAL_PACKAGES: tuple[str, ...] = ("triton", "flashinfer", "fbgemm_gpu")

DeviceType = Literal["cuda", "cpu"]


def sm_label(capability: tuple[int, int] | None) -> str:
    """``(10, 0)`` -> ``"sm_100"``; ``None`` (no CUDA device) -> ``"cpu"``."""
    if capability is None:
        return "cpu"
    return f"sm_{capability[0]}{capability[1]}"


@dataclasses.dataclass(frozen=True)
class Platform:
    """An immutable description of the machine as the support rules see it.

    Attributes:
        name: human-readable device name ("NVIDIA H100 80GB HBM3", "cpu").
        device_type: ``"cuda"`` or ``"cpu"``.
        capability: CUDA compute capability ``(major, minor)``, ``None`` on CPU.
        cuda_version: CUDA runtime version torch was built with, ``None`` on CPU.
        packages: importable optional packages among :data:`OPTIONAL_PACKAGES`.
        torch_version: ``(major, minor)`` of the installed torch.
        has_fp4_dtype: torch provides ``torch.float4_e2m1fn_x2``.
        triton_interpret: Triton's interpreter is switched on (``TRITON_INTERPRET``, read by
            the installed Triton's own rule): Triton kernels run on the CPU.
        triton_version: ``(major, minor)`` of the installed Triton, ``None`` if absent.
        memory_gib: device memory, informational only.
    """

    name: str
    device_type: DeviceType
    capability: tuple[int, int] | None = None
    cuda_version: tuple[int, int] | None = None
    packages: frozenset[str] = frozenset()
    torch_version: tuple[int, int] = (2, 8)
    has_fp4_dtype: bool = True
    triton_interpret: bool = False
    triton_version: tuple[int, int] | None = None
    memory_gib: float | None = None

    def __post_init__(self) -> None:
        if self.device_type not in ("cuda", "cpu"):
            raise ValueError(f"device_type must be 'cuda' or 'cpu', got {self.device_type!r}")
        if self.device_type == "cuda" and self.capability is None:
            raise ValueError(f"platform {self.name!r}: a cuda platform needs a capability")
        if self.device_type == "cpu" and self.capability is not None:
            raise ValueError(f"platform {self.name!r}: a cpu platform has no capability")
        # Accept any iterable of names, store a frozenset.
        object.__setattr__(self, "packages", frozenset(self.packages))

    # --- capability helpers -------------------------------------------------
    @property
    def is_cuda(self) -> bool:
        return self.device_type == "cuda"

    def has_capability(self, major: int, minor: int) -> bool:
        """``capability >= (major, minor)``. False on CPU.

        Use this only for rules that really are "this generation or newer"
        (e.g. bf16 tensor cores from sm80). For architecture-specific
        instructions use :meth:`is_family`: sm120 is numerically ">= 10.0" yet
        has neither tcgen05 nor TMEM.
        """
        return self.capability is not None and self.capability >= (major, minor)

    def is_family(self, major: int) -> bool:
        """Same major version: 10.x is the B200/B300 family, 12.x the RTX 50/GB10 family."""
        return self.capability is not None and self.capability[0] == major

    def has_package(self, name: str) -> bool:
        return name in self.packages

    def has_cuda_version(self, major: int, minor: int) -> bool:
        return self.cuda_version is not None and self.cuda_version >= (major, minor)

    @property
    def sm(self) -> str:
        """``"sm_100"`` style label, or ``"cpu"``."""
        return sm_label(self.capability)

    def describe(self) -> str:
        pk = ",".join(sorted(self.packages)) or "none"
        cuda = ".".join(map(str, self.cuda_version)) if self.cuda_version else "-"
        return f"{self.name} ({self.sm}, cuda {cuda}, packages {pk})"

    def replace(self, **changes: object) -> Platform:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


# --- detection ---------------------------------------------------------------


def _parse_version(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    parts = text.split("+")[0].split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class MachineProbes:
    """Where :func:`detect_platform` reads the machine: every outside fact comes through here.

    ``torch`` is the torch module (or a stand-in with the same attributes:
    ``__version__``, ``version.cuda``, ``cuda.is_available()``,
    ``cuda.current_device()``, ``cuda.get_device_properties(index)`` and,
    where torch has it, ``float4_e2m1fn_x2``); ``find_spec`` answers whether a
    module imports (``importlib.util.find_spec``: a spec or ``None``, and it may
    raise for a broken install); ``distribution_version`` and
    ``packages_distributions`` are ``importlib.metadata``'s; ``environ`` holds
    the process environment (``TRITON_INTERPRET``). :meth:`real` reads this
    process; a test or a harness builds another machine by passing its own
    probes, without patching anything.
    """

    torch: Any
    find_spec: Callable[[str], object]
    distribution_version: Callable[[str], str]
    packages_distributions: Callable[[], Mapping[str, list[str]]]
    environ: Mapping[str, str]

    @classmethod
    def real(cls) -> MachineProbes:
        """This process's torch, import system, installed distributions and environment."""
        import torch

        return cls(
            torch=torch,
            find_spec=importlib.util.find_spec,
            distribution_version=importlib.metadata.version,
            packages_distributions=importlib.metadata.packages_distributions,
            environ=os.environ,
        )

    def importable(self, names: Iterable[str]) -> frozenset[str]:
        """The ``names`` whose module imports (a probe that raises means "absent")."""
        found = set()
        for name in names:
            try:
                if self.find_spec(name) is not None:
                    found.add(name)
            except (ImportError, ValueError):
                pass
        return frozenset(found)

    def version_of_module(self, module: str) -> tuple[int, int] | None:
        """``(major, minor)`` of the installed distribution that provides the top-level ``module``.

        Usually that distribution bears the module's name. When none does, the
        distributions whose files hold the module are asked: torch nightlies
        install the ``triton`` module from the ``pytorch-triton`` distribution,
        ROCm builds from ``pytorch-triton-rocm``. Only then is the scan of every
        installed distribution (``packages_distributions()``, tens of
        milliseconds) paid. ``None`` when no installed distribution provides the
        module (a source tree on ``sys.path``) or its version does not parse.
        Were ``triton`` and ``pytorch-triton`` both installed, the files of the
        one installed last would be in place, which no metadata records; the one
        named like the module is reported.
        """
        try:
            return _parse_version(self.distribution_version(module))
        except importlib.metadata.PackageNotFoundError:
            pass
        for name in self.packages_distributions().get(module, []):
            return _parse_version(self.distribution_version(name))
        return None


#: ``TRITON_INTERPRET`` values that switch Triton's interpreter on (Triton >= 3.4,
#: compared in lower case). Read in the sources of the 3.2.0, 3.3.1, 3.4.0, 3.5.0,
#: 3.6.0 and 3.9.0 wheels and measured with all but 3.2.0: up to 3.3
#: ``triton.jit`` compares the raw value with "1"; 3.4 reads it through
#: ``knobs.env_bool``, which strips surrounding whitespace and lower-cases it; from
#: 3.5 on the C++ ``getenv_bool`` behind ``knobs.runtime.interpret`` lower-cases it
#: without stripping. Everything else is off: "0", "2", "t", "01", "enable", and
#: " 1" outside 3.4.
_INTERPRET_ON = ("1", "true", "yes", "on", "y")


def triton_interpret_on(value: str, triton: tuple[int, int] | None) -> bool:
    """Does the installed Triton switch its interpreter on for ``TRITON_INTERPRET=value``?

    ``triton`` is its ``(major, minor)``; with none (Triton absent, or its
    version unreadable) the value is read the way current releases read it.
    An unset variable is ``""``: off for every release.
    """
    if triton is not None and triton < (3, 4):
        return value == "1"
    if triton == (3, 4):
        value = value.strip()
    return value.lower() in _INTERPRET_ON


def detect_platform(probes: MachineProbes | None = None) -> Platform:
    """Describe the machine ``probes`` read (default: this one), every time (no cache)."""
    machine = probes or MachineProbes.real()
    torch = machine.torch
    torch_version = _parse_version(torch.__version__) or (0, 0)
    packages = machine.importable(OPTIONAL_PACKAGES)
    triton_version = machine.version_of_module("triton") if "triton" in packages else None
    interpret = machine.environ.get("TRITON_INTERPRET", "")
    common = dict(
        packages=packages,
        triton_version=triton_version,
        torch_version=torch_version,
        has_fp4_dtype=hasattr(torch, "float4_e2m1fn_x2"),
        triton_interpret=triton_interpret_on(interpret, triton_version),
    )
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return Platform(
            name=props.name,
            device_type="cuda",
            capability=(props.major, props.minor),
            cuda_version=_parse_version(torch.version.cuda),
            memory_gib=round(props.total_memory / 2**30, 1),
            **common,  # type: ignore[arg-type]
        )
    return Platform(name="cpu", device_type="cpu", **common)  # type: ignore[arg-type]


# --- the override stack --------------------------------------------------------

_OVERRIDES: contextvars.ContextVar[tuple[Platform, ...]] = contextvars.ContextVar(
    "nvfp4_platform_overrides", default=()
)


def current_platform() -> Platform:
    """The platform in force: the innermost :func:`use_platform` override, else the real one."""
    stack = _OVERRIDES.get()
    if stack:
        return stack[-1]
    return detect_platform()


@contextlib.contextmanager
def use_platform(platform: Platform) -> Iterator[Platform]:
    """Install ``platform`` as the current platform for the ``with`` block.

    Nestable; the previous platform is restored on exit, also when the block
    raises. The override is visible only in the calling thread / task.
    """
    if not isinstance(platform, Platform):
        raise TypeError(f"use_platform expects a Platform, got {type(platform).__name__}")
    token = _OVERRIDES.set(_OVERRIDES.get() + (platform,))
    try:
        yield platform
    finally:
        _OVERRIDES.reset(token)
