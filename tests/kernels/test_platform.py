"""The platform seam: capability helpers, overrides, detection without caching."""

from __future__ import annotations

import threading

import pytest
import torch

from kernels import platform as plat
from kernels.platform import Platform, current_platform, detect_platform, use_platform

B200 = Platform("B200", "cuda", (10, 0), (12, 9), frozenset({"flashinfer"}))
RTX5090 = Platform("RTX 5090", "cuda", (12, 0), (12, 9))
H100 = Platform("H100", "cuda", (9, 0), (12, 4))


def test_has_capability_is_greater_or_equal() -> None:
    assert H100.has_capability(8, 0) and H100.has_capability(9, 0)
    assert not H100.has_capability(10, 0)
    assert RTX5090.has_capability(10, 0)  # which is exactly why family checks exist


def test_is_family_separates_sm100_from_sm120() -> None:
    assert B200.is_family(10) and not B200.is_family(12)
    assert RTX5090.is_family(12) and not RTX5090.is_family(10)
    cpu = Platform("cpu", "cpu")
    assert not cpu.is_family(10) and not cpu.has_capability(0, 0)


def test_platform_validation() -> None:
    with pytest.raises(ValueError, match="needs a capability"):
        Platform("x", "cuda")
    with pytest.raises(ValueError, match="has no capability"):
        Platform("x", "cpu", (9, 0))
    with pytest.raises(ValueError, match="device_type"):
        Platform("x", "rocm", (9, 0))  # type: ignore[arg-type]
    assert Platform("x", "cpu", packages=["triton"]).packages == frozenset({"triton"})


def test_labels() -> None:
    assert B200.sm == "sm_100" and Platform("c", "cpu").sm == "cpu"
    assert "flashinfer" in B200.describe() and "12.9" in B200.describe()


def test_use_platform_nests_and_restores() -> None:
    real = current_platform()
    with use_platform(B200):
        assert current_platform() is B200
        with use_platform(H100):
            assert current_platform() is H100
        assert current_platform() is B200
    assert current_platform() == real


def test_use_platform_restores_on_error() -> None:
    with pytest.raises(RuntimeError):
        with use_platform(B200):
            raise RuntimeError("boom")
    assert current_platform() != B200


def test_use_platform_rejects_non_platforms() -> None:
    with pytest.raises(TypeError, match="expects a Platform"):
        with use_platform("b200"):  # type: ignore[arg-type]
            pass


def test_overrides_are_per_thread() -> None:
    seen: dict[str, str] = {}
    inside = threading.Event()
    release = threading.Event()

    def worker() -> None:
        seen["worker-before"] = current_platform().name
        with use_platform(H100):
            inside.set()
            release.wait(5)
            seen["worker-inside"] = current_platform().name

    with use_platform(B200):
        t = threading.Thread(target=worker)
        t.start()
        inside.wait(5)
        seen["main-while-worker-overrides"] = current_platform().name
        release.set()
        t.join(5)
    assert seen["worker-inside"] == "H100"
    assert seen["main-while-worker-overrides"] == "B200"
    assert seen["worker-before"] != "B200"  # the main thread's override does not leak in


def test_detection_reads_the_machine_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    first = detect_platform()
    assert first.device_type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert first.torch_version >= (2, 8)
    monkeypatch.setattr(
        plat.MachineProbes, "importable", lambda self, names: frozenset({"fbgemm_gpu"})
    )
    assert detect_platform().packages == frozenset({"fbgemm_gpu"})  # no stale cache


def test_detection_sees_the_interpreter_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert detect_platform().triton_interpret
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert not detect_platform().triton_interpret
