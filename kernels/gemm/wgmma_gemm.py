"""Warp-specialized NVFP4 GEMM for Hopper (sm90), written in Gluon.

The same product as :func:`kernels.gemm.dequant_gemm.nvfp4_dequant_gemm`, on
the same prepared weight (:mod:`kernels.gemm.layout`), with the work of a
program split over four groups of warps that run at the same time:

* an **activation loader** warp TMA-loads the activation tile ``[BLOCK_M,
  128]`` of every 128-wide K step into a ring of shared-memory buffers;
* a **weight loader** warp TMA-loads the raw words ``[BLOCK_N, 256 / 8]``
  (int32) and block-scale codes ``[BLOCK_N, 8]`` (int16 pairs) of every
  256-wide layout chunk into another ring;
* **decode** warps turn each half chunk into the bf16 (fp16) operand
  ``e2m1 * scale * 2**-8`` and store it to shared memory in the layout
  ``wgmma`` reads (128-byte swizzle), 16 bytes per store;
* the **MMA** warpgroup(s) (4 warps per 64 weight rows) issue ``wgmma`` with
  both operands in shared memory (``HGMMA m64nBLOCK_Mk16``, the weight rows as
  the MMA's M, swap-AB as in the Triton kernel), then apply the epilogue.

The grid is persistent (one program per SM by default); program ``p`` runs
output tiles ``p, p + P, ...``, batch tile fastest, so consecutive tiles of a
program share a weight tile in L2. All partitions walk the same tiles and
steps; ring-buffer phases count across tiles.

Why: the Triton kernel decodes in the MMA warps' own registers (about 4 SASS
instructions per weight element, executed by one warpgroup per 64-row tile,
one warp per scheduler at N = K = 8192). Here the decode warps execute about
2.9 per element (a scale built once per 32 elements, no ``wgmma`` fences),
beside the MMA warps. Measured on an H100 (docs/benchmarks.md) it is slower
than the Triton kernel at decode (the operand's round trip through shared
memory and the mbarrier hand-offs bound it) and faster only at some
mid-batch points, so the backend does not dispatch to it; the benchmark
times it in its own column.

Numerics: identical to the Triton kernel. Each product is exact in float32,
each K step of 16 is one ``HGMMA`` in K order into a float32 accumulator that
starts at zero for every K split, the splits are summed in split order in
registers (``total = 0; total += acc_s``, the Triton kernel's ``inline``
mode), and the epilogue is the same ``fma(total, alpha, bias)``; the GPU
tests check its bits against the Triton kernel's.

Mbarrier protocol (rings of ``S`` buffers, ``i`` the use count of a buffer):
a consumer waits ``ready[i % S]`` with parity ``(i // S) & 1``; a producer
waits ``empty[i % S]`` with the opposite parity (a fresh barrier lets the first
``S`` waits through). The MMA partition frees the activation and operand
buffers of step ``i - 1`` once ``wgmma`` of step ``i - 1`` has completed; the
decode partition frees a raw chunk once both of its halves are in registers,
and the weight loader fences before its TMA overwrites it.

Requirements (checked by :func:`supported`): Triton's Gluon dialect as in
Triton 3.6 (the API is experimental and changes between releases; the kernel
also compiles with 3.9, checked offline, but has only run on 3.6), a CUDA
device of capability 9.0, plan chunk ``block_k == 256``, activations with
16-byte aligned rows.
"""

from __future__ import annotations

import dataclasses
import functools

import torch
import triton

from kernels.gemm.layout import DequantWeights
from kernels.gemm.plan import GemmPlan

__all__ = ["GLUON_TRITON", "SMEM_LIMIT", "WsTile", "supported", "ws_dequant_gemm", "ws_tile_for"]

#: Triton releases whose Gluon API this module was written and measured against
GLUON_TRITON = ((3, 6),)
#: K elements per MMA step (half of a 256-wide layout chunk)
STEP_K = 128
CHUNK_K = 256
#: dynamic shared memory one program may use on sm90 (227 KB)
SMEM_LIMIT = 232448


@dataclasses.dataclass(frozen=True)
class WsTile:
    """Launch shape of the warp-specialized kernel (speed only, never numerics).

    Attributes:
        block_m: batch rows per program (the ``wgmma`` N), 16..256, multiple of 16.
        block_n: weight rows per program, 64 (one MMA warpgroup) or 128 (two).
        x_stages: activation buffers; raw_stages: raw weight-chunk buffers;
        a_stages: decoded-operand buffers.
        dec_warps: warps of the decode partition (4 or 8).
    """

    block_m: int
    block_n: int
    x_stages: int = 4
    raw_stages: int = 3
    a_stages: int = 2
    dec_warps: int = 8

    def __post_init__(self) -> None:
        if self.block_n not in (64, 128):
            raise ValueError(f"block_n must be 64 or 128 (one MMA warpgroup per 64 rows), got {self.block_n}")
        if self.block_m not in (16, 32, 64, 128, 256):
            raise ValueError(f"block_m must be one of 16, 32, 64, 128, 256, got {self.block_m}")
        if self.dec_warps not in (4, 8) or min(self.x_stages, self.raw_stages, self.a_stages) < 1:
            raise ValueError(f"dec_warps must be 4 or 8 and every stage count >= 1, got {self}")
        if self.smem_bytes() > SMEM_LIMIT:
            raise ValueError(f"{self} needs {self.smem_bytes()} bytes of shared memory, "
                             f"more than the {SMEM_LIMIT} a program may have")

    def smem_bytes(self, itemsize: int = 2) -> int:
        x = self.x_stages * self.block_m * STEP_K * itemsize
        raw = self.raw_stages * self.block_n * (CHUNK_K // 2 + CHUNK_K // 16)
        a = self.a_stages * self.block_n * STEP_K * itemsize
        return x + raw + a + 1024


def _triton_version() -> tuple[int, int]:
    major, minor = (int(p) for p in triton.__version__.split(".")[:2])
    return major, minor


@functools.cache
def _gluon_available() -> bool:
    if _triton_version() not in GLUON_TRITON:
        return False
    try:
        from triton.experimental.gluon.language.nvidia.hopper import warpgroup_mma  # noqa: F401
    except ImportError:
        return False
    return True


def supported(x: torch.Tensor, plan: GemmPlan) -> bool:
    """Whether :func:`ws_dequant_gemm` can run ``x`` against a weight planned as ``plan``."""
    if not isinstance(x, torch.Tensor) or x.device.type != "cuda" or x.dim() != 2:
        return False
    if plan.block_k != CHUNK_K or x.dtype not in (torch.bfloat16, torch.float16):
        return False
    if torch.cuda.get_device_capability(x.device) != (9, 0) or not _gluon_available():
        return False
    # TMA: 16-byte aligned base and row stride, unit stride along K
    return (x.shape[1] == 0 or x.stride(1) == 1) and (x.stride(0) * x.element_size()) % 16 == 0 \
        and x.data_ptr() % 16 == 0


def ws_tile_for(m: int, plan: GemmPlan) -> WsTile:
    """The tile for ``m`` rows (speed only)."""
    if m <= 16:
        return WsTile(16, 64, x_stages=8, raw_stages=6)
    if m <= 32:
        return WsTile(32, 64, x_stages=6, raw_stages=6)
    if m <= 64:
        return WsTile(64, 64, x_stages=4, raw_stages=5)
    if m <= 128:
        return WsTile(128, 64, x_stages=3, raw_stages=4)
    return WsTile(128, 128, x_stages=3, raw_stages=2, a_stages=2)


# -----------------------------------------------------------------------------
# The kernel lives in kernels.gemm.gluon_nvfp4 (imported on first use)
# -----------------------------------------------------------------------------


def _kernel():
    from kernels.gemm.gluon_nvfp4 import ws_kernel

    return ws_kernel


# -----------------------------------------------------------------------------
# Launcher
# -----------------------------------------------------------------------------


def _layouts(tile: WsTile, op_dtype: torch.dtype):
    from triton.experimental.gluon import language as gl

    op = gl.float16 if op_dtype == torch.float16 else gl.bfloat16
    x_layout = gl.NVMMASharedLayout.get_default_for([tile.block_m, STEP_K], op)
    w_layout = gl.NVMMASharedLayout.get_default_for([tile.block_n, CHUNK_K // 8], gl.int32)
    s_layout = gl.NVMMASharedLayout.get_default_for([tile.block_n, CHUNK_K // 32], gl.int16)
    return x_layout, w_layout, s_layout


def _sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def ws_dequant_gemm(x: torch.Tensor, weights: DequantWeights, plan: GemmPlan, alpha: float,
                    bias: torch.Tensor | None = None, tile: WsTile | None = None,
                    programs: int | None = None) -> torch.Tensor:
    """``y [M, N] = alpha * x @ dequant(W).T * 2**-8 (+ bias)``; the caller checked :func:`supported`.

    ``x`` and the weight are validated by the caller (the Triton launcher's
    checks). One persistent program per SM (or ``programs``) walks the output
    tiles; a program runs all K splits of its tile and sums them in split
    order in registers, so no partial buffer and no second launch.
    """
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    m, k = x.shape
    n = weights.n
    tile = tile or ws_tile_for(max(m, 1), plan)
    y = torch.empty((m, n), dtype=x.dtype, device=x.device)
    if m == 0:
        return y
    x_layout, w_layout, s_layout = _layouts(tile, x.dtype)
    x_desc = TensorDescriptor(x, [m, k], [x.stride(0), 1], [tile.block_m, STEP_K], x_layout)
    words = weights.words.view(torch.int32).reshape(-1, CHUNK_K // 8)
    w_desc = TensorDescriptor(words, list(words.shape), [CHUNK_K // 8, 1], [tile.block_n, CHUNK_K // 8],
                              w_layout)
    scales = weights.scale_codes.view(torch.int16).reshape(-1, CHUNK_K // 32)
    s_desc = TensorDescriptor(scales, list(scales.shape), [CHUNK_K // 32, 1],
                              [tile.block_n, CHUNK_K // 32], s_layout)
    grid_m = triton.cdiv(m, tile.block_m)
    num_tiles = grid_m * triton.cdiv(n, tile.block_n)
    grid = (min(num_tiles, programs or _sm_count(x.device)),)
    _kernel()[grid](
        x_desc, w_desc, s_desc, bias if bias is not None else y, y,
        m, n, weights.n_pad, y.stride(0), float(alpha), num_tiles, grid_m, plan.chunks_per_split,
        BLOCK_M=tile.block_m, BLOCK_N=tile.block_n, X_STAGES=tile.x_stages,
        RAW_STAGES=tile.raw_stages, A_STAGES=tile.a_stages, DEC_WARPS=tile.dec_warps,
        SPLIT_K=plan.split_k, HAS_BIAS=bias is not None, FP16=x.dtype == torch.float16,
        num_warps=4 * (tile.block_n // 64),
    )
    return y
