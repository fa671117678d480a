"""``cublaslt``: NVFP4 x NVFP4 GEMM through cuBLASLt via PyTorch's scaled matmul.

Support rule (data below): CUDA capability family 10.x (B200/B300) or 12.x
(RTX 50 / GB10), CUDA >= 12.8, and a torch with ``torch.float4_e2m1fn_x2``.
Facts: cuBLAS 12.8 introduced block-scaled FP4 GEMMs (``CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3``)
for sm100 and sm120; torch wired FP4 operands into ``_scaled_mm`` for torch 2.8
(float4_e2m1fn_x2 dtype); on sm90 the same call raises CUBLAS_STATUS_NOT_SUPPORTED.

The call (PyTorch ``aten/src/ATen/native/cuda/ScaledBlas.cpp``, ``test/test_scaled_matmul_cuda.py``):

* ``torch.nn.functional.scaled_mm`` (public from torch 2.10) with, per
  operand, the two-level NVFP4 recipe ``[BlockWise1x16, TensorWise]``,
  swizzles ``[SWIZZLE_32_4_4, NO_SWIZZLE]`` and scales ``[block_e4m3,
  decode_fp32]``. The two FP32 *decode* factors (a checkpoint's stored ones
  as stored, else the reciprocals of our multipliers:
  ``NvFp4LinearLayer.decode_scales``) are multiplied into cuBLASLt's alpha, so
  the global scales are applied inside the GEMM.
* otherwise ``torch._scaled_mm`` (torch >= 2.8): block scales only; we ask
  for a float32 result (the unscaled FP4 product reaches ``(6 * 448)**2 * K``,
  beyond float16) and apply ``alpha`` (``NvFp4LinearLayer.output_scale``)
  afterwards, as torchao's NVFP4 tensor does.

Operands: ``mat_a`` the activation codes ``[M, K/2]`` row-major, ``mat_b`` the
weight ``[K/2, N]`` column-major (the transpose of our ``[N, K/2]`` weight),
both viewed as ``float4_e2m1fn_x2``. Block scales in the 128x4 swizzled layout,
contiguous, with ``round_up(rows, 128) * round_up(K/16, 4)`` elements: the row
padding to 128 is also what ``_scaled_mm`` needs for M < 128 (vLLM #48491).
PyTorch also requires K and N to be multiples of 16; the weight is padded to
32 in both (the CUTLASS-style layout) and the output's padded columns sliced.
Bias is added after the GEMM: the GEMM output has the padded N, and torchao
records CUBLAS_STATUS_INVALID_VALUE for bias combined with a tensor scale.
"""

from __future__ import annotations

import torch

from kernels.errors import BackendUnavailableError
from kernels.linear import _library
from kernels.linear.base import LibraryNvFp4LinearKernel
from kernels.linear.layer import NvFp4LinearLayer
from kernels.nvfp4 import format as fmt
from kernels.nvfp4 import layout

__all__ = ["CublasLtNvFp4LinearKernel", "scaled_mm_entry"]


def scaled_mm_entry() -> str:
    """Which PyTorch entry point the installed torch offers: ``"scaled_mm"`` or ``"_scaled_mm"``.

    Looked up at call time (tests replace these functions). Raises
    :class:`BackendUnavailableError` when torch has no FP4 dtype or neither call.
    """
    if not hasattr(torch, "float4_e2m1fn_x2"):
        raise BackendUnavailableError(
            f"cublaslt needs torch.float4_e2m1fn_x2 (torch >= 2.8); torch {torch.__version__} lacks it"
        )
    functional = torch.nn.functional
    if all(hasattr(functional, n) for n in ("scaled_mm", "ScalingType", "SwizzleType")):
        return "scaled_mm"
    if hasattr(torch, "_scaled_mm"):
        return "_scaled_mm"
    raise BackendUnavailableError(
        f"cublaslt needs torch.nn.functional.scaled_mm or torch._scaled_mm; torch "
        f"{torch.__version__} has neither"
    )


class CublasLtNvFp4LinearKernel(LibraryNvFp4LinearKernel):
    """W4A4 through PyTorch's scaled matmul (cuBLASLt) with swizzled E4M3 block scales."""

    name = "cublaslt"
    SUPPORTED_FAMILIES = (10, 12)
    MIN_CUDA = (12, 8)
    NEEDS_FP4_DTYPE = True
    #: weight N and K padding (rows, FP4 elements); PyTorch needs multiples of 16
    WEIGHT_ALIGNMENT = 32

    def process_weights(self, layer: NvFp4LinearLayer) -> None:
        """Prepare ``weight`` (uint8 ``[N_pad, K_pad/2]``) and ``weight_scale`` (swizzled e4m3).

        ``N_pad``/``K_pad`` are N and K rounded up to 32; the swizzled scale is
        ``[round_up(N, 128), round_up(K/16, 4)]``, which is the size PyTorch
        expects for the padded weight too.
        """
        scaled_mm_entry()
        _library.check_w4a4_layer(self.name, self.config, layer)
        _library.store_prepared(self, layer, _library.pad_and_swizzle(layer, self.WEIGHT_ALIGNMENT))

    def _apply(
        self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        _library.require_cuda(self.name, x=x2d)
        entry = scaled_mm_entry()
        p = layer.prepared
        m, n = x2d.shape[0], layer.out_features
        if m == 0:
            return x2d.new_empty((0, n))
        # Activation: quantized here with the static input scale, rows padded by
        # the swizzle to 128 (cuBLASLt's scale tile), K padded like the weight.
        packed, scale = fmt.quantize_raw(x2d, p["input_global_scale"])
        a = layout.pad_activation(packed, p["pad_bytes"]).view(torch.float4_e2m1fn_x2)
        a_scale = layout.swizzle_scales(scale).reshape(-1)
        b = p["weight"].view(torch.float4_e2m1fn_x2).t()  # [K_pad/2, N_pad], column-major
        b_scale = p["weight_scale"].reshape(-1)
        if entry == "scaled_mm":
            functional = torch.nn.functional
            recipe = [functional.ScalingType.BlockWise1x16, functional.ScalingType.TensorWise]
            swizzle = [functional.SwizzleType.SWIZZLE_32_4_4, functional.SwizzleType.NO_SWIZZLE]
            out = functional.scaled_mm(
                a,
                b,
                scale_a=[a_scale, p["input_decode_scale"]],
                scale_recipe_a=recipe,
                scale_b=[b_scale, p["weight_decode_scale"]],
                scale_recipe_b=recipe,
                swizzle_a=swizzle,
                swizzle_b=swizzle,
                output_dtype=x2d.dtype,
            )
            out = out[:, :n]
            return out if bias is None else out + bias.to(out.dtype)
        out = torch._scaled_mm(a, b, a_scale, b_scale, out_dtype=torch.float32)
        out = out[:, :n] * p["alpha"]
        if bias is not None:
            out = out + bias.float()
        return out.to(x2d.dtype)
