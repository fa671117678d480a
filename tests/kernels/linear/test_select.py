"""Selection: every precedence pair, forced-kernel errors, automatic order, decision records."""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from unittest import mock

import pytest
import torch

from kernels.errors import InvalidEnvironmentError, KernelSelectionError
from kernels.linear import (
    NVFP4_BACKENDS,
    PRECEDENCE,
    NvFp4LinearConfig,
    decide,
    init_nvfp4_linear_kernel,
)
from kernels.linear.emulation import EmulationNvFp4LinearKernel
from kernels.platform import Platform, use_platform

B200 = Platform("B200", "cuda", (10, 0), (12, 9), frozenset({"flashinfer"}), triton_version=(3, 6))
H100 = Platform("H100", "cuda", (9, 0), (12, 9), frozenset({"triton"}), triton_version=(3, 6))
RTX5090 = Platform("RTX 5090", "cuda", (12, 0), (12, 9), frozenset({"flashinfer", "fbgemm_gpu"}))
V100 = Platform("V100", "cuda", (7, 0), (12, 4), frozenset({"flashinfer", "triton", "fbgemm_gpu"}))
CPU = Platform("cpu", "cpu")
CONFIG = NvFp4LinearConfig(in_features=256, out_features=128)


@contextmanager
def mocked_support(verdicts: Mapping[str, tuple[bool, str | None]]) -> Iterator[None]:
    """Force ``is_supported`` of the named backends; every other backend keeps its rule."""
    with ExitStack() as stack:
        for name, verdict in verdicts.items():
            cls = NVFP4_BACKENDS[name]
            stack.enter_context(
                mock.patch.object(cls, "is_supported", classmethod(lambda c, p=None, v=verdict: v))
            )
        yield


ALL_SUPPORTED = {name: (True, None) for name in NVFP4_BACKENDS}

# Each rule, the variable setting that fires it, and the backend it picks when
# every backend is supported. Auto is the last "rule".
RULES = {
    "batch_invariant": ({"VLLM_BATCH_INVARIANT": "1"}, "triton"),
    "use_fbgemm": ({"VLLM_USE_FBGEMM": "1"}, "fbgemm"),
    "ct_emulations": ({"VLLM_USE_NVFP4_CT_EMULATIONS": "1"}, "emulation"),
    "gemm_backend": ({"VLLM_NVFP4_GEMM_BACKEND": "cublaslt"}, "cublaslt"),
    "auto": ({}, next(iter(NVFP4_BACKENDS))),
}


def test_precedence_table_order_is_the_documented_one() -> None:
    assert [r.id for r in PRECEDENCE] == list(RULES)[:-1]
    assert [r.variable for r in PRECEDENCE] == [
        "VLLM_BATCH_INVARIANT",
        "VLLM_USE_FBGEMM",
        "VLLM_USE_NVFP4_CT_EMULATIONS",
        "VLLM_NVFP4_GEMM_BACKEND",
    ]


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_alone(rule: str) -> None:
    env, expected = RULES[rule]
    with mocked_support(ALL_SUPPORTED):
        decision = decide(CONFIG, B200, env)
    assert (decision.rule, decision.backend) == (rule, expected)


@pytest.mark.parametrize(
    "higher, lower",
    list(itertools.combinations(list(RULES), 2)),
    ids=lambda r: r,
)
def test_higher_rule_beats_lower_rule(higher: str, lower: str) -> None:
    env = {**RULES[lower][0], **RULES[higher][0]}
    with mocked_support(ALL_SUPPORTED):
        decision = decide(CONFIG, B200, env)
    assert decision.rule == higher, decision.format()
    assert decision.backend == RULES[higher][1], decision.format()


@pytest.mark.parametrize(
    "higher, lower",
    [(hi, lo) for hi, lo in itertools.combinations(list(RULES), 2) if hi in ("use_fbgemm", "gemm_backend")],
)
def test_unsupported_forced_kernel_raises_instead_of_falling_back(higher: str, lower: str) -> None:
    env = {**RULES[lower][0], **RULES[higher][0]}
    forced = RULES[higher][1]
    verdicts = {**ALL_SUPPORTED, forced: (False, f"mocked: {forced} off")}
    cls = NVFP4_BACKENDS[forced]
    with mocked_support(verdicts):
        decision = decide(CONFIG, B200, env)
        assert decision.backend is None and decision.rule == higher
        with pytest.raises(KernelSelectionError) as info:
            init_nvfp4_linear_kernel(CONFIG, B200, env)
    assert str(info.value) == f"Forced NVFP4 kernel {cls.__name__} is not supported: mocked: {forced} off"
    assert isinstance(info.value, ValueError)
    assert info.value.decision is not None and info.value.decision.rule == higher


def test_batch_invariant_prefers_triton_then_emulation() -> None:
    with mocked_support({"triton": (False, "mocked: no triton")}):
        decision = decide(CONFIG, B200, {"VLLM_BATCH_INVARIANT": "1"})
    assert decision.backend == "emulation"
    assert [c.status for c in decision.candidates] == ["unsupported", "selected"]
    assert any("mocked: no triton" in m for m in decision.messages)


def test_batch_invariant_beats_an_explicit_backend_even_when_it_is_supported() -> None:
    with mocked_support(ALL_SUPPORTED):
        d = decide(CONFIG, B200, {"VLLM_BATCH_INVARIANT": "1", "VLLM_NVFP4_GEMM_BACKEND": "flashinfer-cutlass"})
    assert d.backend == "triton"


def test_decide_is_pure_and_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="kernels.linear"):
        d = decide(CONFIG, CPU, {"VLLM_BATCH_INVARIANT": "1"})
        decide(CONFIG, V100, {})
    assert d.messages, "the batch-invariant note is in the decision record"
    assert caplog.records == []


def test_init_logs_the_batch_invariant_reason_once(caplog: pytest.LogCaptureFixture) -> None:
    # A reason no other test uses: the once-per-message filter is process-wide.
    reason = f"mocked: no triton ({uuid.uuid4().hex})"
    with mocked_support({"triton": (False, reason)}), caplog.at_level(
        logging.INFO, logger="kernels.linear"
    ):
        for _ in range(3):
            kernel, _ = init_nvfp4_linear_kernel(CONFIG, CPU, {"VLLM_BATCH_INVARIANT": "1"})
    assert isinstance(kernel, EmulationNvFp4LinearKernel)
    lines = [r.getMessage() for r in caplog.records if reason in r.getMessage()]
    assert len(lines) == 1 and "VLLM_BATCH_INVARIANT forces" in lines[0]
    assert caplog.records[0].levelno == logging.INFO


def test_forced_backend_error_message_for_real_rule() -> None:
    with pytest.raises(ValueError) as info:
        init_nvfp4_linear_kernel(CONFIG, H100, {"VLLM_NVFP4_GEMM_BACKEND": "flashinfer-trtllm"})
    assert str(info.value) == (
        "Forced NVFP4 kernel FlashInferTrtllmNvFp4LinearKernel is not supported: "
        "flashinfer-trtllm needs sm_10x (B200/B300), platform is sm_90"
    )


def test_forced_backend_that_cannot_implement_the_layer() -> None:
    fp32 = NvFp4LinearConfig(256, 128, act_dtype=torch.float32)
    with mocked_support(ALL_SUPPORTED):
        d = decide(fp32, B200, {"VLLM_USE_FBGEMM": "1"})
    assert d.backend is None
    assert d.error is not None and d.error.startswith(
        "Forced NVFP4 kernel FbgemmNvFp4LinearKernel cannot implement this layer: fbgemm takes bfloat16"
    )


def test_unknown_backend_name_lists_choices_even_under_a_higher_rule() -> None:
    for env in ({"VLLM_NVFP4_GEMM_BACKEND": "cutlass"}, {"VLLM_BATCH_INVARIANT": "1", "VLLM_NVFP4_GEMM_BACKEND": "cutlass"}):
        with pytest.raises(InvalidEnvironmentError) as info:
            decide(CONFIG, B200, env)
        message = str(info.value)
        assert "VLLM_NVFP4_GEMM_BACKEND='cutlass'" in message
        for name in NVFP4_BACKENDS:
            assert name in message


def test_invalid_boolean_fails_before_any_rule() -> None:
    with pytest.raises(InvalidEnvironmentError, match="VLLM_USE_FBGEMM='maybe'"):
        decide(CONFIG, B200, {"VLLM_BATCH_INVARIANT": "1", "VLLM_USE_FBGEMM": "maybe"})


# --- automatic selection -------------------------------------------------------


@pytest.mark.parametrize(
    "platform, expected",
    [
        (B200, "flashinfer-cutlass"),
        (Platform("B200 bare", "cuda", (10, 0), (12, 9)), "cublaslt"),
        (RTX5090, "flashinfer-cutlass"),
        (H100, "triton"),
        (V100, "emulation"),
        (CPU, "emulation"),
        (Platform("cpu", "cpu", packages={"triton"}, triton_interpret=True), "triton"),
    ],
    ids=lambda p: p.name if isinstance(p, Platform) else p,
)
def test_automatic_choice_per_platform(platform: Platform, expected: str) -> None:
    assert decide(CONFIG, platform, {}).backend == expected


def test_sm120_never_gets_an_sm100_only_backend() -> None:
    # fbgemm and flashinfer-trtllm are sm_10x only; RTX 5090 has both packages.
    for name in ("fbgemm", "flashinfer-trtllm"):
        with pytest.raises(KernelSelectionError, match="needs sm_10x"):
            init_nvfp4_linear_kernel(CONFIG, RTX5090, {"VLLM_NVFP4_GEMM_BACKEND": name})


def test_package_alone_does_not_make_flashinfer_supported() -> None:
    d = decide(CONFIG, V100, {})
    verdicts = {c.backend: c for c in d.candidates}
    for name in ("flashinfer-cutlass", "flashinfer-trtllm", "flashinfer-cudnn"):
        assert verdicts[name].status == "unsupported"
        assert "platform is sm_70" in (verdicts[name].reason or "")


def test_disabled_kernels_are_skipped_in_auto_only() -> None:
    env = {"VLLM_DISABLED_KERNELS": "FlashInferCutlassNvFp4LinearKernel,NoSuchKernel"}
    d = decide(CONFIG, B200, env)
    assert d.backend == "cublaslt"
    assert d.candidates[0].status == "disabled"
    assert "disabled by VLLM_DISABLED_KERNELS" in (d.candidates[0].reason or "")
    assert any("NoSuchKernel" in m for m in d.messages)
    forced = decide(CONFIG, B200, {**env, "VLLM_NVFP4_GEMM_BACKEND": "flashinfer-cutlass"})
    assert forced.backend == "flashinfer-cutlass"
    assert any("automatic selection only" in m for m in forced.messages)


def test_emulation_fallback_warns_with_reasons(caplog: pytest.LogCaptureFixture) -> None:
    reason = f"mocked: no triton ({uuid.uuid4().hex})"
    with mocked_support({"triton": (False, reason)}), caplog.at_level(
        logging.WARNING, logger="kernels.linear"
    ):
        kernel, d = init_nvfp4_linear_kernel(CONFIG, V100, {})
    assert d.backend == "emulation"
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "falling back to the slow emulation" in warning[0]
    assert reason in warning[0]


def test_no_kernel_fits_lists_every_reason() -> None:
    bad = NvFp4LinearConfig(in_features=24, out_features=8)
    with pytest.raises(KernelSelectionError) as info:
        init_nvfp4_linear_kernel(bad, B200, {})
    message = str(info.value)
    assert message.startswith("Failed to find a kernel that can implement the NVFP4 linear layer")
    for cls in NVFP4_BACKENDS.values():
        assert cls.__name__ in message
    assert info.value.decision is not None
    assert all(c.status != "selected" for c in info.value.decision.candidates)


def test_weight_only_layers_skip_w4a4_only_backends() -> None:
    w4a16 = NvFp4LinearConfig(256, 128, weight_only=True)
    with mocked_support(ALL_SUPPORTED):
        d = decide(w4a16, B200, {})
    assert d.backend == "triton"  # the first backend with a weight-only mode
    assert [c.status for c in d.candidates[:5]] == ["cannot-implement"] * 5
    assert "needs a W4A4 checkpoint" in (d.candidates[0].reason or "")
    assert decide(w4a16, B200, {}).backend == "emulation"  # no triton on this B200


def test_platform_defaults_to_the_seam() -> None:
    with use_platform(B200):
        kernel, decision = init_nvfp4_linear_kernel(CONFIG, environ={"VLLM_BATCH_INVARIANT": "1"})
    assert isinstance(kernel, EmulationNvFp4LinearKernel)
    assert decision.platform.startswith("B200")


def test_environment_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_USE_NVFP4_CT_EMULATIONS", "1")
    assert decide(CONFIG, B200).rule == "ct_emulations"
    monkeypatch.delenv("VLLM_USE_NVFP4_CT_EMULATIONS")
    assert decide(CONFIG, B200).rule == "auto"


def test_decision_record_is_printable_and_serialisable() -> None:
    d = decide(CONFIG, B200, {"VLLM_USE_FBGEMM": "0", "VLLM_NVFP4_GEMM_BACKEND": "emulation"})
    text = d.format()
    assert "rule     : gemm_backend (VLLM_NVFP4_GEMM_BACKEND)" in text
    assert "VLLM_USE_FBGEMM=0" in text and "result   : emulation" in text
    data = d.to_dict()
    assert data["backend"] == "emulation" and data["error"] is None
    assert data["variables"]["VLLM_BATCH_INVARIANT"] is None
    assert data["candidates"] == [
        {"backend": "emulation", "kernel": "EmulationNvFp4LinearKernel", "status": "selected", "reason": None}
    ]


def test_kernel_constructor_refuses_unsupported_platform() -> None:
    cls = NVFP4_BACKENDS["fbgemm"]
    with pytest.raises(ValueError, match="FbgemmNvFp4LinearKernel cannot be built: fbgemm needs"):
        cls(CONFIG, H100)


def test_closest_name_matches_case_insensitively() -> None:
    from kernels.linear.select import closest_name

    known = ["FlashInferCutlassNvFp4LinearKernel", "CublasLtNvFp4LinearKernel"]
    assert closest_name("flashinfercutlassnvfp4linearkernel", known) == known[0]
    assert closest_name("cublas", known) == known[1]
    assert closest_name("anything", []) is None


def test_closest_name_considers_names_sorting_after_the_typo() -> None:
    from kernels.linear.select import closest_name

    # the right suggestion sorts after the typo ('e' > 'a'): it must still be found
    assert closest_name("EmulationNvFp4LinearKernal", ["TritonX", "EmulationNvFp4LinearKernel"]) == (
        "EmulationNvFp4LinearKernel"
    )
