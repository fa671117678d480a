"""``flashinfer-trtllm``: FlashInfer's ``mm_fp4`` with ``backend="trtllm"``.

Support rule (data below): FlashInfer installed, CUDA >= 12.8, capability
family (10,).

Weights: padded to 128 rows and K to 64, rows shuffled for trtllm-gen's
128-row epilogue tile (``shuffle_matrix_a``) and the linear block scales
shuffled the same way, then swizzled to 128x4 (``shuffle_matrix_sf_a``).
Activations: ``flashinfer.fp4_quantize`` in the 128x4 layout at every batch
size (see :mod:`kernels.linear._flashinfer`).

Implementable layers: bf16 activations only. FlashInfer's trtllm requirement
check raises for any other ``out_dtype`` ("Only torch.bfloat16 is supported
for TRTLLM FP4 GEMM operations"; ``mm_fp4`` docstring: "When
``backend="trtllm"``, only ``bf16`` is supported").
"""

from __future__ import annotations

import torch

from kernels.linear import _flashinfer
from kernels.linear.base import NvFp4LinearKernel, NvFp4LinearLayer, Verdict, requirement_verdict
from kernels.platform import Platform, current_platform

__all__ = ["FlashInferTrtllmNvFp4LinearKernel"]


class FlashInferTrtllmNvFp4LinearKernel(NvFp4LinearKernel):
    """W4A4 through ``flashinfer.mm_fp4(..., backend="trtllm")``."""

    name = "flashinfer-trtllm"
    SUPPORTED_FAMILIES = (10,)
    MIN_CUDA = (12, 8)
    #: FlashInfer's trtllm FP4 GEMM writes bf16 only (its documented requirement)
    act_dtypes = (torch.bfloat16,)
    #: the ``backend=`` value passed to ``flashinfer.mm_fp4``
    MM_FP4_BACKEND = "trtllm"

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
        _flashinfer.process_weights(self, layer, shuffle=True)

    def _apply(
        self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        return _flashinfer.apply_mm_fp4(self, self.MM_FP4_BACKEND, layer, x2d, bias)
