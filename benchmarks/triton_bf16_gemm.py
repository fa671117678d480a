"""A plain tiled Triton bf16 GEMM: the yardstick of what Triton itself reaches on a dense GEMM.

``y [M, N] = x [M, K] @ w [N, K].T`` in bf16 with float32 accumulation, one
program per output tile (grouped order for L2 reuse), the whole K reduced in
order inside the program (no split, no atomics): the same constraints as the
batch-invariant NVFP4 kernel, without the weight decode. ``CONFIGS`` is the
small set the benchmark takes the best of, per point.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

#: (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages)
CONFIGS = (
    (16, 64, 256, 4, 4),
    (64, 64, 128, 4, 4),
    (64, 128, 64, 4, 4),
    (128, 128, 64, 8, 3),
    (128, 256, 64, 8, 3),
    (256, 128, 64, 8, 3),
)


@triton.jit
def _bf16_gemm_kernel(x_ptr, w_ptr, y_ptr, M, N, K, stride_xm, stride_wn, stride_ym,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                      GROUP_M: tl.constexpr):
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    in_group = GROUP_M * num_pid_n
    first_m = (pid // in_group) * GROUP_M
    group_size = tl.minimum(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % in_group) % group_size
    pid_n = (pid % in_group) // group_size
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    # rows past M / N read row 0 (valid memory); their results are never stored
    rows = tl.where(offs_m < M, offs_m, 0).to(tl.int64)
    cols = tl.where(offs_n < N, offs_n, 0).to(tl.int64)
    x_ptrs = x_ptr + rows[:, None] * stride_xm + offs_k[None, :]
    w_ptrs = w_ptr + cols[None, :] * stride_wn + offs_k[:, None]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for _ in range(0, tl.cdiv(K, BLOCK_K)):
        acc = tl.dot(tl.load(x_ptrs), tl.load(w_ptrs), acc)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    y_ptrs = y_ptr + offs_m.to(tl.int64)[:, None] * stride_ym + offs_n[None, :]
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


def bf16_gemm(x: torch.Tensor, w: torch.Tensor, config: tuple[int, int, int, int, int]) -> torch.Tensor:
    """``x [M, K] @ w [N, K].T`` with one of :data:`CONFIGS`; K must be a multiple of BLOCK_K."""
    bm, bn, bk, warps, stages = config
    m, k = x.shape
    n = w.shape[0]
    if w.shape[1] != k or k % bk or x.stride(1) != 1 or w.stride(1) != 1:
        raise ValueError(f"bf16_gemm needs x [M, K], w [N, K] with unit K stride and K % {bk} == 0; "
                         f"got x {tuple(x.shape)}, w {tuple(w.shape)}")
    y = torch.empty((m, n), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(m, bm) * triton.cdiv(n, bn),)
    _bf16_gemm_kernel[grid](x, w, y, m, n, k, x.stride(0), w.stride(0), y.stride(0),
                            BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=8,
                            num_warps=warps, num_stages=stages)
    return y
