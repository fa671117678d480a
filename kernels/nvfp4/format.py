"""The NVFP4 format in pure torch (CPU and CUDA): quantize, dequantize, pack.

Layout of one NVFP4 tensor ``x`` of logical shape ``[..., K]``:

* **codes**: FP4 E2M1, values ``±{0, 0.5, 1, 1.5, 2, 3, 4, 6}``; bit 3 is the
  sign, bits 0-2 index :data:`E2M1_MAGNITUDES`. Two codes per ``uint8`` along
  K: element ``2j`` in the **low** nibble, element ``2j+1`` in the high nibble.
  Packed shape ``[..., K // 2]``, dtype ``torch.uint8``.
* **block scales**: one FP8 E4M3 (``torch.float8_e4m3fn``) per 16 consecutive
  elements along K, shape ``[..., K // 16]``, in *linear* (row-major) order.
  The swizzled layout that Blackwell libraries want is in :mod:`.layout`.
* **global scale**: one FP32 scalar per tensor, the *quantization multiplier*
  ``global_scale = 448 * 6 / amax(|x|)`` (the inference-engine convention).
  Some checkpoints (ModelOpt, torchao) store instead a *decode scale*
  ``f = amax(|x|) / (448 * 6)`` that the decode multiplies by; its float32
  reciprocal is then the multiplier that quantizes, and the decode uses ``f``
  as stored (``1 / fl32(1 / f)`` is not always ``f``).

Quantization of one block ``b`` (all arithmetic in float32)::

    block_scale = e4m3(min(global_scale * amax(|x_b|) / 6, 448))
    code        = e2m1_rne(clamp((x * global_scale) / block_scale, -6, 6))

and dequantization is ``(e2m1_value(code) * block_scale) / global_scale``, or
``(e2m1_value(code) * block_scale) * decode_scale`` for a tensor that carries a
stored decode scale. ``e2m1_value(code) * block_scale`` is exact in float32
(and in bf16: 2 + 4 significant bits), so the only rounding of a dequantized
value is the final division or multiplication: the decoded value is the
correctly rounded ``code * block_scale / global_scale`` (or ``* decode_scale``).

Non-finite inputs (documented behaviour, tested):

* ``NaN`` elements are encoded as ``+0`` and are ignored by their block's amax;
* ``±inf`` elements saturate: their block scale becomes 448 (the E4M3 max) and
  the element the code ``±6``; other elements of that block then quantize
  against that huge scale and mostly become 0;
* a block (or tensor) of zeros has block scale 0 and codes 0.

Invalid arguments (K not a multiple of 16, wrong dtypes, a non-finite or
non-positive global scale, a meta tensor that holds no data) raise
:class:`~kernels.errors.FormatError` before any work is done.
"""

from __future__ import annotations

import torch

from kernels.errors import FormatError

__all__ = [
    "BLOCK_SIZE",
    "E2M1_MAGNITUDES",
    "E2M1_MAX",
    "E4M3_MAX",
    "FP4_DTYPE_BYTES",
    "MIN_AMAX",
    "check_global_scale",
    "check_materialized",
    "decode_scale_reciprocal",
    "dequantize",
    "dequantize_raw",
    "e2m1_codes_to_float",
    "e2m1_lut",
    "e2m1_round",
    "global_scale_from_amax",
    "pack_fp4",
    "quantize",
    "quantize_dequantize",
    "quantize_raw",
    "unpack_fp4",
]

BLOCK_SIZE = 16
E2M1_MAX = 6.0
E4M3_MAX = 448.0
#: bytes per element of packed FP4 data
FP4_DTYPE_BYTES = 0.5
#: E2M1 magnitudes indexed by the three low bits of a code.
E2M1_MAGNITUDES: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)

# Decision boundaries between consecutive magnitudes, and whether a value
# exactly on a boundary rounds *up* (to the code above it). Ties go to the even
# code (even mantissa bit): 0.25 -> 0, 0.75 -> 1.0, 1.25 -> 1.0, 1.75 -> 2.0,
# 2.5 -> 2.0, 3.5 -> 4.0, 5.0 -> 4.0.
_BOUNDARIES = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)
_TIE_ROUNDS_UP = tuple((i + 1) % 2 == 0 for i in range(len(_BOUNDARIES)))

_FLOAT_INPUTS = (torch.float32, torch.float16, torch.bfloat16)

#: The smallest amax with a finite float32 global scale ``448 * 6 / amax`` (about 7.9e-36):
#: a tensor whose largest magnitude is below it cannot be scaled into NVFP4's range.
MIN_AMAX = E4M3_MAX * E2M1_MAX / float(torch.finfo(torch.float32).max)


def check_materialized(tensor: torch.Tensor, what: str) -> None:
    """Refuse a meta tensor (a shape and a dtype, no data) with a :class:`FormatError`.

    Models built on the ``meta`` device (deferred or lazy loading) hold such
    tensors until their weights are loaded; quantizing, validating or
    launching on one would fail inside torch ("Cannot copy out of meta tensor").
    """
    if isinstance(tensor, torch.Tensor) and tensor.is_meta:
        raise FormatError(
            f"{what} is a meta tensor (a shape and a dtype, no data): materialize it first "
            "(a model built on the meta device: module.to_empty(device=...), then load its "
            "state dict)"
        )


def e2m1_lut(device: torch.device | str = "cpu") -> torch.Tensor:
    """The 16-entry code -> float32 table on ``device``.

    Built on request: a module-level tensor would have to be moved with
    ``.to(device)`` at call time, which is illegal while a CUDA graph is
    captured. Kernels build it once at weight-processing time and pass it to
    :func:`dequantize_raw`.
    """
    mags = torch.tensor(E2M1_MAGNITUDES, dtype=torch.float32, device=device)
    return torch.cat([mags, -mags])


def e2m1_round(x: torch.Tensor) -> torch.Tensor:
    """Round float values (already clamped to ±6) to E2M1 codes, ties to even.

    Args:
        x: float tensor of any shape. Values beyond ±6 saturate to ±6; NaN
            becomes code 0.
    Returns:
        ``uint8`` tensor of the same shape holding codes 0..15 (bit 3 = sign).
    """
    xf = x.float()
    mag = xf.abs()
    code = torch.zeros(x.shape, dtype=torch.uint8, device=x.device)
    for bound, up in zip(_BOUNDARIES, _TIE_ROUNDS_UP, strict=True):
        above = (mag >= bound) if up else (mag > bound)
        code += above.to(torch.uint8)
    # NaN compares false everywhere, so its magnitude code is 0; give it a + sign.
    # Negative values that round to zero keep their sign (code 8 is -0), as IEEE casts do.
    negative = torch.signbit(xf) & ~torch.isnan(xf)
    return code | (negative.to(torch.uint8) << 3)


def e2m1_codes_to_float(codes: torch.Tensor) -> torch.Tensor:
    """Map ``uint8`` codes 0..15 to their float32 values."""
    if codes.dtype != torch.uint8:
        raise FormatError(f"E2M1 codes must be torch.uint8, got {codes.dtype}")
    return e2m1_lut(codes.device)[(codes & 0xF).long()]


def pack_fp4(codes: torch.Tensor) -> torch.Tensor:
    """Pack codes ``[..., K]`` (uint8, 0..15) into bytes ``[..., K // 2]``.

    Element ``2j`` goes to the low nibble, element ``2j+1`` to the high nibble.
    """
    if codes.dtype != torch.uint8:
        raise FormatError(f"pack_fp4 expects torch.uint8 codes, got {codes.dtype}")
    if codes.shape[-1] % 2:
        raise FormatError(f"pack_fp4 needs an even last dimension, got shape {tuple(codes.shape)}")
    low = codes[..., 0::2] & 0xF
    high = codes[..., 1::2] & 0xF
    return low | (high << 4)


def unpack_fp4(packed: torch.Tensor) -> torch.Tensor:
    """Unpack bytes ``[..., K // 2]`` into codes ``[..., K]`` (inverse of :func:`pack_fp4`)."""
    if packed.dtype != torch.uint8:
        raise FormatError(f"unpack_fp4 expects torch.uint8, got {packed.dtype}")
    low = packed & 0xF
    high = packed >> 4
    return torch.stack([low, high], dim=-1).reshape(*packed.shape[:-1], packed.shape[-1] * 2)


def check_global_scale(global_scale: torch.Tensor | float, what: str = "global_scale") -> torch.Tensor:
    """Validate a global scale and return it as a float32 scalar tensor.

    A global scale must be a finite, strictly positive scalar.
    """
    check_materialized(global_scale, what)  # type: ignore[arg-type]
    gs = torch.as_tensor(global_scale)
    if gs.numel() != 1:
        raise FormatError(f"{what} must be a scalar, got shape {tuple(gs.shape)}")
    if not gs.is_floating_point():
        raise FormatError(f"{what} must be a floating-point value, got {gs.dtype}")
    gs = gs.reshape(()).float()
    value = float(gs)
    if not (value > 0.0 and value != float("inf")):
        raise FormatError(f"{what} must be finite and > 0, got {value}")
    return gs


def global_scale_from_amax(amax: torch.Tensor | float, what: str = "amax") -> torch.Tensor:
    """``448 * 6 / amax``, the quantization multiplier for a tensor whose max |x| is ``amax``.

    Raises :class:`FormatError` naming ``what`` when ``amax`` is not finite or
    not > 0, or so small (below :data:`MIN_AMAX`) that the multiplier is not a
    finite float32.
    """
    check_materialized(amax, what)  # type: ignore[arg-type]
    a = torch.as_tensor(amax, dtype=torch.float32)
    if a.numel() != 1:
        raise FormatError(f"{what} must be a scalar, got shape {tuple(a.shape)}")
    # the value as given (a weight's amax of 1e-40 is printed as such, not as its float32)
    given = float(amax.reshape(()).double()) if isinstance(amax, torch.Tensor) else float(amax)
    value = float(a)
    if not (value > 0.0 and value != float("inf")):
        raise FormatError(f"{what} must be finite and > 0 to give a global scale, got {given:.6g}")
    gs = torch.tensor(E4M3_MAX * E2M1_MAX, dtype=torch.float32) / a.reshape(())
    if not torch.isfinite(gs):
        raise FormatError(
            f"{what} {given:.6g} is too small: the global scale 448 * 6 / amax overflows float32 "
            f"(the smallest amax NVFP4 can scale is {MIN_AMAX:.3g})"
        )
    return check_global_scale(gs)


def _check_input(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise FormatError(f"expected a torch.Tensor, got {type(x).__name__}")
    check_materialized(x, "the tensor to quantize")
    if x.dtype not in _FLOAT_INPUTS:
        raise FormatError(
            f"NVFP4 quantization takes float32, float16 or bfloat16, got {x.dtype}"
        )
    if x.dim() == 0:
        raise FormatError("NVFP4 quantization needs at least one dimension (K)")
    if x.shape[-1] % BLOCK_SIZE:
        raise FormatError(
            f"the last dimension K={x.shape[-1]} must be a multiple of the block size "
            f"{BLOCK_SIZE} (shape {tuple(x.shape)})"
        )


def quantize(
    x: torch.Tensor, global_scale: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize ``x`` ``[..., K]`` to NVFP4.

    Args:
        x: float32/float16/bfloat16 tensor, K a multiple of 16.
        global_scale: the quantization multiplier (see the module docstring).
    Returns:
        ``(packed, block_scale)``: ``uint8 [..., K // 2]`` and
        ``float8_e4m3fn [..., K // 16]`` (linear layout).
    """
    _check_input(x)
    gs = check_global_scale(global_scale).to(x.device)
    return quantize_raw(x, gs)


def quantize_raw(x: torch.Tensor, global_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`quantize` without validation or host synchronisation.

    For kernels that validated their scales once at weight-processing time;
    safe inside CUDA-graph capture. ``global_scale`` must be a float32 scalar
    tensor on ``x``'s device.
    """
    gs = global_scale
    xf = x.float()
    blocks = xf.reshape(*x.shape[:-1], x.shape[-1] // BLOCK_SIZE, BLOCK_SIZE)
    finite_abs = torch.nan_to_num(blocks.abs(), nan=0.0)  # NaN ignored, inf kept
    block_amax = finite_abs.amax(dim=-1, keepdim=True)
    raw_scale = torch.clamp(gs * block_amax / E2M1_MAX, max=E4M3_MAX)
    block_scale = raw_scale.to(torch.float8_e4m3fn)
    scale_f = block_scale.float()
    scaled = (blocks * gs) / scale_f
    scaled = torch.where(scale_f == 0, torch.zeros_like(scaled), scaled)
    scaled = torch.clamp(scaled, -E2M1_MAX, E2M1_MAX)  # clamp keeps NaN; e2m1_round maps it to 0
    codes = e2m1_round(scaled).reshape(x.shape)
    return pack_fp4(codes), block_scale.squeeze(-1)


def decode_scale_reciprocal(decode_scale: torch.Tensor | float, what: str = "decode_scale") -> torch.Tensor:
    """The quantization multiplier of a stored decode scale ``f``: ``fl32(1 / f)``, float32 scalar.

    ``f`` is validated like a global scale (finite, > 0, a scalar) and the
    reciprocal must be finite (``f`` not below ``2**-128``).
    """
    f = check_global_scale(decode_scale, what)
    return check_global_scale(torch.tensor(1.0, dtype=torch.float32, device=f.device) / f,
                              f"1 / {what}")


def dequantize(
    packed: torch.Tensor,
    block_scale: torch.Tensor,
    global_scale: torch.Tensor | float | None = None,
    dtype: torch.dtype = torch.float32,
    *,
    decode_scale: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """Dequantize NVFP4 ``packed [..., K//2]`` with ``block_scale [..., K//16]`` to ``dtype``.

    The tensor-wide scale is given either way, exactly one of the two:

    * ``global_scale``, the quantization multiplier: computed in float32 as
      ``(e2m1_value * block_scale) / global_scale``;
    * ``decode_scale``, a checkpoint's stored decode factor ``f``: computed in
      float32 as ``(e2m1_value * block_scale) * f``.

    Either way the product before the last operation is exact, so every
    value is rounded once to float32, then cast to ``dtype``.
    """
    check_materialized(packed, "packed NVFP4 data")
    check_materialized(block_scale, "block_scale")
    if packed.dtype != torch.uint8:
        raise FormatError(f"packed NVFP4 data must be torch.uint8, got {packed.dtype}")
    if block_scale.dtype != torch.float8_e4m3fn:
        raise FormatError(f"block scales must be torch.float8_e4m3fn, got {block_scale.dtype}")
    k = packed.shape[-1] * 2
    if k % BLOCK_SIZE:
        raise FormatError(f"K={k} (2 x {packed.shape[-1]} bytes) is not a multiple of {BLOCK_SIZE}")
    expected = (*packed.shape[:-1], k // BLOCK_SIZE)
    if tuple(block_scale.shape) != expected:
        raise FormatError(
            f"block_scale shape {tuple(block_scale.shape)} does not match packed shape "
            f"{tuple(packed.shape)}: expected {expected}"
        )
    if (global_scale is None) == (decode_scale is None):
        raise FormatError(
            "dequantize takes exactly one of global_scale (the quantization multiplier, "
            "divided by) and decode_scale (a stored decode factor, multiplied by); got "
            + ("both" if global_scale is not None else "neither")
        )
    if decode_scale is not None:
        f = check_global_scale(decode_scale, "decode_scale").to(packed.device)
        return dequantize_raw(packed, block_scale, None, dtype, decode_scale=f)
    gs = check_global_scale(global_scale, "global_scale").to(packed.device)  # type: ignore[arg-type]
    return dequantize_raw(packed, block_scale, gs, dtype)


def dequantize_raw(
    packed: torch.Tensor,
    block_scale: torch.Tensor,
    global_scale: torch.Tensor | None,
    dtype: torch.dtype = torch.float32,
    lut: torch.Tensor | None = None,
    *,
    decode_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`dequantize` without validation or host synchronisation.

    ``decode_scale``, when given, is multiplied by and ``global_scale`` is
    not used; otherwise ``global_scale`` is divided by. Both are float32
    scalar tensors on ``packed``'s device. ``lut`` is the :func:`e2m1_lut`
    table on ``packed``'s device (built here when omitted, which is not
    allowed during CUDA-graph capture).
    """
    k = packed.shape[-1] * 2
    table = e2m1_lut(packed.device) if lut is None else lut
    values = table[unpack_fp4(packed).long()]
    values = values.reshape(*packed.shape[:-1], k // BLOCK_SIZE, BLOCK_SIZE)
    exact = values * block_scale.float().unsqueeze(-1)
    if decode_scale is not None:
        out = exact * decode_scale
    else:
        assert global_scale is not None, "dequantize_raw needs global_scale or decode_scale"
        out = exact / global_scale
    return out.reshape(*packed.shape[:-1], k).to(dtype)


def quantize_dequantize(
    x: torch.Tensor, global_scale: torch.Tensor | float, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Round-trip ``x`` through NVFP4 (row-local: each block uses only its own values)."""
    packed, scale = quantize(x, global_scale)
    return dequantize(packed, scale, global_scale, dtype)
