"""Detection helpers and hand-built defaults of the platform seam (found by the mutation lane).

The matrix's detection cells fake whole machines; these tests pin the edges
no profiled machine reaches: malformed or one-component version strings,
package probes that raise, a module no distribution provides, every
spelling of ``TRITON_INTERPRET`` under each Triton release's own rule, and the
defaults of a Platform or an environment snapshot built by hand.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import pytest
import torch

import kernels.platform as plat
from kernels.envs import NvFp4Envs, read_envs
from kernels.platform import (
    Platform,
    _distribution_version,
    _importable,
    _parse_version,
    _triton_interpret,
    detect_platform,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.8", (12, 8)),
        ("2.13.0+cpu", (2, 13)),
        ("13", (13, 0)),
        ("2.9.1", (2, 9)),
        ("2.10.0.dev20251208+cu128", (2, 10)),
        ("2.10.0a0+gitUNKNOWN", (2, 10)),
        ("3.6.0+git5261b273", (3, 6)),
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


def _site(root: Path, distribution: str | None, module: str, version: str = "3.6.0+git5261b273") -> None:
    """A site-packages folder holding ``module``, installed by ``distribution`` (None: a bare source tree)."""
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text("")
    if distribution is not None:
        info = root / f"{distribution.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        info.joinpath("METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        )
        info.joinpath("RECORD").write_text(f"{module}/__init__.py,,\n{info.name}/METADATA,,\n")


def test_distribution_version_of_a_module_installed_under_another_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A torch nightly's Triton: the module is triton, the distribution pytorch-triton.
    _site(tmp_path, "pytorch-triton-nvfp4", "nvfp4_triton_module")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _distribution_version("nvfp4_triton_module") == (3, 6)


def test_distribution_version_of_a_module_no_distribution_provides_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Importable from a source tree on sys.path, with no installed metadata.
    _site(tmp_path, None, "nvfp4_source_tree")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _importable(["nvfp4_source_tree"]) == frozenset({"nvfp4_source_tree"})
    assert _distribution_version("nvfp4_source_tree") is None


def test_an_unreadable_torch_version_is_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "__version__", "unknown")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert detect_platform().torch_version == (0, 0)


def test_cuda_memory_is_rounded_to_a_tenth_of_a_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    # What torch reported on an H100 80GB HBM3: 85017493504 bytes, 79.18 GiB.
    props = types.SimpleNamespace(name="GPU", major=9, minor=0, total_memory=85017493504)
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


#: What Triton makes of TRITON_INTERPRET, per release, as measured with the wheels
#: of 3.3.1, 3.4.0, 3.5.0, 3.6.0 and 3.9.0 (``knobs.runtime.interpret``; ``triton.jit``
#: before 3.4; 3.2.0's source compares like 3.3.1's): up to 3.3 only the exact "1";
#: 3.4 strips whitespace and lower-cases; from 3.5 on the value is lower-cased, not
#: stripped.
_ON_UP_TO_3_3 = {"1"}
_WORDS = {"1", "true", "TRUE", "True", "yes", "Yes", "YES", "on", "ON", "y", "Y"}
_ON_3_4 = _WORDS | {" 1", "1 ", " on", "\t1"}
_ON_FROM_3_5 = _WORDS
_SPELLINGS = sorted(_ON_3_4 | {"0", "2", "t", "01", "enable", "off", "false", "no", "n", ""})


def _measured(triton: tuple[int, int] | None) -> set[str]:
    if triton is not None and triton <= (3, 3):
        return _ON_UP_TO_3_3
    if triton == (3, 4):
        return _ON_3_4
    return _ON_FROM_3_5  # 3.5 .. 3.9; also what a machine without Triton is read by


@pytest.mark.parametrize("triton", [(3, 2), (3, 3), (3, 4), (3, 5), (3, 6), (3, 9), None])
@pytest.mark.parametrize("value", _SPELLINGS)
def test_triton_interpret_follows_the_installed_triton(
    value: str, triton: tuple[int, int] | None
) -> None:
    assert _triton_interpret(value, triton) is (value in _measured(triton))


@pytest.mark.parametrize(
    ("value", "triton", "expected"),
    [("true", (3, 3), False), ("true", (3, 9), True), (" 1", (3, 4), True), (" 1", (3, 5), False),
     ("1", (3, 3), True), ("0", (3, 9), False)],
)
def test_detection_reads_triton_interpret_by_the_installed_version(
    monkeypatch: pytest.MonkeyPatch, value: str, triton: tuple[int, int], expected: bool
) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(plat, "_importable", lambda names: frozenset({"triton"}))
    monkeypatch.setattr(plat, "_distribution_version", lambda module: triton)
    p = detect_platform()
    assert (p.triton_version, p.triton_interpret) == (triton, expected)


def test_an_unset_triton_interpret_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert detect_platform().triton_interpret is False
