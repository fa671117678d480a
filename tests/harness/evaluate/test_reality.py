"""The reality check on CPU: real-looking platforms passed in place of the detected one."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.evaluate.reality import (
    UnknownGpuError,
    check_reality,
    forcing_environments,
    match_profile,
    suggest_profile,
)
from harness.evaluate.session import Session
from harness.load import load_matrix
from kernels.platform import Platform
from tests.support.paths import MATRIX_DIR

# What an H100 runner with torch 2.11 + CUDA 13 and Triton 3.6 really reports.
REAL_H100 = Platform(
    "NVIDIA H100 80GB HBM3", "cuda", (9, 0), (13, 0), frozenset({"triton"}),
    torch_version=(2, 11), triton_version=(3, 6), memory_gib=79.2,
)


def test_matching_h100_passes(shipped) -> None:
    report = check_reality(Session(shipped), REAL_H100)
    assert report.profile.id == "h100"  # same name, and it has a CI queue
    assert report.ok, report.format()
    assert {c.backend for c in report.support} == set(shipped.backends)
    assert len(report.selections) == len(forcing_environments(shipped))
    assert any("not installed here: fbgemm_gpu, flashinfer" in n for n in report.notes)


def test_forcing_environments_cover_default_and_each_variable(shipped) -> None:
    envs = forcing_environments(shipped)
    assert envs[0] == {}
    assert {"VLLM_BATCH_INVARIANT": "1"} in envs and {"VLLM_USE_FBGEMM": "1"} in envs
    assert {"VLLM_USE_NVFP4_CT_EMULATIONS": "1"} in envs
    assert {"VLLM_NVFP4_GEMM_BACKEND": "cublaslt"} in envs
    assert len(envs) == 1 + 3 + len(shipped.backends)


def wrong_h100_matrix(tmp_path: Path) -> Path:
    """The shipped matrix with h100 declared as an FP4-tensor-core (sm_100) machine.

    The declared support is consistent with the rules for 10.0, so the matrix
    loads and the fake run cannot notice: only the real machine can.
    """
    root = MATRIX_DIR
    for name in ("selection.yaml", "gpus.yaml"):
        text = (root / name).read_text()
        if name == "gpus.yaml":
            start = text.index("  h100:\n")
            end = text.index("\n  h100-bare:")
            block = text[start:end]
            fixed = block.replace('capability: "9.0"', 'capability: "10.0"').replace(
                "supported: [triton, emulation]",
                "supported: [flashinfer-cutlass, cublaslt, flashinfer-trtllm, flashinfer-cudnn, fbgemm, triton, emulation]",
            )
            assert fixed != block
            text = text[:start] + fixed + text[end:]
        (tmp_path / name).write_text(text)
    return tmp_path / "selection.yaml"


def test_h100_declared_with_fp4_tensor_cores_fails_clearly(tmp_path: Path) -> None:
    matrix = load_matrix([wrong_h100_matrix(tmp_path)])
    report = check_reality(Session(matrix), REAL_H100, profile_id="h100")
    assert not report.ok
    text = report.format()
    assert "reality check FAIL: profile h100" in text
    assert "profile h100 declares sm_100, the machine is sm_90" in text
    bad = {c.backend: c for c in report.support if not c.ok}
    assert set(bad) == {"flashinfer-cutlass", "cublaslt", "flashinfer-trtllm", "flashinfer-cudnn", "fbgemm"}
    assert "FAIL cublaslt           declared supported   real unsupported (cublaslt needs sm_10x" in text
    failing = [c for c in report.selections if not c.ok]
    assert any(c.env == () for c in failing)  # the default choice differs too
    assert any(("VLLM_USE_FBGEMM", "1") in c.env for c in failing)


def test_unknown_gpu_gets_a_profile_to_paste(shipped) -> None:
    gh200 = Platform("NVIDIA GH200 480GB", "cuda", (9, 0), (12, 8), frozenset({"triton"}), triton_version=(3, 5))
    sm95 = gh200.replace(capability=(9, 5))
    with pytest.raises(UnknownGpuError) as info:
        match_profile(shipped, sm95)
    message = str(info.value)
    assert "no profile in the matrix describes this machine" in message
    assert 'capability: "9.5"' in message and "supported: [triton, emulation]" in message
    with pytest.raises(UnknownGpuError, match="profile 'nope' is not in the matrix"):
        match_profile(shipped, gh200, "nope")


def test_suggested_profile_is_valid_yaml_for_the_matrix(shipped, tmp_path: Path) -> None:
    import yaml

    entry = yaml.safe_load(suggest_profile(REAL_H100))
    (ident, fields), = entry.items()
    assert ident == "nvidia-h100-80gb-hbm3"
    from harness.models import GpuProfile

    profile = GpuProfile.model_validate(fields, strict=False)
    assert profile.supported == ["triton", "emulation"]


def test_cli_reality_on_this_machine(capsys) -> None:
    code = main(["reality"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("reality check PASS")
