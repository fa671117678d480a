"""``cublaslt``: NVFP4 x NVFP4 GEMM through cuBLASLt via ``torch._scaled_mm``.

Support rule (data below): CUDA capability family 10.x (B200/B300) or 12.x
(RTX 50 / GB10), CUDA >= 12.8, and a torch with ``torch.float4_e2m1fn_x2``.
Facts: cuBLAS 12.8 introduced block-scaled FP4 GEMMs (``CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3``)
for sm100 and sm120; torch wired FP4 operands into ``_scaled_mm`` for torch 2.8
(float4_e2m1fn_x2 dtype); on sm90 the same call raises CUBLAS_STATUS_NOT_SUPPORTED.
"""

from __future__ import annotations

import torch

from kernels.linear.base import NvFp4LinearKernel, NvFp4LinearLayer, Verdict, requirement_verdict
from kernels.platform import Platform, current_platform

__all__ = ["CublasLtNvFp4LinearKernel"]


class CublasLtNvFp4LinearKernel(NvFp4LinearKernel):
    """W4A4 through ``torch._scaled_mm`` with swizzled E4M3 block scales."""

    name = "cublaslt"
    SUPPORTED_FAMILIES = (10, 12)
    MIN_CUDA = (12, 8)

    @classmethod
    def is_supported(cls, platform: Platform | None = None) -> Verdict:
        return requirement_verdict(
            cls.name,
            platform or current_platform(),
            families=cls.SUPPORTED_FAMILIES,
            min_cuda=cls.MIN_CUDA,
            needs_fp4_dtype=True,
            family_labels={10: "sm_10x (B200/B300)", 12: "sm_12x (RTX 50/GB10)"},
        )

    def process_weights(self, layer: NvFp4LinearLayer) -> None:
        raise NotImplementedError

    def _apply(self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError
