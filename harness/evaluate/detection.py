"""Detection cells: does the platform seam report each profile's machine as the profile says?

Every other cell hands the selection a :class:`~kernels.platform.Platform`
built from a profile. A detection cell instead fakes the machine one level
down, where :func:`kernels.platform.detect_platform` reads it (torch's CUDA
device properties and versions, the FP4 dtype, which optional packages import,
the installed Triton distribution and its version, ``TRITON_INTERPRET``),
detects the platform, and runs the profile's default selection on what was
detected. The profile's fields must come back unchanged, and the selection
must be the one the oracle expects for the profile: a fault in detection (a
capability read from the wrong property, a version parsed wrongly, a package
probe that always succeeds) fails the cell on fake hardware, where no real GPU
is needed.

The fake machine answers the way a real one prints: ``torch.__version__`` and
the Triton distribution's version as the profile writes them (a profile that
gives only ``"major.minor"`` gets ``".0"`` appended), device memory in bytes
that are not a whole number of GiB, and Triton installed under the
distribution the profile names (``pytorch-triton`` on a torch nightly), found
through ``importlib.metadata`` as on a real machine.
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import re
import types

from harness.evaluate.cells import Cell, cell_id
from harness.load import Matrix
from harness.models import GpuProfile, interpreter_switched_on, parse_version
from kernels.platform import MachineProbes

__all__ = [
    "DETECTION_GROUP",
    "detection_cells",
    "detection_problems",
    "fake_machine",
    "interpreter_expected",
]

#: The group of the detection cells.
DETECTION_GROUP = "detection"
#: Optional packages whose import the fake machine answers for, and how the probe
#: says "absent" for each: every way ``importlib.util.find_spec`` can (no spec; an
#: ImportError from a broken install; a ValueError for a stub module without a spec).
_PROBED: dict[str, type[Exception] | None] = {
    "triton": None,
    "flashinfer": ImportError,
    "fbgemm_gpu": ValueError,
}
_FP4 = "float4_e2m1fn_x2"
#: What the fake device adds to the profile's memory figure: torch reports bytes,
#: which are never a whole number of GiB (an H100 80GB HBM3: 85017493504 bytes,
#: 79.18 GiB), and detection rounds them to the profile's tenth.
_MEMORY_REMAINDER_GIB = 0.04


def _printed(version: str) -> str:
    """A version as a machine prints it: ``"2.9"`` -> ``"2.9.0"``; a full one stays."""
    return f"{version}.0" if re.fullmatch(r"[0-9]+\.[0-9]+", version) else version


def _distribution_key(name: str) -> str:
    """A distribution name as importlib.metadata compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def detection_cells(matrix: Matrix) -> list[Cell]:
    """One cell per profile (its default environment and layer, on a detected platform),
    and one per ``TRITON_INTERPRET`` value of ``triton_interpret:`` on each profile with Triton."""
    cells = [
        Cell(
            id=cell_id(pid, (), None) + "-detected",
            group=DETECTION_GROUP,
            profile=pid,
            env=(),
            layer=matrix.default_layer_id,
            location=matrix.where("profile", pid),
        )
        for pid in matrix.profiles
    ]
    for value in matrix.triton_interpret or {}:
        for pid, profile in matrix.profiles.items():
            if profile.triton is None:
                continue
            cells.append(
                Cell(
                    id=f"{pid}-interpret-{_slug(value)}-detected",
                    group=DETECTION_GROUP,
                    profile=pid,
                    env=(),
                    layer=matrix.default_layer_id,
                    location=matrix.where("triton_interpret", ""),
                    triton_interpret=value,
                )
            )
    return cells


def _slug(value: str) -> str:
    """A cell-id-safe spelling of a variable's value (``" 1"`` -> ``x201``, ``""`` -> ``empty``)."""
    return "".join(c if c.isalnum() else f"x{ord(c):02x}" for c in value) or "empty"


def interpreter_expected(matrix: Matrix, profile: GpuProfile, value: str) -> bool:
    """Does ``profile``'s Triton switch its interpreter on for ``TRITON_INTERPRET=value``
    (by the matrix's ``triton_interpret:`` table, not by the code)?"""
    releases = (matrix.triton_interpret or {}).get(value, "")
    return interpreter_switched_on(releases, profile.triton)


def fake_machine(profile: GpuProfile, interpret: str | None = None) -> MachineProbes:
    """The probes of ``profile``'s machine: what :func:`~kernels.platform.detect_platform`
    reads there (torch, the package probes, the installed distributions, the environment).

    ``interpret``: the value ``TRITON_INTERPRET`` holds (default: ``"1"`` when
    the profile runs the interpreter, else unset). Nothing of this process is
    changed: the probes are handed to ``detect_platform``.
    """
    cuda = profile.device_type == "cuda"
    cap = profile.capability_tuple or (0, 0)
    props = types.SimpleNamespace(
        name=profile.name,
        major=cap[0],
        minor=cap[1],
        total_memory=int(((profile.memory_gib or 0) + _MEMORY_REMAINDER_GIB) * 2**30),
    )
    torch = types.SimpleNamespace(
        __version__=_printed(profile.torch),
        version=types.SimpleNamespace(cuda=profile.cuda),
        cuda=types.SimpleNamespace(
            is_available=lambda: cuda,
            current_device=lambda: 0,
            get_device_properties=lambda index=None: props,
        ),
    )
    if profile.fp4_dtype:
        setattr(torch, _FP4, object())
    # The distribution that installed the triton module on this machine, if any.
    triton_dist = None
    if "triton" in profile.packages and profile.triton is not None:
        triton_dist = profile.triton_distribution or "triton"

    def find_spec(name: str) -> object:
        if name in profile.packages:
            return importlib.machinery.ModuleSpec(name, None)
        absent = _PROBED.get(name)
        if absent is not None:
            raise absent(f"{name} is not importable on this fake machine")
        return None

    def version(name: str) -> str:
        if triton_dist is not None and _distribution_key(name) == _distribution_key(triton_dist):
            return _printed(profile.triton)  # type: ignore[arg-type]
        raise importlib.metadata.PackageNotFoundError(name)

    def packages_distributions() -> dict[str, list[str]]:
        return {"triton": [triton_dist]} if triton_dist is not None else {}

    if interpret is None:
        interpret = "1" if profile.triton_interpret else None
    environ = {} if interpret is None else {"TRITON_INTERPRET": interpret}
    return MachineProbes(torch, find_spec, version, packages_distributions, environ)


def detection_problems(
    profile: GpuProfile, detected: object, interpret: bool | None = None
) -> list[str]:
    """How the detected platform differs from the profile (read from the YAML, not the code).

    ``interpret``: whether the interpreter must be on (default: as the profile says).
    """
    packages = frozenset(profile.packages)
    want = {
        "name": profile.name,
        "device_type": profile.device_type,
        "capability": profile.capability_tuple,
        "cuda_version": parse_version(profile.cuda),
        "packages": packages,
        "torch_version": profile.torch_version,
        "has_fp4_dtype": profile.fp4_dtype,
        "triton_interpret": profile.triton_interpret if interpret is None else interpret,
        "triton_version": profile.triton_version if "triton" in packages else None,
        "memory_gib": profile.memory_gib if profile.device_type == "cuda" else None,
    }
    if profile.device_type == "cpu":
        want["name"] = "cpu"  # the seam names every CPU machine "cpu"
    problems = []
    for field, value in want.items():
        got = getattr(detected, field, None)
        if got != value:
            problems.append(
                f"detection: {field} is {got!r} on this profile's machine, the profile says {value!r}"
            )
    return problems
