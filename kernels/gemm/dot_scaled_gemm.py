"""Batch-invariant NVFP4 x NVFP4 GEMM with ``tl.dot_scaled`` (Blackwell: sm100/sm103, sm120/sm121).

Computes, for activations quantized row-locally by
:func:`kernels.gemm.quantize.nvfp4_quantize` (codes ``A [M, K // 2]``, E4M3
scales ``SA [M, K // 16]``) and a weight prepared by
:func:`kernels.gemm.layout.pack_linear_weights` (``W [N_pad, K_pad // 2]``,
``SW [N_pad, K_pad // 16]``)::

    y[m, n] = alpha * sum_k e2m1(A[m, k]) SA[m, k // 16] * e2m1(W[n, k]) SW[n, k // 16]  (+ bias[n])

with ``alpha`` the product of the two decode factors
(``NvFp4LinearLayer.output_scale``). The block-scaled MMA (tcgen05 on sm100,
``mma.sync`` block-scale on sm120) takes the E2M1 codes and the block-16 E4M3
scales directly: ``tl.dot_scaled`` with ``"e2m1"`` operands and
``float8e4nv`` scales is NVFP4.

Orientation and reduction order are those of
:mod:`kernels.gemm.dequant_gemm` (swap-AB; ``split_k`` runs of K from
:class:`kernels.gemm.plan.GemmPlan`, each from zero, summed in order; the
shared float32 epilogue and split-K reduction kernel), so the batch-invariance
argument carries over. Bitwise agreement *with the Hopper path* is not
expected (different MMA hardware).

Status: compiled for sm100 and sm120 in the test suite, never run here on a
Blackwell GPU: unverified on real hardware.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.gemm.dequant_gemm import _program_tile, _write_output, launch_splitk_reduce
from kernels.gemm.layout import LinearWeights
from kernels.gemm.plan import GemmPlan, TileConfig

__all__ = ["nvfp4_dot_scaled_gemm"]


# -----------------------------------------------------------------------------
# One K split of one (weight tile, batch tile)
# -----------------------------------------------------------------------------


@triton.jit
def _split_partial_scaled(a_ptr, sa_ptr, w_ptr, sw_ptr, split, offs_m, offs_n, M, K,
                          stride_am, stride_sam, stride_wn, stride_swn,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                          STEPS_PER_SPLIT: tl.constexpr, NUM_STAGES: tl.constexpr):
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    m_mask = offs_m[:, None] < M
    offs_kb = tl.arange(0, BLOCK_K // 2)
    offs_ks = tl.arange(0, BLOCK_K // 16)
    first = split * STEPS_PER_SPLIT
    for step in tl.range(first, first + STEPS_PER_SPLIT, num_stages=NUM_STAGES):
        kb = step * (BLOCK_K // 2) + offs_kb
        ks = step * (BLOCK_K // 16) + offs_ks
        a = tl.load(a_ptr + offs_m.to(tl.int64)[:, None] * stride_am + kb[None, :],
                    mask=m_mask & (kb[None, :] < K // 2), other=0)
        sa = tl.load(sa_ptr + offs_m.to(tl.int64)[:, None] * stride_sam + ks[None, :],
                     mask=m_mask & (ks[None, :] < K // 16), other=0)
        w = tl.load(w_ptr + offs_n.to(tl.int64)[:, None] * stride_wn + kb[None, :])
        sw = tl.load(sw_ptr + offs_n.to(tl.int64)[:, None] * stride_swn + ks[None, :])
        acc = tl.dot_scaled(w, sw.to(tl.float8e4nv, bitcast=True), "e2m1",
                            tl.trans(a), sa.to(tl.float8e4nv, bitcast=True), "e2m1", acc)
    return acc


@triton.jit
def _nvfp4_dot_scaled_kernel(
    # Pointers
    a_ptr, sa_ptr, w_ptr, sw_ptr, bias_ptr, y_ptr, part_ptr,
    # Sizes
    M, N, K,
    # Strides
    stride_am, stride_sam, stride_wn, stride_swn, stride_ym,
    # Epilogue factor
    alpha,
    # Meta-parameters
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    SPLIT_K: tl.constexpr, STEPS_PER_SPLIT: tl.constexpr, GROUP_M: tl.constexpr,
    PARTIAL: tl.constexpr, HAS_BIAS: tl.constexpr, NUM_STAGES: tl.constexpr,
):
    # -------------------------------------------------------------------------
    # Program -> (batch tile, weight tile[, split])
    # -------------------------------------------------------------------------
    pid_m, pid_n = _program_tile(M, N, BLOCK_M, BLOCK_N, GROUP_M, PARTIAL)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    # -------------------------------------------------------------------------
    # K splits, summed in split order from a zero total
    # -------------------------------------------------------------------------
    if PARTIAL:
        split = tl.program_id(2)
        acc = _split_partial_scaled(a_ptr, sa_ptr, w_ptr, sw_ptr, split, offs_m, offs_n, M, K,
                                    stride_am, stride_sam, stride_wn, stride_swn,
                                    BLOCK_M, BLOCK_N, BLOCK_K, STEPS_PER_SPLIT, NUM_STAGES)
        p_ptrs = (part_ptr + split.to(tl.int64) * M * N
                  + offs_m.to(tl.int64)[None, :] * N + offs_n[:, None])
        tl.store(p_ptrs, acc, mask=(offs_m[None, :] < M) & (offs_n[:, None] < N))
    else:
        total = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
        for split in tl.static_range(SPLIT_K):
            total += _split_partial_scaled(a_ptr, sa_ptr, w_ptr, sw_ptr, split, offs_m, offs_n, M,
                                           K, stride_am, stride_sam, stride_wn, stride_swn,
                                           BLOCK_M, BLOCK_N, BLOCK_K, STEPS_PER_SPLIT, NUM_STAGES)
        _write_output(total, alpha, bias_ptr, y_ptr, offs_m, offs_n, M, N, stride_ym,
                      BLOCK_N, HAS_BIAS, False)


# -----------------------------------------------------------------------------
# Launcher
# -----------------------------------------------------------------------------


def nvfp4_dot_scaled_gemm(
    a_codes: torch.Tensor,
    a_scales: torch.Tensor,
    weights: LinearWeights,
    plan: GemmPlan,
    alpha: float,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
    tile: TileConfig | None = None,
) -> torch.Tensor:
    """``y [M, N]`` from NVFP4 activations and weights (see the module docstring).

    Args:
        a_codes: ``uint8 [M, K // 2]``; a_scales: ``float8_e4m3fn [M, K // 16]`` (CUDA).
        weights: from :func:`kernels.gemm.layout.pack_linear_weights` with ``plan.block_k``.
        plan: fixes the reduction order; alpha: the decode-factor product
            (``NvFp4LinearLayer.output_scale``).
        out_dtype: bf16 or fp16. bias: ``[N]`` or None. tile: speed-only config.
    Raises:
        ValueError: before anything is allocated or launched, on any mismatch.
    """
    if a_codes.dtype != torch.uint8 or a_codes.dim() != 2:
        raise ValueError(f"a_codes must be uint8 [M, K // 2], got {a_codes.dtype} {tuple(a_codes.shape)}")
    m = a_codes.shape[0]
    k = weights.k
    if a_codes.shape[1] * 2 != k:
        raise ValueError(f"a_codes hold K={2 * a_codes.shape[1]}, the weight has K={k}")
    if a_scales.dtype != torch.float8_e4m3fn or tuple(a_scales.shape) != (m, k // 16):
        raise ValueError(f"a_scales must be float8_e4m3fn {(m, k // 16)}, got {a_scales.dtype} "
                         f"{tuple(a_scales.shape)}")
    if a_codes.device.type != "cuda" or a_codes.device != weights.codes.device:
        raise ValueError(f"tl.dot_scaled runs on a CUDA GPU; a_codes on {a_codes.device}, "
                         f"weight on {weights.codes.device}")
    if (plan.n, plan.k, plan.block_k) != (weights.n, weights.k, weights.block_k):
        raise ValueError(f"plan (N={plan.n}, K={plan.k}, block_k={plan.block_k}) does not match the "
                         f"weight (N={weights.n}, K={weights.k}, block_k={weights.block_k})")
    if out_dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"out_dtype must be bfloat16 or float16, got {out_dtype}")
    if bias is not None and (tuple(bias.shape) != (weights.n,) or bias.device != a_codes.device):
        raise ValueError(f"bias must be [{weights.n}] on {a_codes.device}, got {tuple(bias.shape)} "
                         f"on {bias.device}")
    if tile is None:
        tile = TileConfig(block_m=128 if m > 64 else 64 if m > 16 else 16, block_n=128,
                          num_warps=4, num_stages=3,
                          reduce="partial" if plan.split_k > 1 and m <= 64 else "inline",
                          block_k=plan.block_k)
    if tile.reduce in ("partial", "fused") and plan.split_k == 1:
        raise ValueError(f"reduce={tile.reduce!r} needs split_k > 1")
    n = weights.n
    y = torch.empty((m, n), dtype=out_dtype, device=a_codes.device)
    if m == 0:
        return y
    # this kernel always reduces split partials with the separate fixed-order kernel
    partial = tile.reduce in ("partial", "fused")
    part = torch.empty((plan.split_k, m, n), dtype=torch.float32, device=y.device) if partial else y
    bias_arg = bias if bias is not None else y
    block_k = plan.block_k
    grid_m = triton.cdiv(m, tile.block_m)
    grid_n = triton.cdiv(n, tile.block_n)
    grid = (grid_n, grid_m, plan.split_k) if partial else (grid_n * grid_m,)
    a_scale_bytes = a_scales.view(torch.uint8)
    w_scale_bytes = weights.scales.view(torch.uint8)
    _nvfp4_dot_scaled_kernel[grid](
        a_codes, a_scale_bytes, weights.codes, w_scale_bytes, bias_arg, y, part,
        m, n, k,
        a_codes.stride(0), a_scale_bytes.stride(0), weights.codes.stride(0), w_scale_bytes.stride(0),
        y.stride(0),
        float(alpha),
        BLOCK_M=tile.block_m, BLOCK_N=tile.block_n, BLOCK_K=block_k,
        SPLIT_K=plan.split_k, STEPS_PER_SPLIT=plan.chunks_per_split, GROUP_M=tile.group_m,
        PARTIAL=partial, HAS_BIAS=bias is not None, NUM_STAGES=tile.num_stages,
        num_warps=tile.num_warps, num_stages=tile.num_stages,
    )
    if partial:
        launch_splitk_reduce(part, bias, y, y.stride(0), alpha, plan.split_k, False)
    return y
