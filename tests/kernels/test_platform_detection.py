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

from kernels.envs import NvFp4Envs, read_envs
from kernels.platform import (
    MachineProbes,
    Platform,
    _parse_version,
    detect_platform,
    triton_interpret_on,
)

REAL = MachineProbes.real()


def _torch(
    cuda: bool = False,
    version: str = torch.__version__,
    runtime: str | None = None,
    **device: object,
) -> object:
    """A stand-in for the torch module, as a machine without (or with) a GPU shows it."""
    props = types.SimpleNamespace(**device)
    return types.SimpleNamespace(
        __version__=version,
        version=types.SimpleNamespace(cuda=runtime),
        cuda=types.SimpleNamespace(
            is_available=lambda: cuda,
            current_device=lambda: 0,
            get_device_properties=lambda index: props,
        ),
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
    assert REAL.importable(names) == frozenset({"json"})


def test_distribution_version_of_an_absent_distribution_is_none() -> None:
    assert REAL.version_of_module("no-such-distribution-nvfp4") is None
    assert REAL.version_of_module("pytest") is not None


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
    assert MachineProbes.real().version_of_module("nvfp4_triton_module") == (3, 6)


def test_distribution_version_of_a_module_no_distribution_provides_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Importable from a source tree on sys.path, with no installed metadata.
    _site(tmp_path, None, "nvfp4_source_tree")
    monkeypatch.syspath_prepend(str(tmp_path))
    probes = MachineProbes.real()
    assert probes.importable(["nvfp4_source_tree"]) == frozenset({"nvfp4_source_tree"})
    assert probes.version_of_module("nvfp4_source_tree") is None


def test_an_unreadable_torch_version_is_zero() -> None:
    probes = dataclasses.replace(REAL, torch=_torch(version="unknown"))
    assert detect_platform(probes).torch_version == (0, 0)


def test_cuda_memory_is_rounded_to_a_tenth_of_a_gib() -> None:
    # What torch reported on an H100 80GB HBM3: 85017493504 bytes, 79.18 GiB.
    gpu = _torch(cuda=True, name="GPU", major=9, minor=0, total_memory=85017493504, runtime="12.8")
    p = detect_platform(dataclasses.replace(REAL, torch=gpu))
    assert (p.memory_gib, p.capability, p.cuda_version) == (79.2, (9, 0), (12, 8))


def test_the_real_probes_read_this_process() -> None:
    import importlib.metadata
    import importlib.util
    import os

    assert REAL.torch is torch and REAL.environ is os.environ
    assert REAL.find_spec is importlib.util.find_spec
    assert REAL.distribution_version is importlib.metadata.version
    assert REAL.packages_distributions is importlib.metadata.packages_distributions


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
    assert triton_interpret_on(value, triton) is (value in _measured(triton))


@pytest.mark.parametrize(
    ("value", "triton", "expected"),
    [("true", (3, 3), False), ("true", (3, 9), True), (" 1", (3, 4), True), (" 1", (3, 5), False),
     ("1", (3, 3), True), ("0", (3, 9), False)],
)
def test_detection_reads_triton_interpret_by_the_installed_version(
    value: str, triton: tuple[int, int], expected: bool
) -> None:
    probes = MachineProbes(
        torch=_torch(),
        find_spec=lambda name: object() if name == "triton" else None,
        distribution_version=lambda name: f"{triton[0]}.{triton[1]}.0",
        packages_distributions=dict,
        environ={"TRITON_INTERPRET": value},
    )
    p = detect_platform(probes)
    assert (p.triton_version, p.triton_interpret) == (triton, expected)


def test_an_unset_triton_interpret_is_off() -> None:
    probes = dataclasses.replace(REAL, torch=_torch(), environ={})
    assert detect_platform(probes).triton_interpret is False


def test_the_probes_of_a_machine_cannot_be_swapped_after_the_fact():
    """A detection reads one machine: probes are given whole, never patched in place."""
    import dataclasses

    probes = MachineProbes.real()
    with pytest.raises(dataclasses.FrozenInstanceError):
        probes.torch = None  # type: ignore[misc]
