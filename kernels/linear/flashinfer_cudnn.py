"""``flashinfer-cudnn``: FlashInfer's ``mm_fp4`` with ``backend="cudnn"``.

Support rule (data below): FlashInfer installed, CUDA >= 12.8, capability
family (10, 12).

Weights: padded (N to 32, K to 64) with 128x4 swizzled block scales, as for
the cutlass backend (FlashInfer documents the same preparation for both);
activations quantized by ``flashinfer.fp4_quantize`` (see
:mod:`kernels.linear._flashinfer`).
"""

from __future__ import annotations

from kernels.linear._flashinfer import FlashInferNvFp4LinearKernel

__all__ = ["FlashInferCudnnNvFp4LinearKernel"]


class FlashInferCudnnNvFp4LinearKernel(FlashInferNvFp4LinearKernel):
    """W4A4 through ``flashinfer.mm_fp4(..., backend="cudnn")``."""

    name = "flashinfer-cudnn"
    # cuDNN's block-scaled FP4 GEMM runs on the sm_10x and sm_12x families.
    SUPPORTED_FAMILIES = (10, 12)
    MIN_CUDA = (12, 8)
    MM_FP4_BACKEND = "cudnn"
