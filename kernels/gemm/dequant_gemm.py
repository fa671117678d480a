"""Batch-invariant NVFP4 GEMM with explicit dequantization (sm80, sm90, the interpreter).

Computes, for activations ``a [M, K]`` (bf16 or fp16) and an NVFP4 weight
``W [N, K]`` prepared by :func:`kernels.gemm.layout.pack_dequant_weights`::

    y[m, n] = alpha * sum_k a[m, k] * (e2m1(W[n, k]) * scale[n, k // 16] * 2**-8)  (+ bias[n])

where ``e2m1 * scale * 2**-8`` is exact in bf16/fp16 (at most 6 significant
bits), so every product is exact in float32 and the only roundings are the
float32 additions and the final cast. ``alpha`` folds the ``2**8`` and the
global scales (``256 / (w_gs * in_gs)``; ``256 / w_gs`` weight-only). For
W4A4 the caller passes the row-locally quantized activations
(:func:`kernels.gemm.quantize.nvfp4_quantize`, ``values``), which are exact too.

Orientation (swap-AB): the weight tile is the MMA's first operand
(``[BLOCK_N, BLOCK_K]``, decoded in registers, which is where Hopper's
``wgmma`` accepts a computed operand), the activation tile the second
(``[BLOCK_K, BLOCK_M]``, from shared memory). A decode batch of 1..16 rows then
costs one 16-wide MMA column instead of a 64-row MMA tile.

Decode: each thread loads whole 32-bit words (16-byte shared-memory loads) in
which the offline layout put its codes already in bf16 bit positions, so one
mask or shift-and-mask gives two operand values, and the pair lands in one MMA
register unchanged; the E4M3 block scale is stored as a byte whose bf16 (fp16)
pattern is one integer multiply-add away. About 4 SASS instructions per weight
element on sm90 (Triton 3.6), no inline assembly.

Reduction order (the batch-invariance contract, see :mod:`kernels.gemm.plan`):
K is cut into ``split_k`` contiguous runs of ``chunks_per_split`` layout
chunks. Each run is accumulated from zero, 16 K at a time, in K order; the runs
are then added in split order to a zero float32 total, and the epilogue
``fma(total, alpha, bias)`` is applied. Which program does which run, how many
K the loop stages per iteration (``BLOCK_K``), whether runs meet in registers
(``inline``), in one program through a float32 running total in memory
(``spill``: one accumulator instead of two for wide tiles), through a float32 buffer and :func:`_splitk_reduce_kernel`
(``partial``) or through the same buffer summed by the last program of the tile
to finish (``fused``: an atomic ticket per output tile picks that program; it
reads the partials back in split order, so who arrives last never changes the
sum), and whether the weight is decoded in registers or first written out whole
(``DENSE_W``, large M) do not change those operations; the GPU tests check it
bitwise for every tile config.

Launch: with ``pdl`` (sm90 and newer) the GEMM is launched as a programmatic
dependent of the kernel before it on the stream (the W4A4 quantizer): it may
start while that kernel drains and waits (``griddepcontrol.wait``) before its
first global load, which only hides the launch gap.

Memory layout: ``x`` row-major with unit stride along K; ``y`` row-major
``[M, N]``; ``partials`` ``float32 [SPLIT_K, M, N]``; weights as in
:mod:`kernels.gemm.layout`; the dense scratch ``[N_pad, K_pad]`` row-major.
Offsets of the packed weight are 32-bit: the launcher refuses a weight of
2**31 bytes or more.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from kernels.gemm.layout import BF16_SCALE_BIAS, FP16_SCALE_BIAS, WORD_MASK, DequantWeights
from kernels.gemm.plan import GemmPlan, TileConfig, tile_for
from kernels.platform import current_platform

__all__ = ["OPERAND_DTYPES", "counter_slots", "nvfp4_dequant_gemm"]

#: activation dtypes the kernel multiplies in (the weight is decoded to the same dtype)
OPERAND_DTYPES = (torch.bfloat16, torch.float16)

# Globals a @triton.jit function reads must be constexpr.
_BF16_BIAS = tl.constexpr(BF16_SCALE_BIAS)
_FP16_BIAS = tl.constexpr(FP16_SCALE_BIAS)
_MASK = tl.constexpr(WORD_MASK)

# -----------------------------------------------------------------------------
# Decode: twiddled 32-bit words -> operand values
# -----------------------------------------------------------------------------


@triton.jit
def _half_to_f32(h):
    """A 16-bit half in the bf16 field layout (uint32) -> its E2M1 value as float32."""
    mag = (h >> 6) & 0x7
    e = mag >> 1
    lo = (mag & 1).to(tl.float32)
    value = tl.where(e == 0, lo * 0.5, (2.0 + lo) * (1 << e).to(tl.float32) * 0.25)
    return tl.where((h & 0x8000) != 0, -value, value)


@triton.jit
def _pair(r, OP_DTYPE: tl.constexpr, F32: tl.constexpr):
    """One decoded pair (uint32, bf16 field layout in each half) -> [..., 2] operand values.

    On the GPU the two halves are bit casts of the two 16-bit halves of ``r``,
    so the pair lands in one 32-bit MMA operand register without any moves.
    ``F32`` (interpreter) gives float32 values instead: its bf16 bit casts of
    subnormals and its bf16 products are not reliable.
    """
    if F32:
        return tl.join(_half_to_f32(r & 0xFFFF), _half_to_f32(r >> 16))
    if OP_DTYPE == tl.float16:
        # fp16 keeps the sign bit and takes the magnitude at bits 11..9: e2m1 * 2**-14
        r = ((r & 0x01C001C0) << 3) | (r & 0x80008000)
    lo = (r & 0xFFFF).to(tl.uint16).to(OP_DTYPE, bitcast=True)
    hi = (r >> 16).to(tl.uint16).to(OP_DTYPE, bitcast=True)
    return tl.join(lo, hi)


@triton.jit
def _decode_words(w, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                  OP_DTYPE: tl.constexpr, F32: tl.constexpr):
    """Words ``uint32 [BLOCK_N, 4 (q), BLOCK_K // 32 (J)]`` -> codes ``[BLOCK_N, BLOCK_K]``.

    The values are ``e2m1 * 2**-126`` (bf16), ``e2m1 * 2**-14`` (fp16) or
    ``e2m1`` (``F32``), in K order: word ``(q, J)`` pair ``2 s + u1`` half
    ``u0`` is element ``k = 32 J + 16 s + 8 u1 + 2 q + u0`` (layout.py).
    """
    r0 = w & _MASK
    r1 = (w << 3) & _MASK
    r2 = (w << 6) & _MASK
    r3 = ((w << 1) & 0x80008000) | ((w >> 5) & 0x01000100) | ((w >> 4) & 0x00C000C0)
    s0 = tl.join(_pair(r0, OP_DTYPE, F32), _pair(r1, OP_DTYPE, F32))   # [..., u0, u1]
    s1 = tl.join(_pair(r2, OP_DTYPE, F32), _pair(r3, OP_DTYPE, F32))
    v = tl.join(s0, s1)                                                  # [N, q, J, u0, u1, s]
    v = tl.permute(v, (0, 2, 5, 4, 1, 3))                                # [N, J, s, u1, q, u0]
    return tl.reshape(v, (BLOCK_N, BLOCK_K))


@triton.jit
def _load_weight_tile(w_ptr, s_ptr, step, offs_n, N_PAD,
                      BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, CHUNK_K: tl.constexpr,
                      OP_DTYPE: tl.constexpr, F32: tl.constexpr):
    """Weight tile ``[BLOCK_N, BLOCK_K]`` of K step ``step``, dequantized (times 2**-8).

    ``w_ptr`` points at the words as int32 ``[KC, N_PAD, CHUNK_K // 8]``; a
    layout chunk of ``CHUNK_K`` holds ``CHUNK_K // BLOCK_K`` steps, and the
    words of step ``sub`` are ``J`` in ``[sub * BLOCK_K / 32, ...)`` of each ``q``.
    """
    JN: tl.constexpr = BLOCK_K // 32
    SB: tl.constexpr = BLOCK_K // 16
    STEPS: tl.constexpr = CHUNK_K // BLOCK_K
    chunk = step // STEPS
    sub = step % STEPS
    w_ptrs = (w_ptr + chunk * N_PAD * (CHUNK_K // 8) + sub * JN
              + offs_n[:, None, None] * (CHUNK_K // 8)
              + tl.arange(0, 4)[None, :, None] * (CHUNK_K // 32)
              + tl.arange(0, JN)[None, None, :])
    words = tl.load(w_ptrs).to(tl.uint32, bitcast=True)
    s_ptrs = (s_ptr + chunk * N_PAD * (CHUNK_K // 16) + sub * SB
              + offs_n[:, None] * (CHUNK_K // 16) + tl.arange(0, SB)[None, :])
    sc = tl.load(s_ptrs).to(tl.uint32)
    w = _decode_words(words, BLOCK_N, BLOCK_K, OP_DTYPE, F32)
    if F32:
        # float32 pattern of scale * 2**118 (the bf16 one, widened), times 2**-126
        s = ((sc << 20) + (_BF16_BIAS << 16)).to(tl.float32, bitcast=True) * 2.0**-126
        s = tl.join(s, s)
    else:
        # Both halves of one 32-bit word at once: the pair (k, k + 1) of a
        # 16-block shares its scale, and the MMA operand holds it as a pair.
        if OP_DTYPE == tl.float16:
            s2 = sc * 0x00800080 + (_FP16_BIAS * 0x00010001)
        else:
            s2 = sc * 0x00100010 + (_BF16_BIAS * 0x00010001)
        s = tl.join((s2 & 0xFFFF).to(tl.uint16).to(OP_DTYPE, bitcast=True),
                    (s2 >> 16).to(tl.uint16).to(OP_DTYPE, bitcast=True))
    s = tl.reshape(tl.broadcast_to(s[:, :, None, :], (BLOCK_N, SB, 8, 2)), (BLOCK_N, BLOCK_K))
    return w * s


# -----------------------------------------------------------------------------
# Main kernel: one (weight tile, batch tile) per program, all or one K split
# -----------------------------------------------------------------------------


@triton.jit
def _split_partial(x_ptr, w_ptr, s_ptr, split, offs_m, offs_n, M, K, N_PAD, stride_xm, stride_wd,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                   CHUNK_K: tl.constexpr, STEPS_PER_SPLIT: tl.constexpr, OP_DTYPE: tl.constexpr,
                   DENSE_W: tl.constexpr, INTERPRET: tl.constexpr, NUM_STAGES: tl.constexpr):
    """float32 ``[BLOCK_N, BLOCK_M]`` sum over the K steps of split ``split``, from zero.

    ``DENSE_W``: ``w_ptr`` is the weight already dequantized by
    :func:`_dequant_weight_kernel` (row-major, row stride ``stride_wd``), read
    through shared memory like any GEMM operand; the values and the K order of
    the MMAs are the same as when decoding in registers.
    """
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    x_rows = x_ptr + offs_m.to(tl.int64)[:, None] * stride_xm
    m_mask = offs_m[:, None] < M
    first = split * STEPS_PER_SPLIT
    for step in tl.range(first, first + STEPS_PER_SPLIT, num_stages=NUM_STAGES):
        offs_k = step * BLOCK_K + tl.arange(0, BLOCK_K)
        a = tl.load(x_rows + offs_k[None, :], mask=m_mask & (offs_k[None, :] < K), other=0.0)
        if DENSE_W:
            w = tl.load(w_ptr + offs_n.to(tl.int64)[:, None] * stride_wd + offs_k[None, :])
        else:
            w = _load_weight_tile(w_ptr, s_ptr, step, offs_n, N_PAD, BLOCK_N, BLOCK_K, CHUNK_K,
                                  OP_DTYPE, INTERPRET)
        if INTERPRET:
            # The interpreter's bf16 dot is broken (triton-lang/triton#11584);
            # float32 with "ieee" is exact here: the products fit in float32.
            acc = tl.dot(w, tl.trans(a.to(tl.float32)), acc, input_precision="ieee")
        else:
            acc = tl.dot(w, tl.trans(a), acc)
    return acc


@triton.jit
def _epilogue(total, alpha, bias):
    """The one float32 epilogue shared by both reduction modes (same ops, same bits)."""
    return tl.fma(total, alpha, bias)


@triton.jit
def _store_out(ptrs, y, mask, OUT_BF16_BITS: tl.constexpr):
    """Store float32 ``y`` in the output dtype.

    ``OUT_BF16_BITS`` (interpreter only, where float32 -> bf16 truncates):
    round to nearest even by hand and store the bit pattern through an int16 view.
    """
    if OUT_BF16_BITS:
        b = y.to(tl.uint32, bitcast=True)
        r = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
        r = tl.where((b & 0x7FFFFFFF) > 0x7F800000, (b >> 16) | 0x40, r)
        tl.store(ptrs, r.to(tl.uint16).to(tl.int16, bitcast=True), mask=mask)
    else:
        tl.store(ptrs, y.to(ptrs.dtype.element_ty), mask=mask)


@triton.jit
def _write_output(total, alpha, bias_ptr, y_ptr, offs_m, offs_n, M, N, stride_ym,
                  BLOCK_N: tl.constexpr, HAS_BIAS: tl.constexpr, OUT_BF16_BITS: tl.constexpr):
    """Epilogue of a ``[BLOCK_N, BLOCK_M]`` float32 tile: alpha and bias in float32, then store."""
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)
    else:
        bias = tl.zeros((BLOCK_N,), dtype=tl.float32)
    y = _epilogue(total, alpha, bias[:, None])
    y_ptrs = y_ptr + offs_m.to(tl.int64)[None, :] * stride_ym + offs_n[:, None]
    _store_out(y_ptrs, y, (offs_m[None, :] < M) & (offs_n[:, None] < N), OUT_BF16_BITS)


@triton.jit
def _program_tile(M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr,
                  PARTIAL: tl.constexpr):
    """(batch tile, weight tile) of this program.

    ``PARTIAL``: a 3-D grid (weight tile, batch tile, split). Otherwise a 1-D
    grid in grouped order: GROUP_M batch tiles share each weight tile while it
    is in L2. Either way only *which* program computes a tile changes, never
    how, so the order does not touch the numerics.
    """
    if PARTIAL:
        pid_n = tl.program_id(0)
        pid_m = tl.program_id(1)
    else:
        num_pid_m = tl.cdiv(M, BLOCK_M)
        num_pid_n = tl.cdiv(N, BLOCK_N)
        pid = tl.program_id(0)
        in_group = GROUP_M * num_pid_n
        first_m = (pid // in_group) * GROUP_M
        group_size = tl.minimum(num_pid_m - first_m, GROUP_M)
        pid_m = first_m + (pid % in_group) % group_size
        pid_n = (pid % in_group) // group_size
    return pid_m, pid_n


@triton.jit
def _nvfp4_dequant_gemm_kernel(
    # Pointers
    x_ptr, w_ptr, s_ptr, bias_ptr, y_ptr, part_ptr, cnt_ptr,
    # Sizes
    M, N, K, N_PAD,
    # Strides
    stride_xm, stride_ym, stride_wd,
    # Epilogue factor
    alpha,
    # Meta-parameters
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, CHUNK_K: tl.constexpr,
    SPLIT_K: tl.constexpr, STEPS_PER_SPLIT: tl.constexpr, GROUP_M: tl.constexpr,
    PARTIAL: tl.constexpr, FUSED: tl.constexpr, SPILL: tl.constexpr, HAS_BIAS: tl.constexpr, OP_DTYPE: tl.constexpr,
    DENSE_W: tl.constexpr, INTERPRET: tl.constexpr, NUM_STAGES: tl.constexpr,
    OUT_BF16_BITS: tl.constexpr, PDL: tl.constexpr,
):
    if PDL:
        # programmatic dependent launch: x (and the buffers) are the previous kernel's output
        tl.extra.cuda.gdc_wait()
    # -------------------------------------------------------------------------
    # Program -> (batch tile, weight tile[, split])
    # -------------------------------------------------------------------------
    pid_m, pid_n = _program_tile(M, N, BLOCK_M, BLOCK_N, GROUP_M, PARTIAL)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)

    # -------------------------------------------------------------------------
    # K splits: one per program (PARTIAL) or all of them, summed in order
    # -------------------------------------------------------------------------
    if PARTIAL:
        split = tl.program_id(2)
        acc = _split_partial(x_ptr, w_ptr, s_ptr, split, offs_m, offs_n, M, K, N_PAD, stride_xm,
                             stride_wd, BLOCK_M, BLOCK_N, BLOCK_K, CHUNK_K, STEPS_PER_SPLIT,
                             OP_DTYPE, DENSE_W, INTERPRET, NUM_STAGES)
        tile_offs = offs_m.to(tl.int64)[None, :] * N + offs_n[:, None]
        out_mask = (offs_m[None, :] < M) & (offs_n[:, None] < N)
        tl.store(part_ptr + split.to(tl.int64) * M * N + tile_offs, acc, mask=out_mask)
        if FUSED:
            # Every thread's partial is stored before the one ticket is drawn
            # (barrier, then a release/acquire atomic at GPU scope); the last
            # of the SPLIT_K programs of this tile sums all partials in split
            # order, exactly as the separate reduction kernel would.
            tl.debug_barrier()
            cnt = cnt_ptr + pid_m * tl.num_programs(0) + pid_n
            ticket = tl.atomic_add(cnt, 1, sem="acq_rel")
            if ticket == SPLIT_K - 1:
                total = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
                p_ptrs = part_ptr + tile_offs
                for _ in tl.static_range(SPLIT_K):
                    total += tl.load(p_ptrs, mask=out_mask, other=0.0, cache_modifier=".cg")
                    p_ptrs += M * N
                _write_output(total, alpha, bias_ptr, y_ptr, offs_m, offs_n, M, N, stride_ym,
                              BLOCK_N, HAS_BIAS, OUT_BF16_BITS)
                tl.atomic_xchg(cnt, 0)  # ready for the next launch (graph replays included)
    elif SPILL:
        # All splits in this program with one accumulator: the running total
        # ((p0 + p1) + p2) + ... waits in a float32 buffer between splits. Each
        # step adds the same two float32 values as inline's ``total += p_s``
        # (x + y == y + x, and 0 + p0 == p0 up to the sign of a zero).
        tile_offs = offs_m.to(tl.int64)[None, :] * N + offs_n[:, None]
        out_mask = (offs_m[None, :] < M) & (offs_n[:, None] < N)
        sp_ptrs = part_ptr + tile_offs
        for split in tl.static_range(SPLIT_K):
            acc = _split_partial(x_ptr, w_ptr, s_ptr, split, offs_m, offs_n, M, K, N_PAD,
                                 stride_xm, stride_wd, BLOCK_M, BLOCK_N, BLOCK_K, CHUNK_K,
                                 STEPS_PER_SPLIT, OP_DTYPE, DENSE_W, INTERPRET, NUM_STAGES)
            if split > 0:
                tl.debug_barrier()  # the running total was stored by other threads of this program
                acc = tl.load(sp_ptrs, mask=out_mask, other=0.0) + acc
            if split < SPLIT_K - 1:
                tl.store(sp_ptrs, acc, mask=out_mask)
        _write_output(acc, alpha, bias_ptr, y_ptr, offs_m, offs_n, M, N, stride_ym,
                      BLOCK_N, HAS_BIAS, OUT_BF16_BITS)
    else:
        total = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
        for split in tl.static_range(SPLIT_K):
            total += _split_partial(x_ptr, w_ptr, s_ptr, split, offs_m, offs_n, M, K, N_PAD,
                                    stride_xm, stride_wd, BLOCK_M, BLOCK_N, BLOCK_K, CHUNK_K,
                                    STEPS_PER_SPLIT, OP_DTYPE, DENSE_W, INTERPRET, NUM_STAGES)
        _write_output(total, alpha, bias_ptr, y_ptr, offs_m, offs_n, M, N, stride_ym,
                      BLOCK_N, HAS_BIAS, OUT_BF16_BITS)


# -----------------------------------------------------------------------------
# Whole-weight dequantization (large M: the GEMM then reads operands from memory)
# -----------------------------------------------------------------------------


@triton.jit
def _dequant_weight_kernel(
    w_ptr, s_ptr, out_ptr,
    N_PAD,
    stride_om,
    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, CHUNK_K: tl.constexpr,
    OP_DTYPE: tl.constexpr, INTERPRET: tl.constexpr,
):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    step = tl.program_id(1)
    w = _load_weight_tile(w_ptr, s_ptr, step, offs_n, N_PAD, BLOCK_N, BLOCK_K, CHUNK_K,
                          OP_DTYPE, INTERPRET)
    offs_k = step * BLOCK_K + tl.arange(0, BLOCK_K)
    tl.store(out_ptr + offs_n.to(tl.int64)[:, None] * stride_om + offs_k[None, :], w)


# -----------------------------------------------------------------------------
# Fixed-order split-K reduction (PARTIAL mode)
# -----------------------------------------------------------------------------


@triton.jit
def _splitk_reduce_kernel(
    part_ptr, bias_ptr, y_ptr,
    M, N, MN,
    stride_ym,
    alpha,
    SPLIT_K: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK: tl.constexpr,
    OUT_BF16_BITS: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < MN
    m = offs // N
    n = offs % N
    total = tl.zeros((BLOCK,), dtype=tl.float32)
    p_ptrs = part_ptr + offs
    for _ in tl.static_range(SPLIT_K):
        total += tl.load(p_ptrs, mask=mask, other=0.0)
        p_ptrs += MN  # pointer steps: no 32-bit split * M * N product
    if HAS_BIAS:
        bias = tl.load(bias_ptr + n, mask=mask, other=0.0).to(tl.float32)
    else:
        bias = tl.zeros((BLOCK,), dtype=tl.float32)
    y = _epilogue(total, alpha, bias)
    _store_out(y_ptr + m * stride_ym + n, y, mask, OUT_BF16_BITS)


# -----------------------------------------------------------------------------
# Launcher
# -----------------------------------------------------------------------------

_REDUCE_BLOCK = 1024


def _check(x: torch.Tensor, weights: DequantWeights, plan: GemmPlan, bias: torch.Tensor | None,
           tile: TileConfig) -> bool:
    """Validate everything; return whether to run under the interpreter."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"x must be a 2-D tensor [M, K], got {getattr(x, 'shape', type(x).__name__)}")
    if x.dtype not in OPERAND_DTYPES:
        raise ValueError(f"x must be bfloat16 or float16, got {x.dtype}")
    if x.shape[1] != weights.k:
        raise ValueError(f"x has K={x.shape[1]} (shape {tuple(x.shape)}), the weight has K={weights.k}")
    if x.shape[1] > 0 and x.stride(1) != 1:
        raise ValueError(f"x must have unit stride along K, got strides {tuple(x.stride())}")
    if x.device != weights.words.device:
        raise ValueError(f"x is on {x.device}, the weight on {weights.words.device}")
    if (plan.n, plan.k, plan.block_k) != (weights.n, weights.k, weights.block_k) or \
            plan.k_chunks != weights.k_chunks or plan.n_pad != weights.n_pad:
        raise ValueError(
            f"plan (N={plan.n}, K={plan.k}, block_k={plan.block_k}, chunks={plan.k_chunks}, "
            f"n_pad={plan.n_pad}) does not match the prepared weight (N={weights.n}, K={weights.k}, "
            f"block_k={weights.block_k}, chunks={weights.k_chunks}, n_pad={weights.n_pad})"
        )
    if plan.block_k % tile.block_k and tile.block_k % plan.block_k:
        raise ValueError(f"tile block_k={tile.block_k} and plan block_k={plan.block_k} must nest")
    if tile.reduce in ("partial", "fused") and plan.split_k == 1:
        raise ValueError(f"reduce={tile.reduce!r} needs split_k > 1; use 'inline' for a single split")
    if weights.words.numel() >= 2**31:
        raise ValueError(f"the packed weight has {weights.words.numel()} bytes; 32-bit offsets need "
                         "fewer than 2**31")
    if bias is not None:
        if tuple(bias.shape) != (weights.n,):
            raise ValueError(f"bias must have shape ({weights.n},), got {tuple(bias.shape)}")
        if bias.device != x.device:
            raise ValueError(f"bias is on {bias.device}, x on {x.device}")
        if not bias.is_floating_point():
            raise ValueError(f"bias must be floating point, got {bias.dtype}")
    interpret = x.device.type == "cpu"
    if interpret and not current_platform().triton_interpret:
        raise ValueError("CPU tensors run only under the Triton interpreter: set TRITON_INTERPRET=1 "
                         "before triton is imported")
    if not interpret and x.device.type != "cuda":
        raise ValueError(f"x must be on a CUDA device or the CPU (interpreter), got {x.device}")
    return interpret


def nvfp4_dequant_gemm(
    x: torch.Tensor,
    weights: DequantWeights,
    plan: GemmPlan,
    alpha: float,
    bias: torch.Tensor | None = None,
    tile: TileConfig | None = None,
    counters: torch.Tensor | None = None,
    pdl: bool = False,
) -> torch.Tensor:
    """``y [M, N] = alpha * x @ dequant(W).T * 2**-8 (+ bias)`` in ``x.dtype``.

    Args:
        x: ``[M, K]`` bf16/fp16, unit stride along K (CUDA, or CPU under the interpreter).
        weights: from :func:`kernels.gemm.layout.pack_dequant_weights` with ``plan.block_k``.
        plan: :func:`kernels.gemm.plan.plan_for` of the weight shape (fixes the reduction order).
        alpha: float32 epilogue factor (see the module docstring).
        bias: ``[N]`` float tensor or None.
        tile: speed-only tile config; default :func:`kernels.gemm.plan.tile_for`.
        counters: ``int32`` zeros on ``x.device``, at least one per output tile
            (:func:`counter_slots`), for ``reduce="fused"``; every launch leaves
            them zero again, so one buffer serves every call and CUDA-graph
            replay (not two launches running at once). None: a fresh buffer.
        pdl: launch as a programmatic dependent of the previous kernel (CUDA
            sm90+ only; ignored elsewhere). Speed only.
    Raises:
        ValueError: before anything is allocated or launched, on any mismatch.
    """
    m = x.shape[0] if isinstance(x, torch.Tensor) and x.dim() == 2 else 0
    tile = tile or tile_for(max(m, 1), plan)
    interpret = _check(x, weights, plan, bias, tile)
    fused = tile.reduce == "fused"
    if fused and m > 0:
        need = counter_slots(m, weights.n, tile)
        if counters is None:
            counters = torch.zeros(need, dtype=torch.int32, device=x.device)
        elif counters.dtype != torch.int32 or counters.device != x.device or counters.numel() < need:
            raise ValueError(f"counters must be int32 on {x.device} with at least {need} elements "
                             f"(one per output tile), got {counters.dtype} {tuple(counters.shape)} "
                             f"on {counters.device}")
    n = weights.n
    y = torch.empty((m, n), dtype=x.dtype, device=x.device)
    if m == 0:
        return y
    op_dtype = tl.float16 if x.dtype == torch.float16 else tl.bfloat16
    block_k = min(tile.block_k, plan.block_k)
    partial = tile.reduce in ("partial", "fused")
    spill = tile.reduce == "spill" and plan.split_k > 1
    if partial:
        part = torch.empty((plan.split_k, m, n), dtype=torch.float32, device=x.device)
    elif spill:  # one running total per output of a launch (a stripe's, when striped)
        part = torch.empty((m, min(tile.stripe_n or n, n)), dtype=torch.float32, device=x.device)
    else:
        part = y
    # The interpreter truncates float32 -> bf16; the kernel rounds by hand and
    # writes the bits through an int16 view of the same memory.
    out_bits = interpret and x.dtype == torch.bfloat16
    y_arg = y.view(torch.int16) if out_bits else y
    pdl = bool(pdl) and not interpret and torch.cuda.get_device_capability(x.device)[0] >= 9
    launch = functools.partial(
        _launch_gemm, x, tile, plan, weights.k, weights.n_pad, float(alpha), op_dtype, block_k,
        partial, fused, spill, interpret, out_bits, pdl)
    counters_arg = counters if fused else y  # never read unless fused
    if not tile.dense:
        launch(weights.words.view(torch.int32), weights.scale_codes, 0, n, bias, y_arg, part, counters_arg)
    else:
        # Large M: decode the weight (whole, or one stripe of rows at a time
        # into one reused scratch stripe, which the GEMM then finds in L2);
        # its values are exactly the in-register decode's, and the GEMM on
        # plain operands computes each output element as it would unstriped.
        stripe = tile.stripe_n or weights.n_pad
        wd = torch.empty((min(stripe, weights.n_pad), plan.k_pad),
                         dtype=torch.float32 if interpret else x.dtype, device=x.device)
        for n0 in range(0, n, stripe):
            rows = min(stripe, weights.n_pad - n0)
            _decode_rows(weights, n0, rows, wd, plan.block_k, op_dtype, interpret)
            stripe_n = min(stripe, n - n0)
            launch(wd, weights.scale_codes, wd.stride(0), stripe_n,
                   None if bias is None else bias[n0:n0 + stripe_n], y_arg[:, n0:n0 + stripe_n], part,
                   counters_arg)
    if partial and not fused:
        launch_splitk_reduce(part, bias, y_arg, y.stride(0), alpha, plan.split_k, out_bits)
    return y


def _decode_rows(weights: DequantWeights, n0: int, rows: int, out: torch.Tensor, chunk_k: int,
                 op_dtype, interpret: bool) -> None:
    """Decode weight rows ``[n0, n0 + rows)`` (a multiple of 64) into ``out[:rows]`` (row-major)."""
    dq_k = min(128, chunk_k)
    _dequant_weight_kernel[(rows // 64, out.shape[1] // dq_k)](
        weights.words[:, n0:].view(torch.int32), weights.scale_codes[:, n0:], out, weights.n_pad,
        out.stride(0), BLOCK_N=64, BLOCK_K=dq_k, CHUNK_K=chunk_k, OP_DTYPE=op_dtype,
        INTERPRET=interpret, num_warps=4,
    )


def _launch_gemm(x, tile: TileConfig, plan: GemmPlan, k: int, n_pad: int, alpha: float, op_dtype,
                 block_k: int, partial: bool, fused: bool, spill: bool, interpret: bool, out_bits: bool,
                 pdl: bool, w_arg, scale_codes, stride_wd: int, n: int, bias, y_arg, part, counters) -> None:
    """One launch of the GEMM kernel over ``n`` weight rows (all of them, or a dense stripe).

    ``y_arg`` (and ``bias``) start at the launch's first weight row; ``part``
    is the float32 scratch the reduction mode needs (``[M, n]`` contiguous for
    ``spill``), else unused.
    """
    m = x.shape[0]
    grid_m = triton.cdiv(m, tile.block_m)
    grid_n = triton.cdiv(n, tile.block_n)
    grid = (grid_n, grid_m, plan.split_k) if partial else (grid_n * grid_m,)
    _nvfp4_dequant_gemm_kernel[grid](
        x, w_arg, scale_codes, bias if bias is not None else y_arg, y_arg, part, counters,
        m, n, k, n_pad,
        x.stride(0), y_arg.stride(0), stride_wd,
        alpha,
        BLOCK_M=tile.block_m, BLOCK_N=tile.block_n, BLOCK_K=block_k, CHUNK_K=plan.block_k,
        SPLIT_K=plan.split_k, STEPS_PER_SPLIT=plan.chunks_per_split * (plan.block_k // block_k),
        GROUP_M=tile.group_m,
        PARTIAL=partial, FUSED=fused, SPILL=spill, HAS_BIAS=bias is not None, OP_DTYPE=op_dtype,
        DENSE_W=tile.dense, INTERPRET=interpret, NUM_STAGES=tile.num_stages,
        OUT_BF16_BITS=out_bits, PDL=pdl, num_warps=tile.num_warps, num_stages=tile.num_stages,
        launch_pdl=pdl,
    )


def counter_slots(m: int, n: int, tile: TileConfig) -> int:
    """Ticket counters a ``reduce="fused"`` launch of ``m`` rows and ``n`` outputs needs."""
    return triton.cdiv(n, tile.block_n) * triton.cdiv(max(m, 1), tile.block_m)


def launch_splitk_reduce(part: torch.Tensor, bias: torch.Tensor | None, y: torch.Tensor,
                         stride_ym: int, alpha: float, split_k: int, out_bits: bool) -> None:
    """Sum the ``[split_k, M, N]`` float32 partials in split order and write the epilogue into ``y``."""
    _, m, n = part.shape
    _splitk_reduce_kernel[(triton.cdiv(m * n, _REDUCE_BLOCK),)](
        part, bias if bias is not None else y, y, m, n, m * n, stride_ym, float(alpha),
        SPLIT_K=split_k, HAS_BIAS=bias is not None, BLOCK=_REDUCE_BLOCK, OUT_BF16_BITS=out_bits,
    )
