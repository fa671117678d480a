"""Environment snapshot: spellings, errors that name the variable, no caching."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType

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


# --- environ must be a mapping of str to str ----------------------------------------------------


class _ReadOnly(Mapping[str, str]):
    """A mapping that is not a dict (as a config object's view may be)."""

    def __init__(self, data: dict[str, str]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class _Str(str):
    pass


@pytest.mark.parametrize(
    "environ",
    [
        {"VLLM_BATCH_INVARIANT": "1"},
        MappingProxyType({"VLLM_BATCH_INVARIANT": "1"}),
        _ReadOnly({"VLLM_BATCH_INVARIANT": "1"}),
        {_Str("VLLM_BATCH_INVARIANT"): _Str("1"), "HOME": "/root"},
    ],
    ids=["dict", "mappingproxy", "mapping", "str-subclasses"],
)
def test_any_mapping_of_str_to_str_is_read(environ) -> None:
    assert envs.read_envs(environ).batch_invariant
    assert envs.check_environ(environ) is environ


def test_os_environ_is_accepted_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_USE_FBGEMM", "1")
    assert envs.check_environ(os.environ) is os.environ
    assert envs.read_envs(os.environ).use_fbgemm and envs.read_envs().use_fbgemm
    copy = dict(os.environ)  # equal to os.environ, and still the mapping that was given
    assert envs.check_environ(copy) is copy


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ([("VLLM_BATCH_INVARIANT", "1")],
         "environ must be a mapping of str to str (os.environ or a dict), got list "
         "[('VLLM_BATCH_INVARIANT', '1')]"),
        ("VLLM_BATCH_INVARIANT=1",
         "environ must be a mapping of str to str (os.environ or a dict), got str "
         "'VLLM_BATCH_INVARIANT=1'"),
        (42, "environ must be a mapping of str to str (os.environ or a dict), got int 42"),
        ({"VLLM_BATCH_INVARIANT": 1}, "environ['VLLM_BATCH_INVARIANT'] must be a str, got int 1"),
        ({"VLLM_USE_FBGEMM": True}, "environ['VLLM_USE_FBGEMM'] must be a str, got bool True"),
        ({"VLLM_DISABLED_KERNELS": None},
         "environ['VLLM_DISABLED_KERNELS'] must be a str, got NoneType None "
         "(to unset a variable, leave it out)"),
        ({"HOME": b"/root"}, "environ['HOME'] must be a str, got bytes b'/root'"),
        ({b"VLLM_BATCH_INVARIANT": b"1"},
         "environ keys must be str, got bytes b'VLLM_BATCH_INVARIANT': pass os.environ, not "
         "os.environb (bytes keys would hide every variable)"),
        ({3: "x"}, "environ keys must be str, got int 3"),
        ({None: "x"}, "environ keys must be str, got NoneType None"),
    ],
    ids=["list", "str", "int", "int-value", "bool-value", "none-value", "bytes-value",
         "bytes-key", "int-key", "none-key"],
)
def test_other_shapes_are_refused_with_what_is_wrong(environ, message: str) -> None:
    with pytest.raises(InvalidEnvironmentError) as info:
        envs.read_envs(environ)
    assert str(info.value) == message
    assert isinstance(info.value, (ValueError, NvFp4Error))


def test_os_environb_is_refused_not_read_as_empty() -> None:
    if not hasattr(os, "environb"):
        pytest.skip("os.environb exists on POSIX only")
    with pytest.raises(InvalidEnvironmentError, match="not os.environb"):
        envs.read_envs(os.environb)  # type: ignore[arg-type]


def test_the_selection_entry_points_refuse_a_bad_environ_the_same_way() -> None:
    from kernels.linear.config import NvFp4LinearConfig
    from kernels.linear.select import decide, init_nvfp4_linear_kernel
    from kernels.platform import Platform

    config = NvFp4LinearConfig(64, 32)
    platform = Platform("H100", "cuda", (9, 0), (12, 9), frozenset({"triton"}), triton_version=(3, 6))
    for call in (
        lambda e: decide(config, platform, e),
        lambda e: init_nvfp4_linear_kernel(config, platform=platform, environ=e),
    ):
        with pytest.raises(InvalidEnvironmentError, match="got list"):
            call([("VLLM_BATCH_INVARIANT", "1")])
        with pytest.raises(InvalidEnvironmentError, match="not os.environb"):
            call({b"VLLM_BATCH_INVARIANT": b"1"})
        with pytest.raises(InvalidEnvironmentError, match=r"environ\['VLLM_DISABLED_KERNELS'\]"):
            call({"VLLM_DISABLED_KERNELS": None})


def test_a_huge_value_is_quoted_in_200_characters() -> None:
    with pytest.raises(InvalidEnvironmentError) as info:
        envs.read_envs({"VLLM_BATCH_INVARIANT": "x" * 1_000_000})
    message = str(info.value)
    assert len(message) < 500
    assert "... (1000000 characters) is not a boolean" in message
