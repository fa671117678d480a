"""The Gluon kernel of :mod:`kernels.gemm.wgmma_gemm` (sm90; imported only where Gluon exists).

Kept apart from the launcher because importing it needs Triton's experimental
Gluon dialect with the API of the releases in
:data:`kernels.gemm.wgmma_gemm.GLUON_TRITON`; the module docstring of
:mod:`kernels.gemm.wgmma_gemm` describes the partitions and the protocol.
"""

from __future__ import annotations

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    fence_async_shared,
    mbarrier,
    tma,
    warpgroup_mma,
    warpgroup_mma_wait,
)

from kernels.gemm.layout import BF16_SCALE_BIAS, FP16_SCALE_BIAS, WORD_MASK

__all__ = ["ws_kernel"]

# Triton 3.6 names the TMA load async_copy_global_to_shared; later releases async_load
_tma_load = getattr(tma, "async_load", None) or tma.async_copy_global_to_shared
# ... and gl.thread_barrier gl.barrier
_barrier = getattr(gl, "barrier", None) or gl.thread_barrier

_MASK = gl.constexpr(WORD_MASK)
_BF16_BIAS2 = gl.constexpr(BF16_SCALE_BIAS * 0x00010001)
_FP16_BIAS2 = gl.constexpr(FP16_SCALE_BIAS * 0x00010001)

@gluon.jit
def _mul2(a, b, FP16: gl.constexpr):
    """Two packed 16-bit products per 32-bit word (the operand dtype), exact here."""
    if FP16:
        return gl.inline_asm_elementwise("mul.rn.f16x2 $0, $1, $2;", "=r,r,r", [a, b],
                                         dtype=gl.uint32, is_pure=True, pack=1)
    else:
        return gl.inline_asm_elementwise("mul.rn.bf16x2 $0, $1, $2;", "=r,r,r", [a, b],
                                         dtype=gl.uint32, is_pure=True, pack=1)

@gluon.jit
def _to_pairs(p, OP: gl.constexpr):
    """uint32 words holding two 16-bit values -> [..., 2] operand values (low half first)."""
    lo = (p & 0xFFFF).to(gl.uint16).to(OP, bitcast=True)
    hi = (p >> 16).to(gl.uint16).to(OP, bitcast=True)
    return gl.join(lo, hi)

@gluon.jit
def _fields(r, FP16: gl.constexpr):
    if FP16:
        # fp16 keeps the sign bit and takes the magnitude at bits 11..9: e2m1 * 2**-14
        r = ((r & 0x01C001C0) << 3) | (r & 0x80008000)
    return r

@gluon.jit
def _x_loader(x_desc, x_bufs, x_ready, x_empty, num_tiles, grid_m, num_chunks,
              BLOCK_M: gl.constexpr, X_STAGES: gl.constexpr):
    """TMA of the activation tile of every 128-wide K step of every tile of this program."""
    i = 0
    for t in range(gl.program_id(0), num_tiles, gl.num_programs(0)):
        m0 = (t % grid_m) * BLOCK_M
        for step in range(2 * num_chunks):
            xs = i % X_STAGES
            mbarrier.wait(x_empty.index(xs), ((i // X_STAGES) & 1) ^ 1)
            mbarrier.expect(x_ready.index(xs), x_desc.block_type.nbytes)
            _tma_load(x_desc, [m0, step * 128], x_ready.index(xs), x_bufs.index(xs))
            i += 1


@gluon.jit
def _raw_loader(w_desc, s_desc, w_bufs, s_bufs, raw_ready, raw_empty, num_tiles, grid_m, num_chunks,
                N_PAD, BLOCK_N: gl.constexpr, RAW_STAGES: gl.constexpr):
    """TMA of the raw words and scale codes of every 256-wide layout chunk of every tile."""
    c_all = 0
    for t in range(gl.program_id(0), num_tiles, gl.num_programs(0)):
        n0 = (t // grid_m) * BLOCK_N
        for c in range(num_chunks):
            rs = c_all % RAW_STAGES
            mbarrier.wait(raw_empty.index(rs), ((c_all // RAW_STAGES) & 1) ^ 1)
            # the decode warps read this buffer with ordinary loads; the TMA writes it next
            fence_async_shared()
            mbarrier.expect(raw_ready.index(rs), w_desc.block_type.nbytes + s_desc.block_type.nbytes)
            _tma_load(w_desc, [c * N_PAD + n0, 0], raw_ready.index(rs), w_bufs.index(rs))
            _tma_load(s_desc, [c * N_PAD + n0, 0], raw_ready.index(rs), s_bufs.index(rs))
            c_all += 1


@gluon.jit
def _decode_partition(w_bufs, s_bufs, a_bufs, raw_ready, raw_empty, a_ready, a_empty,
                      num_tiles, num_chunks,
                      BLOCK_N: gl.constexpr, DEC_WARPS: gl.constexpr, RAW_STAGES: gl.constexpr,
                      A_STAGES: gl.constexpr, FP16: gl.constexpr):
    # words [BLOCK_N, 4 (q), 8 (J)]: a thread holds the four q of one (row, J) and both
    # halves (J and J + 4); lanes run over J % 4 and 8 rows, warps over rows
    WL: gl.constexpr = gl.BlockedLayout([1, 4, 1], [8, 1, 4], [DEC_WARPS, 1, 1], [2, 1, 0])
    OP: gl.constexpr = gl.float16 if FP16 else gl.bfloat16
    c_all = 0
    for t in range(gl.program_id(0), num_tiles, gl.num_programs(0)):  # noqa: B007 - the partitions walk the same tiles and steps in step
        for c in range(num_chunks):  # noqa: B007 - the partitions walk the same tiles and steps in step
            rs = c_all % RAW_STAGES
            mbarrier.wait(raw_ready.index(rs), (c_all // RAW_STAGES) & 1)
            words = w_bufs.index(rs).reshape([BLOCK_N, 4, 8]).load(WL).to(gl.uint32, bitcast=True)
            # scale codes of blocks (2J, 2J + 1) as one 16-bit pair per (row, J)
            sc = s_bufs.index(rs).load(gl.SliceLayout(1, WL)).to(gl.uint16, bitcast=True).to(gl.uint32)
            _barrier()
            mbarrier.arrive(raw_empty.index(rs), count=1)
            if FP16:
                s_lo = (sc & 0xFF) * 0x00800080 + _FP16_BIAS2
                s_hi = (sc >> 8) * 0x00800080 + _FP16_BIAS2
            else:
                s_lo = (sc & 0xFF) * 0x00100010 + _BF16_BIAS2
                s_hi = (sc >> 8) * 0x00100010 + _BF16_BIAS2
            s_lo = gl.expand_dims(s_lo, 1)
            s_hi = gl.expand_dims(s_hi, 1)
            r0 = _fields(words & _MASK, FP16)
            r1 = _fields((words << 3) & _MASK, FP16)
            r2 = _fields((words << 6) & _MASK, FP16)
            r3 = _fields(((words << 1) & 0x80008000) | ((words >> 5) & 0x01000100)
                         | ((words >> 4) & 0x00C000C0), FP16)
            r0, s_lo0 = gl.broadcast(r0, s_lo)
            r2, s_hi0 = gl.broadcast(r2, s_hi)
            p0 = _mul2(r0, s_lo0, FP16)   # pair (s=0, u1=0)
            p1 = _mul2(r1, s_lo0, FP16)   # (s=0, u1=1)
            p2 = _mul2(r2, s_hi0, FP16)   # (s=1, u1=0)
            p3 = _mul2(r3, s_hi0, FP16)   # (s=1, u1=1)
            p = gl.join(gl.join(p0, p1), gl.join(p2, p3))          # [N, q, J, u1, s]
            p = gl.reshape(p, [BLOCK_N, 4, 2, 4, 2, 2])            # [N, q, h, j, u1, s]
            p = gl.permute(p, [0, 2, 3, 5, 4, 1])                  # [N, h, j, s, u1, q]
            p = gl.reshape(p, [BLOCK_N, 2, 64])
            p = gl.permute(p, [0, 2, 1])
            halves = gl.split(p)
            for h in gl.static_range(2):
                i = 2 * c_all + h
                a_s = i % A_STAGES
                v = _to_pairs(halves[h], OP)                      # [N, 64, 2]
                v = gl.reshape(v, [BLOCK_N, 128])
                mbarrier.wait(a_empty.index(a_s), ((i // A_STAGES) & 1) ^ 1)
                a_bufs.index(a_s).store(v)
                fence_async_shared()
                _barrier()
                mbarrier.arrive(a_ready.index(a_s), count=1)
            c_all += 1


@gluon.jit
def _mma_partition(x_bufs, a_bufs, x_ready, x_empty, a_ready, a_empty, bias_ptr, y_ptr,
                   M, N, stride_ym, alpha, num_tiles, grid_m, chunks_per_split,
                   BLOCK_N: gl.constexpr, BLOCK_M: gl.constexpr, X_STAGES: gl.constexpr,
                   A_STAGES: gl.constexpr, SPLIT_K: gl.constexpr, HAS_BIAS: gl.constexpr,
                   MMA_WARPS: gl.constexpr):
    """wgmma of every step; the K splits of a tile summed in split order; the epilogue."""
    MMA: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[MMA_WARPS, 1],
                                                  instr_shape=[16, BLOCK_M, 16])
    i = 0
    for t in range(gl.program_id(0), num_tiles, gl.num_programs(0)):
        total = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, layout=MMA)
        for split in gl.static_range(SPLIT_K):  # noqa: B007 - the partitions walk the same tiles and steps in step
            acc = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, layout=MMA)
            for step in range(2 * chunks_per_split):  # noqa: B007 - the partitions walk the same tiles and steps in step
                xs = i % X_STAGES
                a_s = i % A_STAGES
                mbarrier.wait(a_ready.index(a_s), (i // A_STAGES) & 1)
                mbarrier.wait(x_ready.index(xs), (i // X_STAGES) & 1)
                acc = warpgroup_mma(a_bufs.index(a_s), x_bufs.index(xs).permute((1, 0)), acc,
                                    is_async=True)
                # at most this step's MMA in flight: step i - 1's buffers are free
                acc = warpgroup_mma_wait(num_outstanding=1, deps=(acc, ))
                mbarrier.arrive(x_empty.index((i + X_STAGES - 1) % X_STAGES), count=1, pred=i > 0)
                mbarrier.arrive(a_empty.index((i + A_STAGES - 1) % A_STAGES), count=1, pred=i > 0)
                i += 1
            acc = warpgroup_mma_wait(num_outstanding=0, deps=(acc, ))
            total += acc
        # epilogue: one float32 fma (as the Triton kernel's), then the store, from the MMA layout
        offs_n = (t // grid_m) * BLOCK_N + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, MMA))
        offs_m = (t % grid_m) * BLOCK_M + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(0, MMA))
        if HAS_BIAS:
            bias = gl.load(bias_ptr + offs_n, mask=offs_n < N, other=0.0).to(gl.float32)
        else:
            bias = gl.zeros([BLOCK_N], gl.float32, layout=gl.SliceLayout(1, MMA))
        y = gl.fma(total, alpha, gl.expand_dims(bias, 1))
        y_ptrs = y_ptr + offs_m.to(gl.int64)[None, :] * stride_ym + offs_n[:, None]
        gl.store(y_ptrs, y.to(y_ptr.dtype.element_ty), mask=(offs_n[:, None] < N) & (offs_m[None, :] < M))


@gluon.jit
def ws_kernel(x_desc, w_desc, s_desc, bias_ptr, y_ptr,
              M, N, N_PAD, stride_ym, alpha, num_tiles, grid_m, chunks_per_split,
              BLOCK_M: gl.constexpr, BLOCK_N: gl.constexpr, X_STAGES: gl.constexpr,
              RAW_STAGES: gl.constexpr, A_STAGES: gl.constexpr, DEC_WARPS: gl.constexpr,
              SPLIT_K: gl.constexpr, HAS_BIAS: gl.constexpr, FP16: gl.constexpr,
              num_warps: gl.constexpr):
    """Persistent: program p runs tiles p, p + P, ... (tile t: batch tile t % grid_m, weight tile t // grid_m)."""
    OP: gl.constexpr = gl.float16 if FP16 else gl.bfloat16
    A_LAYOUT: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_N, 128], OP)
    num_chunks = SPLIT_K * chunks_per_split

    x_bufs = gl.allocate_shared_memory(x_desc.dtype, [X_STAGES] + x_desc.block_type.shape, x_desc.layout)
    w_bufs = gl.allocate_shared_memory(w_desc.dtype, [RAW_STAGES] + w_desc.block_type.shape, w_desc.layout)
    s_bufs = gl.allocate_shared_memory(s_desc.dtype, [RAW_STAGES] + s_desc.block_type.shape, s_desc.layout)
    a_bufs = gl.allocate_shared_memory(OP, [A_STAGES, BLOCK_N, 128], A_LAYOUT)
    x_ready = gl.allocate_shared_memory(gl.int64, [X_STAGES, 1], mbarrier.MBarrierLayout())
    x_empty = gl.allocate_shared_memory(gl.int64, [X_STAGES, 1], mbarrier.MBarrierLayout())
    raw_ready = gl.allocate_shared_memory(gl.int64, [RAW_STAGES, 1], mbarrier.MBarrierLayout())
    raw_empty = gl.allocate_shared_memory(gl.int64, [RAW_STAGES, 1], mbarrier.MBarrierLayout())
    a_ready = gl.allocate_shared_memory(gl.int64, [A_STAGES, 1], mbarrier.MBarrierLayout())
    a_empty = gl.allocate_shared_memory(gl.int64, [A_STAGES, 1], mbarrier.MBarrierLayout())
    for s in gl.static_range(X_STAGES):
        mbarrier.init(x_ready.index(s), count=1)
        mbarrier.init(x_empty.index(s), count=1)
    for s in gl.static_range(RAW_STAGES):
        mbarrier.init(raw_ready.index(s), count=1)
        mbarrier.init(raw_empty.index(s), count=1)
    for s in gl.static_range(A_STAGES):
        mbarrier.init(a_ready.index(s), count=1)
        mbarrier.init(a_empty.index(s), count=1)

    gl.warp_specialize([
        (_mma_partition, (x_bufs, a_bufs, x_ready, x_empty, a_ready, a_empty, bias_ptr, y_ptr,
                          M, N, stride_ym, alpha, num_tiles, grid_m, chunks_per_split,
                          BLOCK_N, BLOCK_M, X_STAGES, A_STAGES, SPLIT_K, HAS_BIAS, num_warps)),
        (_x_loader, (x_desc, x_bufs, x_ready, x_empty, num_tiles, grid_m, num_chunks, BLOCK_M, X_STAGES)),
        (_raw_loader, (w_desc, s_desc, w_bufs, s_bufs, raw_ready, raw_empty, num_tiles, grid_m, num_chunks,
                       N_PAD, BLOCK_N, RAW_STAGES)),
        (_decode_partition, (w_bufs, s_bufs, a_bufs, raw_ready, raw_empty, a_ready, a_empty,
                             num_tiles, num_chunks, BLOCK_N, DEC_WARPS, RAW_STAGES, A_STAGES, FP16)),
    ], [1, 1, DEC_WARPS], [40, 40, 96])
