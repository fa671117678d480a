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

from kernels.linear._flashinfer import FlashInferNvFp4LinearKernel

__all__ = ["FlashInferTrtllmNvFp4LinearKernel"]


class FlashInferTrtllmNvFp4LinearKernel(FlashInferNvFp4LinearKernel):
    """W4A4 through ``flashinfer.mm_fp4(..., backend="trtllm")``."""

    name = "flashinfer-trtllm"
    # trtllm-gen kernels exist for sm_100/sm_103 only; FlashInfer's tests skip
    # trtllm on SM110/120/121.
    SUPPORTED_FAMILIES = (10,)
    MIN_CUDA = (12, 8)
    MM_FP4_BACKEND = "trtllm"
    SHUFFLE_WEIGHTS = True
    #: FlashInfer's trtllm FP4 GEMM writes bf16 only (its documented requirement)
    act_dtypes = (torch.bfloat16,)
