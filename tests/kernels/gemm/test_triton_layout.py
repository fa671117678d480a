"""The offline weight layouts of kernels.gemm.layout (pure torch, no Triton)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.errors import FormatError
from kernels.gemm import layout as L
from kernels.nvfp4 import format as fmt
from tests.kernels.gemm.triton_helpers import quantized_weight

ALL_FINITE_E4M3 = torch.arange(0, 0x7F, dtype=torch.uint8)  # every non-negative, non-NaN pattern


@pytest.mark.parametrize("dtype, factor", [(torch.bfloat16, 2.0**118), (torch.float16, 2.0**6)])
def test_scale_codes_decode_to_every_e4m3_value_times_the_fold(dtype, factor):
    codes = L.encode_scale_codes(ALL_FINITE_E4M3)
    got = L.scale_code_values(codes, dtype).float()
    true = ALL_FINITE_E4M3.view(torch.float8_e4m3fn).float()
    nonzero = true > 0
    # exact: the decoded operand is the E4M3 value times a power of two
    assert torch.equal(got[nonzero], true[nonzero] * factor)
    # the zero scale decodes to *something* finite: its block's codes are zeroed
    assert torch.isfinite(got).all()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 70), kb=st.integers(1, 40), block_k=st.sampled_from([128, 256]),
       seed=st.integers(0, 2**31 - 1))
def test_dequant_layout_round_trips(n, kb, block_k, seed):
    k = 16 * kb
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 16, (n, k), generator=g, dtype=torch.uint8)
    scale_bits = torch.randint(1, 0x7F, (n, k // 16), generator=g, dtype=torch.uint8)
    packed = fmt.pack_fp4(codes)
    prepared = L.pack_dequant_weights(packed, scale_bits.view(torch.float8_e4m3fn), block_k)
    assert prepared.words.shape == (prepared.k_chunks, prepared.n_pad, block_k // 2)
    assert prepared.n_pad % 128 == 0 and prepared.k_chunks * block_k >= k
    got_codes, got_scales = L.unpack_dequant_weights(prepared)
    assert torch.equal(got_codes, codes)
    assert torch.equal(got_scales, scale_bits.view(torch.float8_e4m3fn).float())


def test_canonicalization_keeps_every_product():
    packed, scale, _ = quantized_weight()
    bits = scale.view(torch.uint8).clone()
    bits[0, 0] |= 0x80          # a negative scale
    bits[1, 2] = 0x80           # -0
    bits[2, 3] = 0              # +0 with non-zero codes
    codes = fmt.unpack_fp4(packed)
    codes[2, 48:64] = 5
    packed = fmt.pack_fp4(codes)
    scale = bits.view(torch.float8_e4m3fn)
    before = fmt.e2m1_codes_to_float(codes).reshape(40, -1, 16) * scale.float().unsqueeze(-1)
    new_codes, new_bits = L.canonicalize_scales(packed, scale)
    after = fmt.e2m1_codes_to_float(new_codes).reshape(40, -1, 16) * new_bits.view(
        torch.float8_e4m3fn).float().unsqueeze(-1)
    assert torch.equal(after, before)  # -0 * x compares equal to 0 * x
    assert not (new_bits & 0x80).any()
    assert (new_codes.reshape(40, -1, 16)[2, 3] == 0).all()


def test_nan_scale_is_refused_with_its_position():
    packed, scale, _ = quantized_weight()
    bits = scale.view(torch.uint8).clone()
    bits[3, 4] = 0x7F
    with pytest.raises(FormatError, match=r"NaN.*\[\[3, 4\]\]"):
        L.pack_dequant_weights(packed, bits.view(torch.float8_e4m3fn), 128)


def test_linear_layout_pads_with_zero_codes_and_scales():
    packed, scale, _ = quantized_weight()
    lw = L.pack_linear_weights(packed, scale, 256)
    assert lw.codes.shape == (128, 128) and lw.scales.shape == (128, 16)
    assert torch.equal(lw.codes[:40, :80], packed)
    assert torch.equal(lw.scales.view(torch.uint8)[:40, :10], scale.view(torch.uint8))
    assert not lw.codes[40:].any() and not lw.codes[:, 80:].any()
    assert not lw.scales.view(torch.uint8)[:, 10:].any()


@pytest.mark.parametrize("bad", [
    dict(block_k=64, match="block_k must be 128 or 256"),
    dict(n_align=24, match="n_align must be a positive multiple of 16"),
])
def test_bad_layout_arguments_are_refused(bad):
    packed, scale, _ = quantized_weight()
    match = bad.pop("match")
    with pytest.raises(FormatError, match=match):
        L.pack_dequant_weights(packed, scale, **{"block_k": 128, **bad})


def test_scale_shape_mismatch_shows_both_sides():
    packed, scale, _ = quantized_weight()
    with pytest.raises(FormatError, match=r"\(40, 10\).*\(40, 9\)"):
        L.pack_dequant_weights(packed, scale[:, :9], 128)
