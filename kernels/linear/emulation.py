"""``emulation``: NVFP4 linear in pure torch, on any device. The reference and last resort.

W4A4: each activation row is quantized with the *static* input global scale
and dequantized (row-local, so rows never see each other), the weight is
dequantized exactly as the format defines (multiplying by a checkpoint's
stored decode factor where it has one, :class:`~kernels.linear.base.NvFp4LinearLayer`),
and the product runs in float32.
Weight-only (W4A16) layers skip the activation round trip.

Batch invariance: the float32 matmul is always fed tiles of exactly
:data:`ROW_TILE` rows (the last tile zero-padded), so every GEMM call has the
same shape whatever M is. A BLAS picks its algorithm (blocking, split-K) from
the shape, so row ``i`` always goes through the same reduction order and its
result is bitwise the same for every batch size.
"""

from __future__ import annotations

import torch

from kernels.linear.base import NvFp4LinearKernel
from kernels.linear.config import Verdict
from kernels.linear.layer import NvFp4LinearLayer
from kernels.nvfp4 import format as fmt
from kernels.platform import Platform

__all__ = ["EmulationNvFp4LinearKernel", "ROW_TILE"]

#: rows per matmul call; fixed so that the GEMM shape never depends on M.
ROW_TILE = 32


class EmulationNvFp4LinearKernel(NvFp4LinearKernel):
    """Quantize-dequantize in torch, float32 matmul in fixed row tiles."""

    name = "emulation"
    batch_invariant = True
    supports_weight_only = True
    act_dtypes = (torch.bfloat16, torch.float16, torch.float32)

    @classmethod
    def is_supported(cls, platform: Platform | None = None) -> Verdict:
        # Pure torch: runs wherever torch runs (the last-resort fallback).
        return True, None

    def process_weights(self, layer: NvFp4LinearLayer) -> None:
        # The E2M1 table lives on the weight's device from now on: building or
        # moving it at forward time is illegal during CUDA-graph capture.
        layer.prepared["lut"] = fmt.e2m1_lut(layer.weight.device)
        layer.processed_by = self.name

    def _apply(
        self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        lut = layer.prepared["lut"]
        w = fmt.dequantize_raw(
            layer.weight,
            layer.weight_scale,
            layer.weight_global_scale,
            torch.float32,
            lut=lut,
            decode_scale=layer.weight_decode_scale,
        )
        if layer.input_global_scale is None:
            a = x2d.float()
        else:
            packed, scale = fmt.quantize_raw(x2d, layer.input_global_scale)
            a = fmt.dequantize_raw(
                packed,
                scale,
                layer.input_global_scale,
                torch.float32,
                lut=lut,
                decode_scale=layer.input_decode_scale,
            )
        out = tiled_matmul(a, w.t())
        if bias is not None:
            out = out + bias.float()
        return out.to(x2d.dtype)


def tiled_matmul(a: torch.Tensor, b: torch.Tensor, row_tile: int = ROW_TILE) -> torch.Tensor:
    """``a [M, K] @ b [K, N]`` in calls of exactly ``row_tile`` rows (batch invariant)."""
    m = a.shape[0]
    tiles = max(1, -(-m // row_tile))
    padded = a.new_zeros((tiles * row_tile, a.shape[1]))
    padded[:m] = a
    out = a.new_empty((tiles * row_tile, b.shape[1]))
    for t in range(tiles):
        rows = slice(t * row_tile, (t + 1) * row_tile)
        torch.mm(padded[rows], b, out=out[rows])
    return out[:m]
