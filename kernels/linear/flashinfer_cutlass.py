"""``flashinfer-cutlass``: FlashInfer's ``mm_fp4`` with ``backend="cutlass"``.

Support rule (data below): FlashInfer installed, CUDA >= 12.8, capability
family (10, 12).

Weights: padded (N to 32, K to 64) with 128x4 swizzled block scales;
activations quantized by ``flashinfer.fp4_quantize`` into the same layout
(see :mod:`kernels.linear._flashinfer` for the facts and the call).
"""

from __future__ import annotations

from kernels.linear._flashinfer import FlashInferNvFp4LinearKernel

__all__ = ["FlashInferCutlassNvFp4LinearKernel"]


class FlashInferCutlassNvFp4LinearKernel(FlashInferNvFp4LinearKernel):
    """W4A4 through ``flashinfer.mm_fp4(..., backend="cutlass")``."""

    name = "flashinfer-cutlass"
    # FlashInfer's ``mm_fp4`` cutlass backend is built for sm_100/103/110/120/121
    # (its ``@supported_compute_capability`` list); families 10 and 12 here.
    SUPPORTED_FAMILIES = (10, 12)
    MIN_CUDA = (12, 8)
    MM_FP4_BACKEND = "cutlass"
