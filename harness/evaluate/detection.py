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

import contextlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import re
import types
from collections.abc import Iterator
from unittest import mock

from harness.evaluate.cells import Cell, cell_id
from harness.load import Matrix
from harness.models import GpuProfile, interpreter_switched_on, parse_version

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


@contextlib.contextmanager
def fake_machine(profile: GpuProfile, interpret: str | None = None) -> Iterator[None]:
    """torch, the package probes and the environment as they would be on ``profile``'s machine.

    ``interpret``: the value ``TRITON_INTERPRET`` holds (default: ``"1"`` when
    the profile runs the interpreter, else unset).
    """
    import torch

    cuda = profile.device_type == "cuda"
    cap = profile.capability_tuple or (0, 0)
    props = types.SimpleNamespace(
        name=profile.name,
        major=cap[0],
        minor=cap[1],
        total_memory=int(((profile.memory_gib or 0) + _MEMORY_REMAINDER_GIB) * 2**30),
    )
    real_find_spec = importlib.util.find_spec
    real_version = importlib.metadata.version
    real_packages_distributions = importlib.metadata.packages_distributions
    # The distribution that installed the triton module on this machine, if any.
    triton_dist = None
    if "triton" in profile.packages and profile.triton is not None:
        triton_dist = profile.triton_distribution or "triton"

    def find_spec(name: str, *args: object, **kwargs: object) -> object:
        if name in _PROBED:
            if name in profile.packages:
                return importlib.machinery.ModuleSpec(name, None)
            absent = _PROBED[name]
            if absent is not None:
                raise absent(f"{name} is not importable on this fake machine")
            return None
        return real_find_spec(name, *args, **kwargs)  # type: ignore[arg-type]

    def version(name: str) -> str:
        key = _distribution_key(name)
        if triton_dist is not None and key == _distribution_key(triton_dist):
            return _printed(profile.triton)  # type: ignore[arg-type]
        if key in ("triton", "pytorch-triton", "pytorch-triton-rocm"):
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    def packages_distributions() -> dict[str, list[str]]:
        found = {
            module: [d for d in dists if _distribution_key(d) != "triton"]
            for module, dists in real_packages_distributions().items()
            if module != "triton"
        }
        if triton_dist is not None:
            found["triton"] = [triton_dist]
        return found

    had_fp4 = hasattr(torch, _FP4)
    saved_fp4 = getattr(torch, _FP4, None)
    saved_interpret = os.environ.get("TRITON_INTERPRET")
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(torch.cuda, "is_available", lambda: cuda))
        stack.enter_context(mock.patch.object(torch.cuda, "current_device", lambda: 0))
        stack.enter_context(
            mock.patch.object(torch.cuda, "get_device_properties", lambda index=None: props)
        )
        stack.enter_context(mock.patch.object(torch.version, "cuda", profile.cuda))
        stack.enter_context(mock.patch.object(torch, "__version__", _printed(profile.torch)))
        stack.enter_context(mock.patch.object(importlib.util, "find_spec", find_spec))
        stack.enter_context(mock.patch.object(importlib.metadata, "version", version))
        stack.enter_context(
            mock.patch.object(importlib.metadata, "packages_distributions", packages_distributions)
        )
        try:
            if profile.fp4_dtype and not had_fp4:
                setattr(torch, _FP4, object())
            elif not profile.fp4_dtype and had_fp4:
                delattr(torch, _FP4)
            if interpret is not None:
                os.environ["TRITON_INTERPRET"] = interpret
            elif profile.triton_interpret:
                os.environ["TRITON_INTERPRET"] = "1"
            else:
                os.environ.pop("TRITON_INTERPRET", None)
            yield
        finally:
            if had_fp4:
                setattr(torch, _FP4, saved_fp4)
            elif hasattr(torch, _FP4):
                delattr(torch, _FP4)
            if saved_interpret is None:
                os.environ.pop("TRITON_INTERPRET", None)
            else:
                os.environ["TRITON_INTERPRET"] = saved_interpret


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
