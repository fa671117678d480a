"""``flashinfer-trtllm``: FlashInfer's ``mm_fp4`` with ``backend="trtllm"``.

Support rule (data below): FlashInfer installed, CUDA >= 12.8, capability
family (10,).
"""

from __future__ import annotations

import torch

from kernels.linear.base import NvFp4LinearKernel, NvFp4LinearLayer, Verdict, requirement_verdict
from kernels.platform import Platform, current_platform

__all__ = ["FlashInferTrtllmNvFp4LinearKernel"]


class FlashInferTrtllmNvFp4LinearKernel(NvFp4LinearKernel):
    """W4A4 through ``flashinfer.mm_fp4(..., backend="trtllm")``."""

    name = "flashinfer-trtllm"
    SUPPORTED_FAMILIES = (10,)
    MIN_CUDA = (12, 8)

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
        raise NotImplementedError

    def _apply(self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError
