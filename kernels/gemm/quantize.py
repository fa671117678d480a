"""Row-local NVFP4 activation quantization in Triton (the W4A4 input side of the GEMMs).

For each row of ``x [M, K]`` and each 16-element block ``b`` of it, with the
layer's *static* input global scale ``gs`` (never an amax over the batch, so a
row's codes never depend on the other rows)::

    block_scale = e4m3_rne(min(gs * amax(|x_b|) / 6, 448))          (NaN ignored in the amax)
    code        = e2m1_rne((x * gs) / block_scale)                  (0 where block_scale == 0)
    value       = e2m1(code) * block_scale                          (exact in bf16 and fp16)

in float32, operation for operation as :func:`kernels.nvfp4.format.quantize_raw`
does it, so codes and scales are bitwise the same. The E4M3 rounding is done
with integer operations (same bits on every GPU and in the interpreter); the
E2M1 rounding compares the unclamped magnitude with the decision boundaries,
which equals rounding the clamped value (the boundaries are all below 6) and
leaves NaN on code 0 without relying on min/max NaN rules.

Outputs (any subset):

* ``values``: ``[M, K]`` in ``x.dtype``, the dequantized activations without
  the global scale (``code * block_scale``): the explicit-dequant GEMM's input;
* ``codes``: ``uint8 [M, K // 2]``, low nibble first; ``scales``:
  ``float8_e4m3fn [M, K // 16]``: the ``tl.dot_scaled`` GEMM's inputs.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.platform import current_platform

__all__ = ["nvfp4_quantize"]

_BLOCK_Q = 512  # elements of one row per program (32 NVFP4 blocks)


# -----------------------------------------------------------------------------
# Rounding helpers
# -----------------------------------------------------------------------------


@triton.jit
def _round_e4m3(v):
    """float32 ``v`` in [0, 448] -> (nearest-even E4M3 value as float32, its byte as int32)."""
    bits = v.to(tl.uint32, bitcast=True)
    # Normal range (>= 2**-6): keep 3 mantissa bits, ties to even.
    rn = (bits + 0x7FFFF + ((bits >> 20) & 1)) & 0xFFF00000
    normal = rn.to(tl.float32, bitcast=True)
    e = ((rn >> 23) & 0xFF).to(tl.int32) - 120
    normal_byte = (e << 3) | ((rn >> 20) & 0x7).to(tl.int32)
    # Subnormal range: multiples of 2**-9, ties to even (the 2**23 trick is exact here).
    q = v * 512.0
    q = (q + 8388608.0) - 8388608.0
    sub = q * (1.0 / 512.0)
    sub_byte = q.to(tl.int32)   # 8 means 2**-6, which is also the normal byte 0x08
    is_normal = v >= 0.015625
    return tl.where(is_normal, normal, sub), tl.where(is_normal, normal_byte, sub_byte)


@triton.jit
def _e2m1_code(scaled):
    """float32 -> E2M1 code (int32 0..15), as kernels.nvfp4.format.e2m1_round on the clamped value."""
    mag = tl.abs(scaled)
    code = ((mag > 0.25).to(tl.int32) + (mag >= 0.75).to(tl.int32) + (mag > 1.25).to(tl.int32)
            + (mag >= 1.75).to(tl.int32) + (mag > 2.5).to(tl.int32) + (mag >= 3.5).to(tl.int32)
            + (mag > 5.0).to(tl.int32))
    negative = ((scaled.to(tl.uint32, bitcast=True) >> 31) != 0) & (scaled == scaled)
    return code | (negative.to(tl.int32) << 3)


@triton.jit
def _e2m1_value(code):
    """E2M1 code (int32) -> float32 value (signed; code 8 is -0.0)."""
    mag = code & 0x7
    e = mag >> 1
    lo = (mag & 1).to(tl.float32)
    value = tl.where(e == 0, lo * 0.5, (2.0 + lo) * (1 << e).to(tl.float32) * 0.25)
    return tl.where((code & 0x8) != 0, -value, value)


# -----------------------------------------------------------------------------
# Kernel: one row segment of BLOCK_Q elements per program
# -----------------------------------------------------------------------------


@triton.jit
def _nvfp4_quantize_kernel(
    # Pointers
    x_ptr, v_ptr, c_ptr, s_ptr,
    # Sizes
    M, K,
    # Strides
    stride_xm, stride_vm, stride_cm, stride_sm,
    # The static global scale (float32)
    global_scale,
    # Meta-parameters
    BLOCK_Q: tl.constexpr, WRITE_VALUES: tl.constexpr, WRITE_CODES: tl.constexpr,
    VALUES_BF16_BITS: tl.constexpr, PDL: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    NB: tl.constexpr = BLOCK_Q // 16
    offs = tl.program_id(1) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    mask = offs < K
    x = tl.load(x_ptr + row * stride_xm + offs, mask=mask, other=0.0).to(tl.float32)
    xb = tl.reshape(x, (NB, 16))
    # -------------------------------------------------------------------------
    # Block scales: amax (NaN ignored, inf kept), * gs / 6, min 448, E4M3
    # -------------------------------------------------------------------------
    a = tl.abs(xb)
    a = tl.where(a == a, a, 0.0)
    amax = tl.max(a, axis=1)
    raw = tl.math.div_rn(global_scale * amax, 6.0)
    raw = tl.where(raw > 448.0, 448.0, raw)
    scale, scale_byte = _round_e4m3(raw)
    # -------------------------------------------------------------------------
    # Codes: (x * gs) / scale, 0 where the scale is 0, E2M1 nearest-even
    # -------------------------------------------------------------------------
    sb = scale[:, None]
    scaled = tl.math.div_rn(xb * global_scale, tl.broadcast_to(sb, (NB, 16)))
    scaled = tl.where(sb == 0.0, 0.0, scaled)
    code = _e2m1_code(scaled)
    if WRITE_VALUES:
        val = tl.reshape(_e2m1_value(code) * sb, (BLOCK_Q,))
        v_ptrs = v_ptr + row * stride_vm + offs
        if VALUES_BF16_BITS:
            # exact values: the high half of the float32 pattern is the bf16 pattern
            bits = (val.to(tl.uint32, bitcast=True) >> 16).to(tl.uint16).to(tl.int16, bitcast=True)
            tl.store(v_ptrs, bits, mask=mask)
        else:
            tl.store(v_ptrs, val.to(v_ptr.dtype.element_ty), mask=mask)
    if WRITE_CODES:
        pairs = tl.reshape(code, (BLOCK_Q // 2, 2))
        lo, hi = tl.split(pairs)
        offs_c = tl.program_id(1) * (BLOCK_Q // 2) + tl.arange(0, BLOCK_Q // 2)
        tl.store(c_ptr + row * stride_cm + offs_c, (lo | (hi << 4)).to(tl.uint8), mask=offs_c < K // 2)
        offs_s = tl.program_id(1) * NB + tl.arange(0, NB)
        tl.store(s_ptr + row * stride_sm + offs_s, scale_byte.to(tl.uint8), mask=offs_s < K // 16)
    if PDL:
        # our stores are issued: a GEMM launched as our programmatic dependent may start
        # (it still waits for our completion before reading them)
        tl.extra.cuda.gdc_launch_dependents()


# -----------------------------------------------------------------------------
# Launcher
# -----------------------------------------------------------------------------


def nvfp4_quantize(
    x: torch.Tensor, global_scale: float, *, values: bool = True, codes: bool = False,
    pdl: bool = False,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Quantize ``x [M, K]`` row-locally with the static ``global_scale``.

    Args:
        x: bf16/fp16/fp32 ``[M, K]``, K a multiple of 16, unit stride along K.
        global_scale: the layer's static input multiplier (a float32 value).
        values: return ``code * block_scale`` in ``x.dtype`` (``[M, K]``).
        codes: return the packed codes ``uint8 [M, K // 2]`` and the block
            scales ``float8_e4m3fn [M, K // 16]``.
        pdl: let the next kernel, if launched as a programmatic dependent
            (sm90+), start early (speed only; ignored elsewhere).
    Returns:
        ``(values or None, codes or None, scales or None)``.
    Raises:
        ValueError: before anything is allocated, on a bad argument.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"x must be a 2-D tensor [M, K], got {getattr(x, 'shape', type(x).__name__)}")
    if x.dtype not in (torch.bfloat16, torch.float16, torch.float32):
        raise ValueError(f"x must be bfloat16, float16 or float32, got {x.dtype}")
    m, k = x.shape
    if k % 16:
        raise ValueError(f"K={k} (x shape {tuple(x.shape)}) is not a multiple of the block size 16")
    if k and x.stride(1) != 1:
        raise ValueError(f"x must have unit stride along K, got strides {tuple(x.stride())}")
    gs = float(global_scale)
    if not (gs > 0.0 and gs != float("inf")):
        raise ValueError(f"global_scale must be finite and > 0, got {gs}")
    if not (values or codes):
        raise ValueError("nothing to compute: values and codes are both False")
    interpret = x.device.type == "cpu"
    if interpret and not current_platform().triton_interpret:
        raise ValueError("CPU tensors run only under the Triton interpreter: set TRITON_INTERPRET=1 "
                         "before triton is imported")
    v = torch.empty((m, k), dtype=x.dtype, device=x.device) if values else None
    c = torch.empty((m, k // 2), dtype=torch.uint8, device=x.device) if codes else None
    s = torch.empty((m, k // 16), dtype=torch.uint8, device=x.device) if codes else None
    if m == 0 or k == 0:
        return v, c, None if s is None else s.view(torch.float8_e4m3fn)
    # The interpreter truncates float32 -> bf16; the values are exact, so the
    # high half of their float32 pattern is their bf16 pattern.
    bits = interpret and x.dtype == torch.bfloat16 and values
    v_arg, stride_v = x, 0            # placeholders, never written when the flag is off
    c_arg, stride_c, s_arg, stride_s = x, 0, x, 0
    if v is not None:
        v_arg, stride_v = (v.view(torch.int16) if bits else v), v.stride(0)
    if c is not None and s is not None:
        c_arg, stride_c, s_arg, stride_s = c, c.stride(0), s, s.stride(0)
    _nvfp4_quantize_kernel[(m, triton.cdiv(k, _BLOCK_Q))](
        x, v_arg, c_arg, s_arg, m, k,
        x.stride(0), stride_v, stride_c, stride_s,
        gs,
        BLOCK_Q=_BLOCK_Q, WRITE_VALUES=values, WRITE_CODES=codes, VALUES_BF16_BITS=bits,
        PDL=bool(pdl) and not interpret and torch.cuda.get_device_capability(x.device)[0] >= 9,
    )
    return v, c, None if s is None else s.view(torch.float8_e4m3fn)
