"""Detection helpers and hand-built defaults of the platform seam (found by the mutation lane).

The matrix's detection cells fake whole machines; these tests pin the edges
no machine reaches: malformed version strings, package probes that raise, a
distribution that is absent, and the defaults of a Platform or an
environment snapshot built by hand.
"""

from __future__ import annotations

import dataclasses
import sys
import types

import pytest
import torch

from kernels.envs import NvFp4Envs, read_envs
from kernels.platform import (
    Platform,
    _distribution_version,
    _importable,
    _parse_version,
    detect_platform,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.8", (12, 8)),
        ("2.13.0+cpu", (2, 13)),
        ("13", (13, 0)),
        ("2.9.1", (2, 9)),
        ("", None),
        (None, None),
        ("cpu", None),
        ("12.x", None),
    ],
)
def test_parse_version(text: str | None, expected: tuple[int, int] | None) -> None:
    assert _parse_version(text) == expected


def test_importable_survives_probes_that_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    # A loaded module without a spec makes find_spec raise ValueError; a dotted
    # name whose parent does not exist raises ModuleNotFoundError (an ImportError).
    monkeypatch.setitem(sys.modules, "nvfp4_specless", types.ModuleType("nvfp4_specless"))
    names = ["nvfp4_specless", "no_such_parent_pkg.child", "json"]
    assert _importable(names) == frozenset({"json"})


def test_distribution_version_of_an_absent_distribution_is_none() -> None:
    assert _distribution_version("no-such-distribution-nvfp4") is None
    assert _distribution_version("pytest") is not None


def test_an_unreadable_torch_version_is_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "__version__", "unknown")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert detect_platform().torch_version == (0, 0)


def test_cuda_memory_is_rounded_to_a_tenth_of_a_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    props = types.SimpleNamespace(name="GPU", major=9, minor=0, total_memory=int(79.24 * 2**30))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    p = detect_platform()
    assert (p.memory_gib, p.capability, p.cuda_version) == (79.2, (9, 0), (12, 8))


def test_hand_built_platform_defaults() -> None:
    p = Platform("gpu", "cuda", (9, 0))
    assert (p.torch_version, p.has_fp4_dtype, p.triton_interpret) == ((2, 8), True, False)
    assert (p.cuda_version, p.packages, p.triton_version, p.memory_gib) == (None, frozenset(), None, None)
    assert p.has_capability(9, 0) and not p.has_capability(9, 1)
    assert Platform("gpu", "cuda", (12, 0), (12, 0)).has_cuda_version(12, 0)
    assert not Platform("gpu", "cuda", (12, 0), (12, 0)).has_cuda_version(12, 1)


def test_the_empty_environment_snapshot() -> None:
    assert read_envs({}) == NvFp4Envs(False, False, False, None, frozenset(), ())
    with pytest.raises(TypeError):
        NvFp4Envs()  # type: ignore[call-arg]  # a snapshot built by hand states every field
    with pytest.raises(dataclasses.FrozenInstanceError):
        read_envs({}).batch_invariant = True  # type: ignore[misc]


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("0", False), ("true", False), ("2", False)])
def test_only_triton_interpret_1_is_the_interpreter(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    # Triton itself switches its interpreter on for TRITON_INTERPRET=1 only.
    monkeypatch.setenv("TRITON_INTERPRET", value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert detect_platform().triton_interpret is expected
