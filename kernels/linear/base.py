"""The NVFP4 linear-kernel interface: one backend's base class and its support rules.

Each backend is one subclass in its own file, with its support rule written
next to it as data (capability families, CUDA version, package). The layer
(:mod:`kernels.linear.layer`) and its config (:mod:`kernels.linear.config`)
live beside it.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

import torch

from kernels.errors import FormatError
from kernels.linear.config import NvFp4LinearConfig, Verdict
from kernels.linear.layer import NvFp4LinearLayer, check_bias
from kernels.nvfp4 import format as fmt
from kernels.platform import Platform, current_platform

__all__ = [
    "FAMILY_LABELS",
    "LibraryNvFp4LinearKernel",
    "NvFp4LinearKernel",
    "requirement_verdict",
]


# --- support rules as data -----------------------------------------------------


def requirement_verdict(
    backend: str,
    platform: Platform,
    *,
    families: tuple[int, ...] | None = None,
    min_capability: tuple[int, int] | None = None,
    min_cuda: tuple[int, int] | None = None,
    packages: tuple[str, ...] = (),
    needs_fp4_dtype: bool = False,
    family_labels: Mapping[int, str] | None = None,
) -> Verdict:
    """Check a backend's declared requirements against ``platform``.

    ``families`` is an *exact* set of capability majors (10 = B200/B300,
    12 = RTX 50 / GB10): never a ``>=`` comparison, so sm120 cannot pass a rule
    written for sm100. Returns ``(ok, reason)``; the reason names the backend,
    the requirement and what the platform has.
    """
    if not platform.is_cuda:
        return False, f"{backend} needs a CUDA GPU, platform is {platform.name} (cpu)"
    if families is not None and not any(platform.is_family(f) for f in families):
        labels = family_labels or {}
        want = " or ".join(labels.get(f, f"sm_{f}x") for f in families)
        return False, f"{backend} needs {want}, platform is {platform.sm}"
    if min_capability is not None and not platform.has_capability(*min_capability):
        return (
            False,
            f"{backend} needs compute capability >= {min_capability[0]}.{min_capability[1]}, "
            f"platform is {platform.sm}",
        )
    if min_cuda is not None and not platform.has_cuda_version(*min_cuda):
        have = ".".join(map(str, platform.cuda_version)) if platform.cuda_version else "none"
        return False, f"{backend} needs CUDA >= {min_cuda[0]}.{min_cuda[1]}, platform has {have}"
    for package in packages:
        if not platform.has_package(package):
            return False, f"{backend} needs the {package} package, which is not installed"
    if needs_fp4_dtype and not platform.has_fp4_dtype:
        return False, f"{backend} needs torch.float4_e2m1fn_x2 (torch >= 2.8)"
    return True, None


# --- the kernel interface ------------------------------------------------------


class NvFp4LinearKernel(abc.ABC):
    """One NVFP4 GEMM backend.

    Subclasses set :attr:`name` (the registry key) and implement
    :meth:`is_supported`, :meth:`process_weights` and :meth:`_apply`.
    """

    #: registry name, also the value of ``VLLM_NVFP4_GEMM_BACKEND``
    name: ClassVar[str]
    #: row i of the output is bitwise independent of the number of rows
    batch_invariant: ClassVar[bool] = False
    #: supports weight-only (W4A16) checkpoints
    supports_weight_only: ClassVar[bool] = False
    #: activation/output dtypes the backend accepts
    act_dtypes: ClassVar[tuple[torch.dtype, ...]] = (torch.bfloat16, torch.float16)

    def __init__(self, config: NvFp4LinearConfig, platform: Platform | None = None) -> None:
        platform = platform or current_platform()
        for ok, reason in (self.is_supported(platform), self.can_implement(config)):
            if not ok:
                raise ValueError(f"{type(self).__name__} cannot be built: {reason}")
        self.config = config
        self.platform = platform

    # --- support --------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def is_supported(cls, platform: Platform | None = None) -> Verdict:
        """Can this backend run on ``platform`` (default: the current one)?"""

    @classmethod
    def can_implement(cls, config: NvFp4LinearConfig) -> Verdict:
        """Can this backend implement a layer of this shape, dtype and scheme?"""
        if config.in_features % fmt.BLOCK_SIZE:
            return False, (
                f"{cls.name} needs in_features to be a multiple of {fmt.BLOCK_SIZE}, "
                f"got {config.in_features}"
            )
        if config.weight_only and not cls.supports_weight_only:
            return False, f"{cls.name} needs a W4A4 checkpoint (static input scale); layer is W4A16"
        if config.act_dtype not in cls.act_dtypes:
            names = ", ".join(str(d).removeprefix("torch.") for d in cls.act_dtypes)
            return False, (
                f"{cls.name} takes {names} activations, layer has "
                f"{str(config.act_dtype).removeprefix('torch.')}"
            )
        return True, None

    # --- weights and forward ----------------------------------------------------
    @abc.abstractmethod
    def process_weights(self, layer: NvFp4LinearLayer) -> None:
        """Derive this backend's layout into ``layer.prepared`` (once, after loading)."""

    def apply(
        self, layer: NvFp4LinearLayer, x: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x [..., K] -> [..., N]`` in ``config.act_dtype``; ``bias`` overrides ``layer.bias``.

        Validates everything before any kernel is launched, the same way for
        every backend. Inference only: no gradient flows through a kernel, so
        an input that requires grad is accepted and the output does not
        require grad (as for any custom GEMM kernel without a backward).
        """
        self.check_input(layer, x)
        b = layer.bias if bias is None else bias
        if b is not None:
            check_bias(b, layer.out_features, layer.weight.device)
        lead = x.shape[:-1]
        with torch.no_grad():
            x2d = x.detach().reshape(-1, x.shape[-1])
            out = self._apply(layer, x2d, None if b is None else b.detach())
        return out.reshape(*lead, layer.out_features)

    @abc.abstractmethod
    def _apply(
        self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        """``x2d [M, K]`` (validated) -> ``[M, N]``."""

    def check_input(self, layer: NvFp4LinearLayer, x: torch.Tensor) -> None:
        if layer.processed_by != self.name:
            raise ValueError(
                f"layer was prepared by {layer.processed_by!r}, not {self.name!r}: "
                f"call {type(self).__name__}.process_weights(layer) first"
            )
        if not isinstance(x, torch.Tensor):
            raise FormatError(f"x must be a torch.Tensor, got {type(x).__name__}")
        fmt.check_materialized(x, "x")
        fmt.check_materialized(x, "x")
        if x.layout != torch.strided:
            raise FormatError(f"x must be a dense (strided) tensor, got layout {x.layout}")
        if x.dim() < 1 or x.shape[-1] != layer.in_features:
            raise FormatError(
                f"x has shape {tuple(x.shape)}, expected [..., {layer.in_features}] (K of the layer)"
            )
        if x.dtype != self.config.act_dtype:
            raise FormatError(
                f"x has dtype {x.dtype}, the layer was configured for {self.config.act_dtype}"
            )
        if x.device != layer.weight.device:
            raise FormatError(f"x is on {x.device}, the layer's weight on {layer.weight.device}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.describe()})"


#: How support reasons name the capability families.
FAMILY_LABELS = {10: "sm_10x (B200/B300)", 12: "sm_12x (RTX 50/GB10)"}


class LibraryNvFp4LinearKernel(NvFp4LinearKernel):
    """A backend whose support rule is entirely class data (the Blackwell libraries).

    Each subclass states, next to its code, the exact capability families it
    runs on, the CUDA version and the packages it needs; :meth:`is_supported`
    checks them with :func:`requirement_verdict`.
    """

    SUPPORTED_FAMILIES: ClassVar[tuple[int, ...]]
    MIN_CUDA: ClassVar[tuple[int, int]] = (12, 8)
    REQUIRED_PACKAGES: ClassVar[tuple[str, ...]] = ()
    NEEDS_FP4_DTYPE: ClassVar[bool] = False

    @classmethod
    def is_supported(cls, platform: Platform | None = None) -> Verdict:
        return requirement_verdict(
            cls.name,
            platform or current_platform(),
            families=cls.SUPPORTED_FAMILIES,
            min_cuda=cls.MIN_CUDA,
            packages=cls.REQUIRED_PACKAGES,
            needs_fp4_dtype=cls.NEEDS_FP4_DTYPE,
            family_labels=FAMILY_LABELS,
        )
