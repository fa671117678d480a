"""``flashinfer-cudnn``: FlashInfer's ``mm_fp4`` with ``backend="cudnn"``.

Support rule (data below): FlashInfer installed, CUDA >= 12.8, capability
family (10, 12).

Weights: padded (N to 32, K to 64) with 128x4 swizzled block scales, as for
the cutlass backend (FlashInfer documents the same preparation for both);
activations quantized by ``flashinfer.fp4_quantize`` (see
:mod:`kernels.linear._flashinfer`).
"""

from __future__ import annotations

import torch

from kernels.linear import _flashinfer
from kernels.linear.base import NvFp4LinearKernel, NvFp4LinearLayer, Verdict, requirement_verdict
from kernels.platform import Platform, current_platform

__all__ = ["FlashInferCudnnNvFp4LinearKernel"]


class FlashInferCudnnNvFp4LinearKernel(NvFp4LinearKernel):
    """W4A4 through ``flashinfer.mm_fp4(..., backend="cudnn")``."""

    name = "flashinfer-cudnn"
    SUPPORTED_FAMILIES = (10, 12)
    MIN_CUDA = (12, 8)
    #: the ``backend=`` value passed to ``flashinfer.mm_fp4``
    MM_FP4_BACKEND = "cudnn"

    @classmethod
    def is_supported(cls, platform: Platform | None = None) -> Verdict:
        return requirement_verdict(
            cls.name,
            platform or current_platform(),
            families=cls.SUPPORTED_FAMILIES,
            min_cuda=cls.MIN_CUDA,
            packages=("flashinfer",),
            family_labels={10: "sm_10x (B200/B300)", 12: "sm_12x (RTX 50/GB10)"},
        )

    def process_weights(self, layer: NvFp4LinearLayer) -> None:
        _flashinfer.process_weights(self, layer, shuffle=False)

    def _apply(
        self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        return _flashinfer.apply_mm_fp4(self, self.MM_FP4_BACKEND, layer, x2d, bias)
