"""The NVFP4 format against independent oracles (ml_dtypes for E2M1, ml_dtypes and
torch for E4M3), with exact cases and hypothesis properties."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.errors import FormatError
from kernels.nvfp4 import format as fmt

MAGS = fmt.E2M1_MAGNITUDES


def oracle_e2m1_codes(x: np.ndarray) -> np.ndarray:
    """Codes from ml_dtypes' float4_e2m1fn cast (round to nearest even)."""
    return x.astype(np.float32).astype(ml_dtypes.float4_e2m1fn).view(np.uint8) & 0xF


def oracle_e4m3(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)


# --- E2M1 rounding -------------------------------------------------------------


def test_every_code_decodes_to_the_table() -> None:
    codes = torch.arange(16, dtype=torch.uint8)
    values = fmt.e2m1_codes_to_float(codes)
    expected = list(MAGS) + [-m for m in MAGS]
    assert values.tolist() == expected
    oracle = np.arange(16, dtype=np.uint8).view(ml_dtypes.float4_e2m1fn).astype(np.float32)
    assert values.numpy().tolist() == oracle.tolist()


def test_representable_values_are_exact() -> None:
    vals = torch.tensor(list(MAGS) + [-m for m in MAGS[1:]], dtype=torch.float32)
    codes = fmt.e2m1_round(vals)
    assert torch.equal(fmt.e2m1_codes_to_float(codes), vals)


@pytest.mark.parametrize(
    "value, expected",
    [(0.25, 0.0), (0.75, 1.0), (1.25, 1.0), (1.75, 2.0), (2.5, 2.0), (3.5, 4.0), (5.0, 4.0)],
)
def test_ties_round_to_even(value: float, expected: float) -> None:
    for sign in (1.0, -1.0):
        code = fmt.e2m1_round(torch.tensor([sign * value]))
        assert fmt.e2m1_codes_to_float(code).item() == sign * expected
    assert oracle_e2m1_codes(np.array([value]))[0] == fmt.e2m1_round(torch.tensor([value]))[0].item()


def test_just_off_ties_round_to_nearest() -> None:
    eps = 1e-4
    x = torch.tensor([0.25 + eps, 1.25 + eps, 2.5 + eps, 5.0 - eps, 5.0 + eps])
    assert fmt.e2m1_codes_to_float(fmt.e2m1_round(x)).tolist() == [0.5, 1.5, 3.0, 4.0, 6.0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-6.0, max_value=6.0, width=32), min_size=1, max_size=64))
def test_rounding_matches_ml_dtypes(values: list[float]) -> None:
    x = np.array(values, dtype=np.float32)
    ours = fmt.e2m1_round(torch.from_numpy(x)).numpy()
    assert np.array_equal(ours, oracle_e2m1_codes(x))


def test_negative_zero_and_nan_codes() -> None:
    codes = fmt.e2m1_round(torch.tensor([-0.0, -0.1, float("nan")]))
    assert codes.tolist() == [8, 8, 0]  # -0 keeps its sign like an IEEE cast; NaN -> +0


# --- packing -------------------------------------------------------------------


def test_pack_puts_even_element_in_low_nibble() -> None:
    codes = torch.tensor([[0x1, 0x2, 0xF, 0x0]], dtype=torch.uint8)
    packed = fmt.pack_fp4(codes)
    assert packed.tolist() == [[0x21, 0x0F]]
    assert torch.equal(fmt.unpack_fp4(packed), codes)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 4), st.integers(1, 8), st.data())
def test_pack_unpack_round_trip(rows: int, pairs: int, data) -> None:
    raw = data.draw(st.lists(st.integers(0, 15), min_size=rows * pairs * 2, max_size=rows * pairs * 2))
    codes = torch.tensor(raw, dtype=torch.uint8).reshape(rows, pairs * 2)
    assert torch.equal(fmt.unpack_fp4(fmt.pack_fp4(codes)), codes)
    ml = np.array(raw, dtype=np.uint8).view(ml_dtypes.float4_e2m1fn).astype(np.float32)
    decoded = fmt.e2m1_codes_to_float(fmt.unpack_fp4(fmt.pack_fp4(codes))).reshape(-1)
    assert decoded.numpy().tolist() == ml.tolist()


def test_pack_refuses_odd_and_wrong_dtype() -> None:
    with pytest.raises(FormatError, match="even last dimension"):
        fmt.pack_fp4(torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(FormatError, match="torch.uint8"):
        fmt.pack_fp4(torch.zeros(4, dtype=torch.int32))
    with pytest.raises(FormatError, match="torch.uint8"):
        fmt.unpack_fp4(torch.zeros(4, dtype=torch.int8))


# --- quantization --------------------------------------------------------------


def test_global_scale_convention() -> None:
    gs = fmt.global_scale_from_amax(torch.tensor(2.0))
    assert gs.item() == pytest.approx(448 * 6 / 2.0)
    assert gs.dtype == torch.float32


@pytest.mark.parametrize("amax", [0.0, -1.0, float("inf"), float("nan")])
def test_global_scale_refuses_bad_amax(amax: float) -> None:
    with pytest.raises(FormatError, match="amax must be finite and > 0"):
        fmt.global_scale_from_amax(amax)


@pytest.mark.parametrize("gs", [0.0, -3.0, float("inf"), float("nan")])
def test_quantize_refuses_non_finite_global_scale(gs: float) -> None:
    with pytest.raises(FormatError, match="global_scale must be finite and > 0"):
        fmt.quantize(torch.ones(1, 16), gs)


def test_quantize_refuses_bad_shapes_and_dtypes() -> None:
    with pytest.raises(FormatError, match="K=24 must be a multiple of the block size 16"):
        fmt.quantize(torch.ones(2, 24), 1.0)
    with pytest.raises(FormatError, match="float32, float16 or bfloat16"):
        fmt.quantize(torch.ones(2, 16, dtype=torch.float64), 1.0)
    with pytest.raises(FormatError, match="at least one dimension"):
        fmt.quantize(torch.tensor(1.0), 1.0)
    with pytest.raises(FormatError, match="global_scale must be a scalar"):
        fmt.quantize(torch.ones(2, 16), torch.ones(2))


def test_dequantize_refuses_mismatched_scales() -> None:
    packed, scale = fmt.quantize(torch.randn(2, 32), 100.0)
    with pytest.raises(FormatError, match=r"block_scale shape \(2, 1\) does not match"):
        fmt.dequantize(packed, scale[:, :1], 100.0)
    with pytest.raises(FormatError, match="float8_e4m3fn"):
        fmt.dequantize(packed, scale.float(), 100.0)
    with pytest.raises(FormatError, match="torch.uint8"):
        fmt.dequantize(packed.to(torch.int16), scale, 100.0)


# --- stored decode scales (ModelOpt / torchao checkpoints) ------------------------

#: a decode factor whose float32 reciprocal does not invert back to it:
#: 1 / fl32(1 / F) != F in float32, so dividing by the multiplier is not the same decode
F = torch.tensor(0.15, dtype=torch.float32) / 2688


def test_decode_scale_multiplies_exactly() -> None:
    gs = fmt.decode_scale_reciprocal(F)
    assert float(1.0 / gs) != float(F)  # the case the decode scale exists for
    x = torch.randn(64, 256, generator=torch.Generator().manual_seed(3))
    packed, scale = fmt.quantize(x, gs)
    ours = fmt.dequantize(packed, scale, decode_scale=F)
    # code * scale is exact, so the float64 product is the exact value; one rounding.
    values = fmt.e2m1_codes_to_float(fmt.unpack_fp4(packed)).double().reshape(64, 16, 16)
    exact = (values * scale.double().unsqueeze(-1) * float(F)).reshape(64, 256).float()
    assert torch.equal(ours, exact)
    # Dividing by the rounded reciprocal is a different decode (1 ulp off in places).
    divided = fmt.dequantize(packed, scale, gs)
    assert not torch.equal(divided, exact)
    ulp = ours.abs() * 2.0**-23
    assert ((divided - ours).abs() <= ulp).all()
    # dequantize_raw takes the same choice; bf16 output is the rounded float32 value.
    lut = fmt.e2m1_lut()
    assert torch.equal(fmt.dequantize_raw(packed, scale, gs, lut=lut, decode_scale=F), ours)
    assert torch.equal(
        fmt.dequantize(packed, scale, dtype=torch.bfloat16, decode_scale=F), ours.bfloat16()
    )


def test_decode_scale_reciprocal_is_the_float32_quotient() -> None:
    assert torch.equal(fmt.decode_scale_reciprocal(F), torch.tensor(1.0) / F)
    assert fmt.decode_scale_reciprocal(torch.tensor([0.5])).item() == 2.0
    with pytest.raises(FormatError, match="decode_scale must be finite and > 0, got 0.0"):
        fmt.decode_scale_reciprocal(0.0)
    with pytest.raises(FormatError, match=r"1 / tiny must be finite and > 0, got inf"):
        fmt.decode_scale_reciprocal(torch.tensor(2.0**-140), "tiny")


def test_dequantize_takes_exactly_one_tensor_scale() -> None:
    packed, scale = fmt.quantize(torch.randn(2, 32), 100.0)
    with pytest.raises(FormatError, match="exactly one of global_scale .* got both"):
        fmt.dequantize(packed, scale, 100.0, decode_scale=0.01)
    with pytest.raises(FormatError, match="exactly one of global_scale .* got neither"):
        fmt.dequantize(packed, scale)
    with pytest.raises(FormatError, match="decode_scale must be finite and > 0, got -1.0"):
        fmt.dequantize(packed, scale, decode_scale=-1.0)
    with pytest.raises(FormatError, match="decode_scale must be a scalar"):
        fmt.dequantize(packed, scale, decode_scale=torch.ones(2))


def test_block_scale_matches_e4m3_oracles() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 64) * torch.logspace(-3, 2, 8).unsqueeze(1)
    gs = fmt.global_scale_from_amax(x.abs().max())
    _, scale = fmt.quantize(x, gs)
    block_amax = x.reshape(8, 4, 16).abs().amax(-1)
    raw = torch.clamp(gs * block_amax / 6, max=448)
    assert torch.equal(scale.float(), raw.to(torch.float8_e4m3fn).float())
    assert np.array_equal(scale.float().numpy(), oracle_e4m3(raw.numpy()))


def test_exact_round_trip_of_representable_blocks() -> None:
    # Blocks built as code * scale / gs, with the block max at code 6, survive exactly.
    torch.manual_seed(1)
    gs = torch.tensor(64.0)
    codes = torch.randint(0, 16, (4, 32), dtype=torch.uint8)
    codes[:, ::16] = 7  # magnitude 6 in every block -> block scale recovered exactly
    scales = torch.tensor([0.5, 1.0, 2.0, 8.0]).repeat_interleave(2).reshape(4, 2)
    values = fmt.e2m1_codes_to_float(codes).reshape(4, 2, 16) * scales.unsqueeze(-1) / gs
    x = values.reshape(4, 32)
    packed, scale = fmt.quantize(x, gs)
    assert torch.equal(scale.float(), scales)
    assert torch.equal(fmt.dequantize(packed, scale, gs), x)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.floats(min_value=1e-3, max_value=1e3),
    st.integers(0, 2**31 - 1),
)
def test_each_value_rounds_to_the_nearest_grid_point(rows, blocks, magnitude, seed) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, blocks * 16, generator=gen) * magnitude
    gs = fmt.global_scale_from_amax(x.abs().max())
    packed, scale = fmt.quantize(x, gs)
    deq = fmt.dequantize(packed, scale, gs)
    # The grid of every block: all 16 code values times the block's scale.
    grid = fmt.e2m1_codes_to_float(torch.arange(16, dtype=torch.uint8))
    step = scale.float().unsqueeze(-1) / gs  # [rows, blocks, 1]
    points = grid.view(1, 1, 16) * step  # [rows, blocks, 16]
    xb = x.reshape(rows, blocks, 16, 1)
    best = (xb - points.unsqueeze(2)).abs().amin(-1).reshape(rows, blocks * 16)
    err = (x - deq).abs()
    assert torch.all(err <= best + 1e-6 * x.abs().max())


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_quantization_is_idempotent(rows, blocks, seed) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, blocks * 16, generator=gen)
    gs = fmt.global_scale_from_amax(x.abs().max())
    packed, scale = fmt.quantize(x, gs)
    again_packed, again_scale = fmt.quantize(fmt.dequantize(packed, scale, gs), gs)
    assert torch.equal(again_scale.float(), scale.float())
    assert torch.equal(
        fmt.e2m1_codes_to_float(fmt.unpack_fp4(again_packed)),
        fmt.e2m1_codes_to_float(fmt.unpack_fp4(packed)),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_quantize_is_row_local(dtype) -> None:
    torch.manual_seed(2)
    x = torch.randn(5, 48).to(dtype)
    gs = torch.tensor(300.0)
    whole = fmt.quantize(x, gs)
    for i in range(5):
        row = fmt.quantize(x[i : i + 1], gs)
        assert torch.equal(row[0], whole[0][i : i + 1])
        assert torch.equal(row[1].float(), whole[1][i : i + 1].float())


# --- non-finite inputs: documented behaviour --------------------------------------


def test_nan_elements_become_zero_and_do_not_touch_the_scale() -> None:
    x = torch.linspace(-1, 1, 16).reshape(1, 16)
    with_nan = x.clone()
    with_nan[0, 3] = float("nan")
    gs = torch.tensor(100.0)
    p_ref, s_ref = fmt.quantize(x, gs)
    p_nan, s_nan = fmt.quantize(with_nan, gs)
    assert torch.equal(s_nan.float(), s_ref.float())
    codes = fmt.unpack_fp4(p_nan)
    assert codes[0, 3].item() == 0
    keep = [i for i in range(16) if i != 3]
    assert torch.equal(codes[0, keep], fmt.unpack_fp4(p_ref)[0, keep])
    assert not torch.isnan(fmt.dequantize(p_nan, s_nan, gs)).any()


def test_inf_elements_saturate_their_block() -> None:
    x = torch.ones(1, 32)
    x[0, 5] = float("inf")
    x[0, 6] = float("-inf")
    gs = torch.tensor(10.0)
    packed, scale = fmt.quantize(x, gs)
    assert scale.float()[0, 0].item() == fmt.E4M3_MAX
    values = fmt.e2m1_codes_to_float(fmt.unpack_fp4(packed))[0]
    assert values[5].item() == 6.0 and values[6].item() == -6.0
    assert values[0].item() == 0.0  # 1 * 10 / 448 rounds to 0 in the saturated block
    assert scale.float()[0, 1].item() == pytest.approx(10.0 / 6, rel=0.07)  # untouched block
    deq = fmt.dequantize(packed, scale, gs)
    assert torch.isfinite(deq).all()


def test_zero_block_has_zero_scale_and_codes() -> None:
    packed, scale = fmt.quantize(torch.zeros(2, 16), 1.0)
    assert scale.float().eq(0).all() and packed.eq(0).all()
    assert fmt.dequantize(packed, scale, 1.0).eq(0).all()


def test_quantize_dequantize_error_is_small_on_gaussian_data() -> None:
    torch.manual_seed(3)
    x = torch.randn(64, 256)
    gs = fmt.global_scale_from_amax(x.abs().max())
    deq = fmt.quantize_dequantize(x, gs)
    sqnr = 10 * math.log10(float(x.pow(2).sum() / (x - deq).pow(2).sum()))
    assert sqnr > 17.0  # NVFP4 on Gaussian data gives about 19-20 dB
