"""Scale and weight layouts that the Blackwell NVFP4 libraries require.

**128x4 swizzled scales** (cuBLASLt, CUTLASS, FlashInfer cutlass/cudnn,
``torch._scaled_mm``; the PTX "tcgen05 scale-factor layout 4x"): a logical
``[rows, K // 16]`` E4M3 scale matrix is zero-padded to multiples of
``(128, 4)`` and cut into 128x4 tiles of 512 bytes. Tiles are stored
tile-row-major; inside a tile, logical row ``r = 32 * i + j`` (``i`` in 0..3,
``j`` in 0..31) and column ``c`` (0..3) sit at byte ``j * 16 + i * 4 + c``.
Viewed as ``[rows/128, 4, 32, cols/4, 4]`` this is the permutation
``(0, 3, 2, 1, 4)``.

**Weight padding** (CUTLASS-style kernels): N padded to a multiple of 32 rows
and K to a multiple of 32 elements (16 bytes); activations get the same K
padding and the output's N padding is sliced off.
"""

from __future__ import annotations

import torch

from kernels.errors import FormatError

__all__ = [
    "SWIZZLE_COLS",
    "SWIZZLE_ROWS",
    "pad_activation",
    "pad_weight",
    "round_up",
    "swizzle_scales",
    "swizzled_shape",
    "unswizzle_scales",
]

SWIZZLE_ROWS = 128
SWIZZLE_COLS = 4


def round_up(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


def swizzled_shape(rows: int, cols: int) -> tuple[int, int]:
    """Padded 2-D shape of the swizzled form of a ``[rows, cols]`` scale matrix."""
    return round_up(rows, SWIZZLE_ROWS), round_up(cols, SWIZZLE_COLS)


def _check_scale(scale: torch.Tensor, what: str) -> None:
    if scale.dtype != torch.float8_e4m3fn:
        raise FormatError(f"{what} must be torch.float8_e4m3fn, got {scale.dtype}")
    if scale.dim() != 2:
        raise FormatError(f"{what} must be 2-D [rows, K // 16], got shape {tuple(scale.shape)}")


def swizzle_scales(scale: torch.Tensor) -> torch.Tensor:
    """Linear ``[rows, cols]`` E4M3 scales -> swizzled, padded ``[R, C]`` (contiguous).

    ``R = round_up(rows, 128)``, ``C = round_up(cols, 4)``; padding is zero.
    The result's memory holds the 128x4 tiles in order, so ``.flatten()`` is
    the byte stream the libraries read.
    """
    _check_scale(scale, "scale")
    rows, cols = scale.shape
    r_pad, c_pad = swizzled_shape(rows, cols)
    # Pad through uint8: float8 tensors lack some padding kernels on CPU.
    raw = scale.view(torch.uint8)
    padded = torch.zeros((r_pad, c_pad), dtype=torch.uint8, device=scale.device)
    padded[:rows, :cols] = raw
    tiles = padded.reshape(r_pad // 128, 4, 32, c_pad // 4, 4).permute(0, 3, 2, 1, 4)
    return tiles.contiguous().reshape(r_pad, c_pad).view(torch.float8_e4m3fn)


def unswizzle_scales(swizzled: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Inverse of :func:`swizzle_scales`: swizzled -> linear ``[rows, cols]``.

    ``swizzled`` is the padded ``[R, C]`` matrix or the flat byte stream of
    ``R * C`` scales that the libraries hand back.
    """
    if swizzled.dtype != torch.float8_e4m3fn:
        raise FormatError(f"swizzled scale must be torch.float8_e4m3fn, got {swizzled.dtype}")
    r_pad, c_pad = swizzled_shape(rows, cols)
    if swizzled.numel() != r_pad * c_pad or swizzled.dim() not in (1, 2):
        raise FormatError(
            f"swizzled scale has shape {tuple(swizzled.shape)}, expected {(r_pad, c_pad)} "
            f"for a logical [{rows}, {cols}] matrix"
        )
    raw = swizzled.contiguous().view(torch.uint8).reshape(r_pad // 128, c_pad // 4, 32, 4, 4)
    linear = raw.permute(0, 3, 2, 1, 4).reshape(r_pad, c_pad)
    return linear[:rows, :cols].contiguous().view(torch.float8_e4m3fn)


def pad_weight(packed: torch.Tensor, alignment: int = 32) -> tuple[torch.Tensor, int]:
    """Zero-pad a packed weight ``[N, K // 2]`` so N and K are multiples of ``alignment``.

    ``alignment`` counts rows for N and FP4 *elements* for K. Returns the padded
    tensor and the number of bytes added to each row (the activation padding).
    """
    if packed.dtype != torch.uint8 or packed.dim() != 2:
        raise FormatError(
            f"pad_weight expects a 2-D torch.uint8 [N, K // 2] tensor, got "
            f"{packed.dtype} {tuple(packed.shape)}"
        )
    if alignment <= 0 or alignment % 2:
        raise FormatError(f"alignment must be a positive even number, got {alignment}")
    n, kb = packed.shape
    n_pad = round_up(n, alignment)
    kb_pad = round_up(kb * 2, alignment) // 2
    if (n_pad, kb_pad) == (n, kb):
        return packed, 0
    out = torch.zeros((n_pad, kb_pad), dtype=torch.uint8, device=packed.device)
    out[:n, :kb] = packed
    return out, kb_pad - kb


def pad_activation(packed: torch.Tensor, pad_bytes: int) -> torch.Tensor:
    """Zero-pad packed activations ``[M, K // 2]`` on the right by ``pad_bytes``."""
    if pad_bytes < 0:
        raise FormatError(f"pad_bytes must be >= 0, got {pad_bytes}")
    if pad_bytes == 0:
        return packed
    return torch.nn.functional.pad(packed, (0, pad_bytes))
