"""Environment snapshot: spellings, errors that name the variable, no caching."""

from __future__ import annotations

import pytest

from kernels import envs
from kernels.errors import InvalidEnvironmentError, NvFp4Error


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "On"])
def test_true_spellings(value: str) -> None:
    assert envs.read_envs({"VLLM_USE_FBGEMM": value}).use_fbgemm


@pytest.mark.parametrize("value", ["0", "false", "No", "off", ""])
def test_false_spellings(value: str) -> None:
    assert not envs.read_envs({"VLLM_BATCH_INVARIANT": value}).batch_invariant


def test_unset_is_false_and_none() -> None:
    snap = envs.read_envs({})
    assert not (snap.batch_invariant or snap.use_fbgemm or snap.use_ct_emulations)
    assert snap.gemm_backend is None and snap.disabled_kernels == frozenset()
    assert snap.raw == ()


@pytest.mark.parametrize("name", ["VLLM_BATCH_INVARIANT", "VLLM_USE_FBGEMM", "VLLM_USE_NVFP4_CT_EMULATIONS"])
def test_invalid_boolean_names_variable_value_and_spellings(name: str) -> None:
    with pytest.raises(InvalidEnvironmentError) as info:
        envs.read_envs({name: "yes please"})
    message = str(info.value)
    assert name in message and "'yes please'" in message
    for spelling in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        assert spelling in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, NvFp4Error)


def test_backend_name_and_disabled_list() -> None:
    snap = envs.read_envs(
        {"VLLM_NVFP4_GEMM_BACKEND": " cublaslt ", "VLLM_DISABLED_KERNELS": "A, B,,C "}
    )
    assert snap.gemm_backend == "cublaslt"
    assert snap.disabled_kernels == frozenset({"A", "B", "C"})
    assert envs.read_envs({"VLLM_NVFP4_GEMM_BACKEND": "  "}).gemm_backend is None


def test_raw_values_are_kept_in_precedence_order() -> None:
    snap = envs.read_envs({"VLLM_USE_FBGEMM": "1", "VLLM_BATCH_INVARIANT": "0", "OTHER": "x"})
    assert snap.raw == (("VLLM_BATCH_INVARIANT", "0"), ("VLLM_USE_FBGEMM", "1"))
    assert snap.raw_value("VLLM_USE_FBGEMM") == "1" and snap.raw_value("OTHER") is None


def test_os_environ_is_read_at_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not envs.read_envs().use_fbgemm
    monkeypatch.setenv("VLLM_USE_FBGEMM", "1")
    assert envs.read_envs().use_fbgemm
    monkeypatch.setenv("VLLM_USE_FBGEMM", "0")
    assert not envs.read_envs().use_fbgemm
