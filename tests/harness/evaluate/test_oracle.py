"""The oracle derives expectations from the matrix alone, and gets them right."""

from __future__ import annotations

from unittest import mock

import pytest

from harness.evaluate.oracle import Oracle
from harness.load import Matrix


@pytest.fixture(scope="module")
def oracle(shipped: Matrix) -> Oracle:
    return Oracle(shipped)


def _expect(shipped: Matrix, oracle: Oracle, profile: str, env=None, layer=None, mocks=None):
    return oracle.expect(
        shipped.profile(profile).platform(), env or {}, shipped.layer(layer), mocks
    )


def test_oracle_never_calls_the_selection_or_the_support_rules(shipped: Matrix):
    """Every selection entry point and every is_supported/can_implement raises: the oracle still works."""
    from kernels.linear import select
    from kernels.linear.registry import NVFP4_BACKENDS

    def boom(*args, **kwargs):
        raise AssertionError("the oracle called the code it checks")

    with (
        mock.patch.object(select, "decide", boom),
        mock.patch.object(select, "init_nvfp4_linear_kernel", boom),
    ):
        patches = [
            mock.patch.object(cls, "is_supported", classmethod(boom))
            for cls in NVFP4_BACKENDS.values()
        ]
        patches += [
            mock.patch.object(cls, "can_implement", classmethod(boom))
            for cls in NVFP4_BACKENDS.values()
        ]
        for p in patches:
            p.start()
        try:
            fresh = Oracle(shipped)
            from harness.evaluate.cells import expand
            from harness.targets.project import ProjectTarget

            count = 0
            for _, cells in expand(shipped, ProjectTarget().vocabulary):
                for cell in cells:
                    fresh.expect(
                        shipped.profiles[cell.profile].platform(cell.packages),
                        cell.env_dict,
                        shipped.layers[cell.layer],
                        cell.mock_dict,
                    )
                    count += 1
        finally:
            for p in patches:
                p.stop()
    assert count > 5000


@pytest.mark.parametrize(
    ("profile", "env", "backend", "rule"),
    [
        ("b200", {}, "flashinfer-cutlass", "auto"),
        ("b200", {"VLLM_BATCH_INVARIANT": "1"}, "triton", "batch_invariant"),
        ("v100", {"VLLM_BATCH_INVARIANT": "true"}, "emulation", "batch_invariant"),
        ("b200", {"VLLM_BATCH_INVARIANT": "0", "VLLM_USE_FBGEMM": "1"}, "fbgemm", "use_fbgemm"),
        (
            "b200",
            {"VLLM_USE_FBGEMM": "1", "VLLM_USE_NVFP4_CT_EMULATIONS": "1"},
            "fbgemm",
            "use_fbgemm",
        ),
        ("h100", {"VLLM_USE_NVFP4_CT_EMULATIONS": "ON"}, "emulation", "ct_emulations"),
        ("gb10", {}, "cublaslt", "auto"),
        (
            "rtx5090",
            {
                "VLLM_DISABLED_KERNELS": "FlashInferCutlassNvFp4LinearKernel,CublasLtNvFp4LinearKernel"
            },
            "flashinfer-cudnn",
            "auto",
        ),
        ("cpu-interpret", {}, "triton", "auto"),
        ("cpu", {"VLLM_NVFP4_GEMM_BACKEND": " emulation "}, "emulation", "gemm_backend"),
    ],
)
def test_expected_backend(shipped, oracle, profile, env, backend, rule):
    e = _expect(shipped, oracle, profile, env)
    assert (e.outcome, e.backend, e.rule) == ("backend", backend, rule), e.because


def test_forced_unsupported_is_an_error_with_the_template(shipped, oracle):
    e = _expect(shipped, oracle, "rtx5090", {"VLLM_NVFP4_GEMM_BACKEND": "flashinfer-trtllm"})
    assert e.outcome == "error" and e.rule == "gemm_backend"
    assert (
        e.error_prefix == "Forced NVFP4 kernel FlashInferTrtllmNvFp4LinearKernel is not supported: "
    )
    assert e.candidates == (("flashinfer-trtllm", "unsupported"),)
    assert any("needs family sm_10x, platform is sm_120" in line for line in e.because)


def test_mocked_reason_is_part_of_the_expected_error(shipped, oracle):
    mocks = {"triton": (False, "triton off"), "emulation": (False, "emulation off")}
    e = _expect(shipped, oracle, "b200", {"VLLM_BATCH_INVARIANT": "1"}, mocks=mocks)
    assert (
        e.error_prefix
        == "Forced NVFP4 kernel EmulationNvFp4LinearKernel is not supported: emulation off"
    )
    assert e.candidates == (("triton", "unsupported"), ("emulation", "unsupported"))


def test_cannot_implement_and_auto_error(shipped, oracle):
    e = _expect(shipped, oracle, "b200", {"VLLM_USE_FBGEMM": "1"}, layer="w4a4-fp16")
    assert e.error_prefix.startswith(
        "Forced NVFP4 kernel FbgemmNvFp4LinearKernel cannot implement this layer"
    )
    e = _expect(shipped, oracle, "b200", {}, layer="k-unaligned")
    assert e.outcome == "error" and e.rule == "auto"
    assert (
        e.error_contains[0] == "Failed to find a kernel that can implement the NVFP4 linear layer"
    )
    assert "EmulationNvFp4LinearKernel" in e.error_contains  # every rejected kernel is listed


def test_invalid_values_are_errors_even_under_a_winning_rule(shipped, oracle):
    e = _expect(shipped, oracle, "b200", {"VLLM_BATCH_INVARIANT": "1", "VLLM_USE_FBGEMM": "2"})
    assert e.outcome == "invalid-env" and e.error_mentions_any == ("VLLM_USE_FBGEMM",)
    e = _expect(shipped, oracle, "b200", {"VLLM_NVFP4_GEMM_BACKEND": "Triton"})
    assert e.error_mentions_any == ("VLLM_NVFP4_GEMM_BACKEND",)
    assert oracle.consulted({"VLLM_BATCH_INVARIANT": "maybe"}) is None
    # empty means unset
    assert (
        _expect(
            shipped, oracle, "b200", {"VLLM_NVFP4_GEMM_BACKEND": "", "VLLM_BATCH_INVARIANT": ""}
        ).rule
        == "auto"
    )


def test_consulted_backends_follow_the_deciding_rule(shipped, oracle):
    assert oracle.consulted({"VLLM_BATCH_INVARIANT": "1", "VLLM_USE_FBGEMM": "1"}) == (
        "triton",
        "emulation",
    )
    assert oracle.consulted({"VLLM_USE_FBGEMM": "yes"}) == ("fbgemm",)
    assert oracle.consulted({"VLLM_NVFP4_GEMM_BACKEND": "cublaslt"}) == ("cublaslt",)
    auto = oracle.consulted({"VLLM_DISABLED_KERNELS": "TritonNvFp4LinearKernel, NoSuch"})
    assert auto == (
        "flashinfer-cutlass",
        "cublaslt",
        "flashinfer-trtllm",
        "flashinfer-cudnn",
        "fbgemm",
        "emulation",
    )
    # disabled kernels do not apply to forcing rules
    assert oracle.consulted(
        {"VLLM_NVFP4_GEMM_BACKEND": "triton", "VLLM_DISABLED_KERNELS": "TritonNvFp4LinearKernel"}
    ) == ("triton",)
