"""The 128x4 swizzled scale layout and the padding helpers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.errors import FormatError
from kernels.nvfp4 import format as fmt
from kernels.nvfp4 import layout


def random_scales(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    raw = torch.randint(1, 0x7F, (rows, cols), generator=gen, dtype=torch.uint8)  # finite, > 0
    return raw.view(torch.float8_e4m3fn)


def reference_offset(r: int, c: int, padded_cols: int) -> int:
    """Byte offset of logical (r, c) by the PTX / cuBLAS tile description."""
    tile_row, inner_r = divmod(r, 128)
    tile_col, inner_c = divmod(c, 4)
    i, j = divmod(inner_r, 32)  # r = 32 * i + j
    tiles_per_row = padded_cols // 4
    tile_index = tile_row * tiles_per_row + tile_col
    return tile_index * 512 + j * 16 + i * 4 + inner_c


@pytest.mark.parametrize("rows, cols", [(1, 1), (128, 4), (130, 7), (256, 8), (300, 13)])
def test_swizzle_matches_the_tile_description(rows: int, cols: int) -> None:
    s = random_scales(rows, cols)
    sw = layout.swizzle_scales(s)
    r_pad, c_pad = layout.swizzled_shape(rows, cols)
    assert sw.shape == (r_pad, c_pad)
    flat = sw.view(torch.uint8).flatten()
    src = s.view(torch.uint8)
    for r in range(rows):
        for c in range(cols):
            assert flat[reference_offset(r, c, c_pad)] == src[r, c]
    # padding is zero
    assert int(flat.count_nonzero()) == int(src.count_nonzero())


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 20), st.integers(0, 1000))
def test_swizzle_round_trip(rows: int, cols: int, seed: int) -> None:
    s = random_scales(rows, cols, seed)
    back = layout.unswizzle_scales(layout.swizzle_scales(s), rows, cols)
    assert torch.equal(back.view(torch.uint8), s.view(torch.uint8))


def test_swizzle_refuses_wrong_input() -> None:
    with pytest.raises(FormatError, match="float8_e4m3fn"):
        layout.swizzle_scales(torch.ones(4, 4))
    with pytest.raises(FormatError, match="2-D"):
        layout.swizzle_scales(random_scales(4, 4).reshape(16))
    with pytest.raises(FormatError, match="expected"):
        layout.unswizzle_scales(random_scales(128, 4), 129, 4)
    with pytest.raises(FormatError, match="float8_e4m3fn"):
        layout.unswizzle_scales(torch.zeros(128, 4), 128, 4)


def test_unswizzle_accepts_the_flat_byte_stream() -> None:
    s = random_scales(130, 5)
    flat = layout.swizzle_scales(s).flatten()
    assert flat.shape == (256 * 8,)
    assert torch.equal(layout.unswizzle_scales(flat, 130, 5).view(torch.uint8), s.view(torch.uint8))


def test_pad_weight_keeps_values_and_adds_zeros() -> None:
    torch.manual_seed(0)
    w = torch.randn(40, 48)
    gs = fmt.global_scale_from_amax(w.abs().max())
    packed, scale = fmt.quantize(w, gs)
    padded, pad_bytes = layout.pad_weight(packed, alignment=32)
    assert padded.shape == (64, 32) and pad_bytes == 8
    assert torch.equal(padded[:40, :24], packed)
    assert padded[40:].eq(0).all() and padded[:, 24:].eq(0).all()
    # zero bytes decode to +0, so the padded GEMM adds nothing
    assert fmt.e2m1_codes_to_float(fmt.unpack_fp4(padded[:, 24:])).eq(0).all()


def test_pad_weight_is_a_no_op_when_aligned() -> None:
    packed = torch.zeros(64, 16, dtype=torch.uint8)
    same, pad = layout.pad_weight(packed, 32)
    assert same is packed and pad == 0


def test_pad_helpers_refuse_bad_arguments() -> None:
    with pytest.raises(FormatError, match="2-D torch.uint8"):
        layout.pad_weight(torch.zeros(4, dtype=torch.uint8))
    with pytest.raises(FormatError, match="positive even"):
        layout.pad_weight(torch.zeros(4, 4, dtype=torch.uint8), 3)
    with pytest.raises(FormatError, match="pad_bytes"):
        layout.pad_activation(torch.zeros(2, 4, dtype=torch.uint8), -1)
    a = torch.ones(2, 4, dtype=torch.uint8)
    assert layout.pad_activation(a, 2).tolist() == [[1, 1, 1, 1, 0, 0]] * 2
