"""Offline weight layouts for the Triton NVFP4 GEMMs (pure torch, CPU or CUDA).

Both layouts are built once, at weight-processing time, from the canonical
NVFP4 tensors of :mod:`kernels.nvfp4.format` (``uint8 [N, K // 2]`` codes, low
nibble first, and ``float8_e4m3fn [N, K // 16]`` block scales).

Dequant layout (sm80 / sm90 / interpreter)
------------------------------------------
K is cut into chunks of ``block_k`` elements (128 or 256) and N is padded to
``n_align`` rows; padding holds code 0 and scale 0, so it adds exact zeros.

* **words**: ``uint8 [KC, N_pad, block_k // 2]`` with ``KC = K_pad / block_k``.
  For one chunk ``c`` and row ``n`` the ``block_k // 2`` bytes are 32-bit
  words indexed ``(q, J)``, ``q`` in 0..3 and ``J`` in 0..block_k/32-1, at byte
  offset ``q * block_k / 8 + 4 * J``. Word ``(q, J)`` holds the 8 codes of
  chunk elements ``k = 32 J + 16 s + 8 u1 + 2 q + u0`` (``s, u1, u0`` in
  {0, 1}). A thread of a Hopper/Ampere MMA owns the elements ``2 q + {0, 1, 8,
  9}`` of every 16-wide K step, so with this order its codes are contiguous
  (one 16-byte shared-memory load) instead of 2-byte pieces.
* Inside a word the 8 codes are bit-twiddled so that decoding needs only
  shifts and masks (:func:`decode_words`): output pair ``i = 2 s + u1`` is a
  bf16x2 value whose two halves (``u0`` = 0 low, 1 high) hold the code in the
  positions of a bf16 (sign bit 15, magnitude bits 8..6). That bf16 bit
  pattern *is* ``e2m1_value * 2**-126`` (``0.5`` lands on the bf16 subnormal
  ``2**-127``). Field positions in each 16-bit half:

  ====  =========  ==============  =====================================
  pair  sign bit   magnitude bits  decode
  ====  =========  ==============  =====================================
  0     15         8, 7, 6         ``w & 0x81C081C0``
  1     12         5, 4, 3         ``(w << 3) & 0x81C081C0``
  2     9          2, 1, 0         ``(w << 6) & 0x81C081C0``
  3     14         13, 11, 10      sign ``<< 1``, bit 13 ``>> 5``, 11..10 ``>> 4``
  ====  =========  ==============  =====================================

* **scale codes**: ``uint8 [KC, N_pad, block_k // 16]``. Each E4M3 block scale
  ``s`` becomes a byte ``c`` with ``bf16_bits = (c << 4) + (236 << 7)`` equal to
  ``s * 2**118`` and ``fp16_bits = (c << 7) + (12 << 10)`` equal to ``s * 2**6``
  (normal E4M3: ``c = ((e + 2) << 3) | m``; subnormals renormalised by the table
  below). Multiplying the decoded code (``* 2**-126`` in bf16, ``* 2**-14`` in
  fp16) by it gives ``code * s * 2**-8`` exactly (at most 6 significant bits);
  the ``2**8`` goes into the GEMM's float32 epilogue factor.

Preprocessing makes the block scales non-negative and non-zero-carrying: a
negative scale flips its block's code signs, a zero scale zeroes its block's
codes (their product is zero anyway), and a NaN scale is refused.

Linear layout (Blackwell ``tl.dot_scaled``)
-------------------------------------------
The canonical codes and E4M3 scales, zero-padded to ``[N_pad, K_pad // 2]`` and
``[N_pad, K_pad // 16]``: ``tl.dot_scaled`` takes low-nibble-first codes packed
along K and row-major block-16 scales.
"""

from __future__ import annotations

import dataclasses

import torch

from kernels.errors import FormatError
from kernels.nvfp4 import format as fmt
from kernels.nvfp4.layout import round_up

__all__ = [
    "BF16_SCALE_BIAS",
    "DequantWeights",
    "FP16_SCALE_BIAS",
    "LinearWeights",
    "WORD_MASK",
    "canonicalize_scales",
    "decode_words",
    "encode_scale_codes",
    "pack_dequant_weights",
    "pack_linear_weights",
    "scale_code_values",
    "unpack_dequant_weights",
]

#: the bf16 field of pair 0 in both halves: sign bit 15, magnitude bits 8..6
WORD_MASK = 0x81C081C0
#: ``(c << 4) + BF16_SCALE_BIAS`` is the bf16 bit pattern of ``scale * 2**118``
BF16_SCALE_BIAS = 236 << 7
#: ``(c << 7) + FP16_SCALE_BIAS`` is the fp16 bit pattern of ``scale * 2**6``
FP16_SCALE_BIAS = 12 << 10
#: E4M3 subnormal mantissa m (value m * 2**-9) -> scale code of m * 2**-9
_SUBNORMAL_CODES = (0, 0, 8, 12, 16, 18, 20, 22)

# (sign bit, magnitude bit 2, bit 1, bit 0) of each pair inside a 16-bit half
_FIELDS = ((15, 8, 7, 6), (12, 5, 4, 3), (9, 2, 1, 0), (14, 13, 11, 10))


@dataclasses.dataclass(frozen=True)
class DequantWeights:
    """Prepared weight of the explicit-dequant GEMM (see the module docstring).

    Attributes:
        words: ``uint8 [KC, N_pad, block_k // 2]``.
        scale_codes: ``uint8 [KC, N_pad, block_k // 16]``.
        n: logical N; k: logical K; block_k: chunk length along K.
    """

    words: torch.Tensor
    scale_codes: torch.Tensor
    n: int
    k: int
    block_k: int

    @property
    def n_pad(self) -> int:
        return int(self.words.shape[1])

    @property
    def k_chunks(self) -> int:
        return int(self.words.shape[0])


@dataclasses.dataclass(frozen=True)
class LinearWeights:
    """Prepared weight of the ``tl.dot_scaled`` GEMM: padded canonical tensors.

    Attributes:
        codes: ``uint8 [N_pad, K_pad // 2]``; scales: ``float8_e4m3fn [N_pad, K_pad // 16]``.
    """

    codes: torch.Tensor
    scales: torch.Tensor
    n: int
    k: int
    block_k: int


def _check_canonical(packed: torch.Tensor, scale: torch.Tensor) -> tuple[int, int]:
    if packed.dtype != torch.uint8 or packed.dim() != 2:
        raise FormatError(
            f"weight codes must be 2-D torch.uint8 [N, K // 2], got {packed.dtype} "
            f"{tuple(packed.shape)}"
        )
    n, kb = packed.shape
    k = 2 * kb
    if k % fmt.BLOCK_SIZE:
        raise FormatError(f"K = {k} is not a multiple of {fmt.BLOCK_SIZE}")
    if scale.dtype != torch.float8_e4m3fn or tuple(scale.shape) != (n, k // fmt.BLOCK_SIZE):
        raise FormatError(
            f"weight scales must be float8_e4m3fn {(n, k // fmt.BLOCK_SIZE)} for codes "
            f"{tuple(packed.shape)}, got {scale.dtype} {tuple(scale.shape)}"
        )
    return n, k


def _check_block_k(block_k: int) -> None:
    if block_k not in (128, 256):
        raise FormatError(f"block_k must be 128 or 256, got {block_k}")


def canonicalize_scales(packed: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Make every block scale finite, non-negative and non-zero-carrying.

    Returns ``(codes [N, K] uint8, scale_bits [N, K // 16] uint8)`` where a
    negative scale's block has its code signs flipped (``c * -s == -c * s``
    exactly), a zero scale's block has zero codes, and ``scale_bits`` has the
    sign bit cleared. Raises :class:`FormatError` on a NaN scale.
    """
    n, k = _check_canonical(packed, scale)
    bits = scale.view(torch.uint8)
    if bool(((bits & 0x7F) == 0x7F).any()):
        rows = torch.nonzero((bits & 0x7F) == 0x7F)[:4].tolist()
        raise FormatError(f"weight block scales contain NaN (E4M3 0x7F/0xFF) at [row, block] {rows}")
    codes = fmt.unpack_fp4(packed).reshape(n, k // fmt.BLOCK_SIZE, fmt.BLOCK_SIZE)
    negative = ((bits & 0x80) != 0).unsqueeze(-1)
    zero = ((bits & 0x7F) == 0).unsqueeze(-1)
    codes = torch.where(negative, codes ^ 0x8, codes)
    codes = torch.where(zero, torch.zeros_like(codes), codes)
    return codes.reshape(n, k), bits & 0x7F


def encode_scale_codes(scale_bits: torch.Tensor) -> torch.Tensor:
    """Non-negative finite E4M3 bit patterns (uint8) -> scale codes (uint8), see module docstring."""
    b = scale_bits.to(torch.int32)
    e = (b >> 3) & 0xF
    m = b & 0x7
    table = torch.tensor(_SUBNORMAL_CODES, dtype=torch.int32, device=b.device)
    code = torch.where(e > 0, ((e + 2) << 3) | m, table[m.long()])
    return code.to(torch.uint8)


def scale_code_values(codes: torch.Tensor, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """The operand value a scale code stands for: ``scale * 2**118`` (bf16) or ``scale * 2**6`` (fp16)."""
    c = codes.to(torch.int32)
    if dtype == torch.bfloat16:
        bits = (c << 4) + BF16_SCALE_BIAS
    elif dtype == torch.float16:
        bits = (c << 7) + FP16_SCALE_BIAS
    else:
        raise FormatError(f"scale codes decode to bfloat16 or float16, not {dtype}")
    return bits.to(torch.int16).view(dtype)


def _twiddle(codes_chunked: torch.Tensor) -> torch.Tensor:
    """``[KC, N, block_k]`` codes -> ``[KC, N, block_k // 2]`` bytes of twiddled words."""
    kc, n, bk = codes_chunked.shape
    jn = bk // 32
    # k = 32 J + 16 s + 8 u1 + 2 q + u0  ->  axes (J, s, u1, q, u0)
    c = codes_chunked.reshape(kc, n, jn, 2, 2, 4, 2).to(torch.int64)
    word = torch.zeros((kc, n, 4, jn), dtype=torch.int64, device=codes_chunked.device)
    for s in range(2):
        for u1 in range(2):
            sign_b, m2_b, m1_b, m0_b = _FIELDS[2 * s + u1]
            for u0 in range(2):
                nib = c[:, :, :, s, u1, :, u0].permute(0, 1, 3, 2)  # [KC, N, q, J]
                off = 16 * u0
                word |= ((nib >> 3) & 1) << (sign_b + off)
                word |= ((nib >> 2) & 1) << (m2_b + off)
                word |= ((nib >> 1) & 1) << (m1_b + off)
                word |= (nib & 1) << (m0_b + off)
    # little-endian bytes of each 32-bit word, words ordered (q, J)
    shifts = torch.arange(0, 32, 8, device=word.device)
    bytes_ = (word.unsqueeze(-1) >> shifts) & 0xFF
    return bytes_.reshape(kc, n, bk // 2).to(torch.uint8)


def decode_words(words: torch.Tensor, block_k: int) -> torch.Tensor:
    """Inverse of the twiddle: ``[..., block_k // 2]`` bytes -> ``[..., block_k]`` codes (uint8).

    Uses exactly the shift-and-mask decode of the kernel, then reads the codes
    back from the bf16 bit patterns, so it checks the decode as well as the
    packing.
    """
    _check_block_k(block_k)
    lead = words.shape[:-1]
    jn = block_k // 32
    w = words.reshape(*lead, 4, jn, 4).to(torch.int64)
    w = w[..., 0] | (w[..., 1] << 8) | (w[..., 2] << 16) | (w[..., 3] << 24)  # [..., q, J]
    m = WORD_MASK
    pairs = [
        w & m,
        (w << 3) & m,
        (w << 6) & m,
        ((w << 1) & 0x80008000) | ((w >> 5) & 0x01000100) | ((w >> 4) & 0x00C000C0),
    ]
    out = torch.zeros((*lead, jn, 2, 2, 4, 2), dtype=torch.int64, device=words.device)
    for i, p in enumerate(pairs):
        s, u1 = divmod(i, 2)
        for u0 in range(2):
            half = (p >> (16 * u0)) & 0xFFFF
            code = ((half >> 12) & 0x8) | ((half >> 6) & 0x7)  # sign bit 15 -> 3, mag 8..6 -> 2..0
            out[..., :, s, u1, :, u0] = code.transpose(-1, -2)  # [..., J, q]
    return out.reshape(*lead, block_k).to(torch.uint8)


def pack_dequant_weights(
    packed: torch.Tensor, scale: torch.Tensor, block_k: int, n_align: int = 128
) -> DequantWeights:
    """Canonical NVFP4 weight -> :class:`DequantWeights` (see the module docstring)."""
    _check_block_k(block_k)
    if n_align <= 0 or n_align % 16:
        raise FormatError(f"n_align must be a positive multiple of 16, got {n_align}")
    n, k = _check_canonical(packed, scale)
    codes, scale_bits = canonicalize_scales(packed, scale)
    n_pad, k_pad = round_up(n, n_align), round_up(k, block_k)
    kc = k_pad // block_k
    full = torch.zeros((n_pad, k_pad), dtype=torch.uint8, device=packed.device)
    full[:n, :k] = codes
    chunked = full.reshape(n_pad, kc, block_k).permute(1, 0, 2).contiguous()
    sc = torch.zeros((n_pad, k_pad // fmt.BLOCK_SIZE), dtype=torch.uint8, device=packed.device)
    sc[:n, : k // fmt.BLOCK_SIZE] = encode_scale_codes(scale_bits)
    sc = sc.reshape(n_pad, kc, block_k // fmt.BLOCK_SIZE).permute(1, 0, 2).contiguous()
    return DequantWeights(_twiddle(chunked).contiguous(), sc, n, k, block_k)


def unpack_dequant_weights(prepared: DequantWeights) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_dequant_weights` up to canonicalisation.

    Returns ``(codes [N, K] uint8, scale_values [N, K // 16] float32)``, where a
    scale value is the E4M3 scale that the kernel multiplies by.
    """
    kc, n_pad, _ = prepared.words.shape
    bk = prepared.block_k
    codes = decode_words(prepared.words, bk)  # [KC, N_pad, bk]
    codes = codes.permute(1, 0, 2).reshape(n_pad, kc * bk)[: prepared.n, : prepared.k]
    vals = scale_code_values(prepared.scale_codes, torch.bfloat16).float() * 2.0**-118
    vals = vals.permute(1, 0, 2).reshape(n_pad, -1)[: prepared.n, : prepared.k // fmt.BLOCK_SIZE]
    return codes, vals


def pack_linear_weights(
    packed: torch.Tensor, scale: torch.Tensor, block_k: int, n_align: int = 128
) -> LinearWeights:
    """Canonical NVFP4 weight -> zero-padded :class:`LinearWeights` for ``tl.dot_scaled``."""
    _check_block_k(block_k)
    n, k = _check_canonical(packed, scale)
    codes, scale_bits = canonicalize_scales(packed, scale)
    n_pad, k_pad = round_up(n, n_align), round_up(k, block_k)
    full = torch.zeros((n_pad, k_pad), dtype=torch.uint8, device=packed.device)
    full[:n, :k] = codes
    sc = torch.zeros((n_pad, k_pad // fmt.BLOCK_SIZE), dtype=torch.uint8, device=packed.device)
    sc[:n, : k // fmt.BLOCK_SIZE] = scale_bits
    return LinearWeights(
        fmt.pack_fp4(full).contiguous(), sc.view(torch.float8_e4m3fn).contiguous(), n, k, block_k
    )
