"""vLLM's platform, replaced by a fake one before vLLM's kernels are imported.

vLLM modules bind ``vllm.platforms.current_platform`` when they are imported.
:func:`install` puts one instance of a subclass of vLLM's own ``Platform``
into ``vllm.platforms._current_platform`` *before* the kernels package is
imported, reporting ``UNSPECIFIED`` during the import: a platform that says
CUDA at import time makes import-time code call compiled CUDA ops (and, in
some releases, import ``vllm.vllm_flash_attn``), which fails on a CPU. After
the import the same object is switched per cell by :func:`set_device`; every
module that bound it sees the change. Its methods are vLLM's
(``has_device_capability``, ``is_device_capability_family``, ...); only the
device kind and the capability are ours.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["DEVICE_TYPES", "check_capability", "device_enum", "install", "set_device"]

#: Device kinds a cell can ask for; they map to vLLM's ``PlatformEnum`` members.
DEVICE_TYPES = ("cuda", "rocm", "cpu")

#: The fake platform installed into this process's vLLM (one per process).
_PLATFORM: Any = None


def _make() -> Any:
    """An instance of a fresh subclass of vLLM's ``Platform`` whose device kind and capability
    are class attributes (vLLM's capability helpers are classmethods that read them)."""
    from vllm.platforms.interface import DeviceCapability, Platform, PlatformEnum

    class FakeGpuPlatform(Platform):
        """vLLM platform for selection checks: kind and capability set per cell."""

        _enum = PlatformEnum.UNSPECIFIED
        device_name = "fake"
        device_type = "cpu"
        dispatch_key = "CPU"
        _capability: DeviceCapability | None = None

        @classmethod
        def get_device_capability(cls, device_id: int = 0) -> DeviceCapability | None:
            return cls._capability

        @classmethod
        def get_device_name(cls, device_id: int = 0) -> str:
            return str(cls.device_name)

    FakeGpuPlatform.__module__ = __name__
    return FakeGpuPlatform()


def install(kernels_module: str) -> tuple[Any, Any]:
    """Put the fake platform in place and import ``kernels_module`` (once per process).

    Returns ``(platform, module)``. Raises ``RuntimeError`` when vLLM's platform was resolved,
    or the kernels module imported, before the fake could be put in place (modules that
    bound the real platform would not see the fake one), or when the module did not bind it.
    """
    global _PLATFORM
    import vllm.platforms as platforms

    if _PLATFORM is None:
        resolved = platforms._current_platform
        if resolved is not None or kernels_module in sys.modules:
            raise RuntimeError(
                f"vLLM's platform was resolved ({type(resolved).__name__}) or {kernels_module} "
                "was imported before the harness put its fake platform in place; modules that "
                "bound the real platform would not see the fake one. Load the runtime first in "
                "the process."
            )
        _PLATFORM = _make()
        platforms._current_platform = _PLATFORM
    elif platforms._current_platform is not _PLATFORM:
        raise RuntimeError("vLLM's current platform was replaced after the runtime was loaded")
    module = importlib.import_module(kernels_module)
    if getattr(module, "current_platform", None) is not _PLATFORM:
        raise RuntimeError(f"{kernels_module} did not bind the fake platform")
    return _PLATFORM, module


def check_capability(capability: tuple[int, int]) -> tuple[int, int]:
    if (
        not isinstance(capability, tuple)
        or len(capability) != 2
        or not all(isinstance(part, int) for part in capability)
        or not 0 <= capability[1] < 10
        or capability[0] < 0
    ):
        raise ValueError(
            f"capability must be (major, minor) with 0 <= minor < 10, got {capability!r}"
        )
    return capability


def set_device(platform: Any, device_type: str, capability: tuple[int, int] | None) -> None:
    """Make the fake platform a ``device_type`` device with ``capability`` (``None`` for
    none, required for ``"cpu"``)."""
    from vllm.platforms.interface import DeviceCapability

    if device_type not in DEVICE_TYPES:
        raise ValueError(f"unknown device type {device_type!r}; expected one of {DEVICE_TYPES}")
    cls = type(platform)
    if capability is None:
        cls._capability = None
    else:
        if device_type == "cpu":
            raise ValueError("a cpu platform has no compute capability; pass None")
        cls._capability = DeviceCapability(*check_capability(capability))
    cls._enum = device_enum(device_type)
    cls.device_type = "cpu" if device_type == "cpu" else "cuda"
    cls.device_name = device_type
    cls.dispatch_key = "CPU" if device_type == "cpu" else "CUDA"


def device_enum(device_type: str) -> Any:
    """vLLM's ``PlatformEnum`` member of a device kind."""
    from vllm.platforms.interface import PlatformEnum

    return {"cuda": PlatformEnum.CUDA, "rocm": PlatformEnum.ROCM, "cpu": PlatformEnum.CPU}[
        device_type
    ]
