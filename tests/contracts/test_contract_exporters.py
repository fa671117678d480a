"""Our checkpoint loaders against the real NVFP4 exporters: compressed-tensors, ModelOpt, torchao.

Each library quantizes the same small bf16 weight on a CPU with its own code
(compressed-tensors: its NVFP4 preset and ``NVFP4PackedCompressor``; ModelOpt:
``mtq.quantize(NVFP4_DEFAULT_CFG)`` then its export helpers; torchao:
``NVFP4Tensor.to_nvfp4``), we load the result with ``from_compressed_tensors`` /
``from_modelopt`` / ``from_torchao``, and:

* **stored data, bit-exact**: codes and block-scale bytes are the library's; the
  global scale is the library's multiplier (compressed-tensors), or its decode
  factor kept as stored (ModelOpt ``weight_scale_2``/``input_scale``, torchao
  ``per_tensor_scale``/``act_per_tensor_scale``) with the float32 reciprocal
  as the multiplier that quantizes;
* **decoded values, exact, for all three**: the library's own unpacking (its
  nibble order and E2M1 table) times its E4M3 scales, divided by its multiplier
  or multiplied by its decode factor, evaluated in float64 (correctly rounded to
  float32: 53 >= 2 * 24 + 2 bits), equals our float32 ``dequantized_weight()``
  bit for bit. compressed-tensors' and ModelOpt's own ``dequantize`` evaluated
  in float64 equal it too. Their float32 ``dequantize`` rounds an intermediate
  (``scale / gs`` or ``scale * f``) first; for ModelOpt and torchao that is
  the only rounding where the code is 0 or a power of two, and there they
  equal ours bit for bit (elsewhere within 1 ulp: docs/format.md has counts);
* **codes, tie-aware**: our quantizer on the same weight and global scale gives
  the same scale bytes (except all-zero blocks, a convention) and the same codes,
  except where the exact scaled value sits on a rounding tie (within float32
  arithmetic of the midpoint between the two codes) or the two codes are +0/-0;
* **forward**: our ``emulation`` W4A4 forward on the compressed-tensors layer
  against compressed-tensors' own fake-quantized ``nn.Linear`` forward (tolerance
  stated in ``test_emulation_forward_matches_compressed_tensors``).
"""

from __future__ import annotations

import warnings

import pytest
import torch

from kernels.linear import checkpoints
from kernels.linear.emulation import EmulationNvFp4LinearKernel
from kernels.nvfp4 import format as fmt

N, K = 96, 512


def bf16_weight(seed: int = 0) -> torch.Tensor:
    """Gaussian bf16 weight with the blocks that carry conventions: all-zero, -0, tiny."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(N, K, generator=g) * 0.05
    w[3, 16:32] = 0.0  # an all-zero block
    w[4, 32:48] = -0.0  # all negative zeros
    w[5, 48:64] = torch.randn(16, generator=g) * 1e-3  # a small but ordinary block
    return w.to(torch.bfloat16)


E2M1 = fmt.e2m1_lut(torch.device("cpu")).double()  # code index (0..15) -> value


def codes_of(packed: torch.Tensor) -> torch.Tensor:
    return fmt.unpack_fp4(packed.view(torch.uint8)).long()


def exact_decode(
    values: torch.Tensor,
    scale: torch.Tensor,
    gs: torch.Tensor | None = None,
    *,
    decode: torch.Tensor | None = None,
) -> torch.Tensor:
    """float32 of ``value * scale / gs`` or ``value * scale * decode``, computed in float64.

    Both are correctly rounded: ``value * scale`` is exact, and the one division
    or multiplication is rounded to 53 bits before 24 (53 >= 2 * 24 + 2).
    """
    blocks = values.double().reshape(values.shape[0], -1, fmt.BLOCK_SIZE)
    exact = blocks * scale.double().unsqueeze(-1)
    if decode is not None:
        out = exact * decode.double().reshape(())
    else:
        assert gs is not None
        out = exact / gs.double().reshape(())
    return out.reshape(values.shape).float()


def assert_float32_decode_agrees(ours: torch.Tensor, theirs: torch.Tensor, values, what: str):
    """A library's float32 ``code * fl32(scale * f)`` against our ``fl32(code * scale * f)``.

    Where the code is 0 or a power of two (±0.5, 1, 2, 4) multiplying by it is
    exact, so their one rounding is ours: equal bit for bit. At ±1.5, ±3, ±6 they
    round twice: within 1 ulp. Returns how many values differ (for the record).
    """
    pow2 = torch.isin(values.abs(), torch.tensor([0.0, 0.5, 1.0, 2.0, 4.0]))
    same = ours == theirs
    assert same[pow2].all(), (
        f"{what}: {int((~same & pow2).sum())} values with a power-of-two code differ from ours"
    )
    ulp = ours.abs() * 2.0**-23
    assert ((ours - theirs).abs() <= ulp).all(), f"{what}: a value differs by more than 1 ulp"
    return int((~same).sum())


MAGNITUDES = torch.tensor(fmt.E2M1_MAGNITUDES, dtype=torch.float64)
#: how close to a rounding midpoint float32 scale arithmetic can land (16 float32 ulps)
TIE = 2.0**-20


def _rounds_correctly(
    exact: torch.Tensor, chosen: torch.Tensor, grid: torch.Tensor
) -> torch.Tensor:
    """``chosen`` is a nearest grid value of ``exact`` (either one at a tie); by magnitude."""
    dist = (exact.abs().unsqueeze(-1) - grid).abs()
    best = dist.min(-1).values
    mine = (exact.abs() - chosen.abs()).abs()
    return mine <= best + TIE * exact.abs().clamp(min=2.0**-10)


def assert_encoder_agrees(w, gs, ours_packed, ours_scale, theirs_packed, theirs_scale, what):
    """Tie-aware agreement of an encoder with ours on the same weight and global scale.

    * block scales: equal bytes, or an all-zero block (a convention), or both
      nearest E4M3 values of the exact ``gs * amax / 6`` (a tie in the scale);
    * codes: each side's code is a nearest E2M1 value of its own exact scaled
      value ``x * gs / scale`` (either one at a tie); +0 and -0 are one value.

    Returns ``(scale_ties, code_differences)`` for the record.
    """
    w = w.double().reshape(N, -1, fmt.BLOCK_SIZE)
    gs = gs.double().reshape(())
    amax = w.abs().amax(-1)
    zero_block = amax == 0
    e4m3 = torch.arange(0, 0x7F, dtype=torch.uint8).view(torch.float8_e4m3fn).double()
    exact_scale = (gs * amax / fmt.E2M1_MAX).clamp(max=fmt.E4M3_MAX)
    diffs = 0
    for side, packed, scale in (
        ("ours", ours_packed, ours_scale),
        (what, theirs_packed, theirs_scale),
    ):
        s = scale.view(torch.float8_e4m3fn).double()
        ok = _rounds_correctly(exact_scale, s, e4m3) | zero_block
        assert ok.all(), (
            f"{side}: block scale not a nearest E4M3 of gs*amax/6 at {(~ok).nonzero()[:3].tolist()}: "
            f"exact {exact_scale[~ok][:3].tolist()}, stored {s[~ok][:3].tolist()}"
        )
        codes = E2M1[codes_of(packed)].reshape(w.shape)
        scaled = torch.where(
            s.unsqueeze(-1) == 0, torch.zeros_like(w), w * gs / s.unsqueeze(-1)
        ).clamp(-fmt.E2M1_MAX, fmt.E2M1_MAX)
        good = _rounds_correctly(scaled, codes, MAGNITUDES) & (
            (codes == 0) | (torch.sign(codes) == torch.sign(scaled))
        )
        good |= zero_block.unsqueeze(-1) & (codes == 0)
        assert good.all(), (
            f"{side}: {int((~good).sum())} codes are not a nearest E2M1 of x*gs/scale, e.g. "
            f"scaled {scaled[~good][:3].tolist()} -> {codes[~good][:3].tolist()}"
        )
    scale_ties = int(
        ((ours_scale.view(torch.uint8) != theirs_scale.view(torch.uint8)) & ~zero_block).sum()
    )
    ours_v = E2M1[codes_of(ours_packed)]
    theirs_v = E2M1[codes_of(theirs_packed)]
    diffs = int((ours_v != theirs_v).sum())
    return scale_ties, diffs


def assert_within_one_ulp(ours: torch.Tensor, theirs: torch.Tensor, what: str) -> None:
    ulp = torch.where(ours == 0, torch.zeros_like(ours), (ours.abs() * 2.0**-23))
    bad = (ours - theirs).abs() > ulp
    assert not bad.any(), f"{what}: {int(bad.sum())} values differ by more than 1 ulp"


# --- compressed-tensors ------------------------------------------------------------------


def ct_export(w: torch.Tensor):
    from compressed_tensors.compressors.nvfp4.base import NVFP4PackedCompressor
    from compressed_tensors.quantization import preset_name_to_scheme
    from compressed_tensors.quantization.utils.helpers import calculate_qparams, generate_gparam

    scheme = preset_name_to_scheme("NVFP4", ["Linear"])
    gs = generate_gparam(w.float().amin(), w.float().amax())
    blocks = w.reshape(N, K // 16, 16)
    scale, _ = calculate_qparams(blocks.amin(-1), blocks.amax(-1), scheme.weights, global_scale=gs)
    state = NVFP4PackedCompressor.compress(
        {"weight": w, "weight_scale": scale, "weight_global_scale": gs}, scheme
    )
    return scheme, state


def test_compressed_tensors_round_trip():
    from compressed_tensors.compressors.nvfp4.helpers import unpack_fp4_from_uint8
    from compressed_tensors.quantization.lifecycle.forward import dequantize

    # bf16 values in a float32 tensor: compressed-tensors computes block scales in
    # the weight's dtype, and with a bf16 tensor its amax / 6 is rounded to bf16
    # first (a real encoder difference, measured in docs/format.md).
    w = bf16_weight().float()
    scheme, state = ct_export(w)
    assert set(state) >= {"weight_packed", "weight_scale", "weight_global_scale"}
    layer = checkpoints.from_compressed_tensors(
        {f"l.{k}": v for k, v in state.items()}, prefix="l."
    )
    # Stored data, bit-exact.
    assert torch.equal(layer.weight, state["weight_packed"])
    assert torch.equal(
        layer.weight_scale.view(torch.uint8), state["weight_scale"].view(torch.uint8)
    )
    assert float(layer.weight_global_scale) == float(state["weight_global_scale"])
    # Decoded values: their unpacking and scales, exact arithmetic.
    values = unpack_fp4_from_uint8(state["weight_packed"], N, K, dtype=torch.float32)
    ours = layer.dequantized_weight(torch.float32)
    assert torch.equal(
        ours, exact_decode(values, state["weight_scale"].float(), layer.weight_global_scale)
    )
    theirs64 = dequantize(
        values.double(),
        state["weight_scale"].double(),
        args=scheme.weights,
        global_scale=state["weight_global_scale"].double(),
        dtype=torch.float64,
    )
    assert torch.equal(ours, theirs64.float()), "compressed-tensors' own decode (float64)"
    # Their float32 decode rounds scale / global_scale first: at most 1 ulp away.
    theirs32 = dequantize(
        values,
        state["weight_scale"].float(),
        args=scheme.weights,
        global_scale=state["weight_global_scale"],
        dtype=torch.float32,
    )
    assert_within_one_ulp(ours, theirs32, "compressed-tensors float32 decode")
    # Our quantizer, same weight and global scale: tie-aware code agreement.
    packed, scale = fmt.quantize(w, layer.weight_global_scale)
    assert_encoder_agrees(
        w,
        layer.weight_global_scale,
        packed,
        scale,
        state["weight_packed"],
        state["weight_scale"],
        "ct",
    )


def test_emulation_forward_matches_compressed_tensors():
    """Our emulation W4A4 forward vs compressed-tensors' fake-quantized ``nn.Linear``.

    Tolerance: ``|ours - theirs| <= 2**-16 * (|x| @ |W|^T)`` elementwise. Both
    sides quantize the activations per 16-element block with the same static
    input global scale and multiply the same decoded values; they differ in the
    order of the float32 scale arithmetic (1 ulp per decoded element, see
    docs/format.md) and in summation order, each a few float32 ulps of the
    absolute-value product, far below one FP4 code step (2**-2 relative).
    """
    from compressed_tensors.quantization import QuantizationStatus
    from compressed_tensors.quantization.lifecycle.initialize import (
        initialize_module_for_quantization,
    )
    from compressed_tensors.quantization.utils.helpers import generate_gparam

    w = bf16_weight(1).float()
    scheme, state = ct_export(w)
    x = torch.randn(37, K, generator=torch.Generator().manual_seed(7)) * 1.5
    in_gs = generate_gparam(x.amin(), x.amax())
    module = torch.nn.Linear(K, N, bias=False)
    module.weight.data.copy_(w)
    initialize_module_for_quantization(module, scheme)
    module.weight_global_scale.data.copy_(state["weight_global_scale"])
    module.weight_scale.data.copy_(state["weight_scale"].to(module.weight_scale.dtype))
    module.input_global_scale.data.copy_(in_gs)
    module.quantization_status = QuantizationStatus.FROZEN
    with torch.no_grad():
        theirs = module(x)

    layer = checkpoints.from_compressed_tensors({**state, "input_global_scale": in_gs})
    kernel = EmulationNvFp4LinearKernel(layer.config(torch.float32))
    kernel.process_weights(layer)
    ours = kernel.apply(layer, x)
    bound = 2.0**-16 * (x.abs() @ w.abs().t())
    excess = (ours - theirs).abs() - bound
    assert (excess <= 0).all(), f"max excess over the bound: {float(excess.max()):.3g}"
    # The check is not vacuous: a wrong input scale moves the output far outside it.
    wrong = checkpoints.from_compressed_tensors({**state, "input_global_scale": in_gs * 2})
    kernel.process_weights(wrong)
    assert ((kernel.apply(wrong, x) - theirs).abs() > bound).any()


# --- NVIDIA ModelOpt ------------------------------------------------------------------------


def modelopt_export(w: torch.Tensor):
    """mtq.quantize with NVFP4_DEFAULT_CFG on CPU, then the helpers its HF export uses."""
    import modelopt.torch.quantization as mtq
    from modelopt.torch.export import quant_utils as qu

    model = torch.nn.Sequential(torch.nn.Linear(K, N, bias=False)).to(torch.bfloat16)
    model[0].weight.data.copy_(w)
    calib = torch.randn(8, K, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mtq.quantize(model, mtq.NVFP4_DEFAULT_CFG, lambda m: m(calib))
    lin = model[0]
    fmt_name = qu.get_quantization_format(lin)
    wsf = qu.get_weight_scaling_factor(lin)
    wsf2 = qu.get_weight_scaling_factor_2(lin)
    packed = qu.to_quantized_weight(lin.weight, wsf, fmt_name, wsf2, 16)
    return {
        "weight": packed,
        "weight_scale": wsf,
        "weight_scale_2": wsf2,
        "input_scale": qu.get_activation_scaling_factor(lin),
    }, fmt_name


def test_modelopt_round_trip():
    from modelopt.torch.quantization.qtensor import NVFP4QTensor

    w = bf16_weight(2)
    sd, fmt_name = modelopt_export(w)
    assert "nvfp4" in str(fmt_name).lower()
    layer = checkpoints.from_modelopt({f"m.{k}": v for k, v in sd.items()}, prefix="m.")
    assert torch.equal(layer.weight, sd["weight"].view(torch.uint8))
    assert torch.equal(layer.weight_scale.view(torch.uint8), sd["weight_scale"].view(torch.uint8))
    # The decode factors as stored, bit for bit; their float32 reciprocals quantize.
    wsf2, in_scale = sd["weight_scale_2"].float(), sd["input_scale"].float()
    assert layer.weight_decode_scale is not None and layer.input_decode_scale is not None
    assert torch.equal(layer.weight_decode_scale, wsf2.reshape(()))
    assert torch.equal(layer.input_decode_scale, in_scale.reshape(()))
    assert torch.equal(layer.weight_global_scale, (1.0 / wsf2).reshape(()))
    assert torch.equal(layer.input_global_scale, (1.0 / in_scale).reshape(()))
    # Their unpacking: dequantize with unit scales gives the E2M1 values of the codes.
    q = NVFP4QTensor(w.shape, torch.float32, sd["weight"])
    ones = torch.ones(N, K // 16)
    values = q.dequantize(
        dtype=torch.float32, scale=ones, double_scale=torch.tensor(1.0), block_sizes={-1: 16}
    )
    ours = layer.dequantized_weight(torch.float32)
    assert torch.equal(ours, exact_decode(values, sd["weight_scale"].float(), decode=wsf2))
    # Their own decode, code * (scale * weight_scale_2), evaluated in float64: the same bits.
    theirs64 = q.dequantize(
        dtype=torch.float64,
        scale=sd["weight_scale"].double(),
        double_scale=sd["weight_scale_2"].double(),
        block_sizes={-1: 16},
    )
    assert theirs64.dtype == torch.float64
    assert torch.equal(ours, theirs64.float()), "ModelOpt's own decode (float64)"
    # Their float32 decode rounds scale * weight_scale_2 first.
    theirs32 = q.dequantize(
        dtype=torch.float32,
        scale=sd["weight_scale"],
        double_scale=sd["weight_scale_2"],
        block_sizes={-1: 16},
    )
    assert_float32_decode_agrees(ours, theirs32, values, "ModelOpt float32 decode")
    packed, scale = fmt.quantize(w, layer.weight_global_scale)
    assert_encoder_agrees(
        w, layer.weight_global_scale, packed, scale, sd["weight"], sd["weight_scale"], "modelopt"
    )


# --- torchao ---------------------------------------------------------------------------------


def torchao_tensor(w: torch.Tensor, act_amax: float | None = 4.0, swizzled: bool = False):
    from torchao.prototype.mx_formats.nvfp4_tensor import NVFP4Tensor, per_tensor_amax_to_scale

    pts = per_tensor_amax_to_scale(w.float().abs().amax())
    act = None if act_amax is None else per_tensor_amax_to_scale(torch.tensor(act_amax))
    return NVFP4Tensor.to_nvfp4(
        w, per_tensor_scale=pts, act_per_tensor_scale=act, is_swizzled_scales=swizzled
    )


@pytest.mark.parametrize("swizzled", [False, True], ids=["linear-scales", "swizzled-scales"])
def test_torchao_round_trip(swizzled):
    from torchao.prototype.mx_formats.kernels import f4_unpacked_to_f32, unpack_uint4

    w = bf16_weight(3)
    t = torchao_tensor(w, swizzled=swizzled)
    layer = checkpoints.from_torchao(t)
    plain = torchao_tensor(w)  # the same data with linear scales
    assert torch.equal(layer.weight, plain.qdata.view(torch.uint8))
    assert torch.equal(layer.weight_scale.view(torch.uint8), plain.scale.view(torch.uint8))
    # The decode factors as stored, bit for bit; their float32 reciprocals quantize.
    pts, act = t.per_tensor_scale.float(), t.act_per_tensor_scale.float()
    assert layer.weight_decode_scale is not None and layer.input_decode_scale is not None
    assert torch.equal(layer.weight_decode_scale, pts.reshape(()))
    assert torch.equal(layer.input_decode_scale, act.reshape(()))
    assert torch.equal(layer.weight_global_scale, (1.0 / pts).reshape(()))
    assert torch.equal(layer.input_global_scale, (1.0 / act).reshape(()))
    # Their decode, values * (per_tensor_scale * scale), in float64: the same bits as ours.
    values = f4_unpacked_to_f32(unpack_uint4(plain.qdata.view(torch.uint8)))
    ours = layer.dequantized_weight(torch.float32)
    assert torch.equal(ours, exact_decode(values, plain.scale.float(), decode=pts))
    # Their float32 decode rounds per_tensor_scale * scale first.
    assert_float32_decode_agrees(ours, t.dequantize(torch.float32), values, "torchao decode")
    packed, scale = fmt.quantize(w, layer.weight_global_scale)
    assert_encoder_agrees(
        w, layer.weight_global_scale, packed, scale, plain.qdata, plain.scale, "torchao"
    )


def test_torchao_loader_refusals():
    from torchao.prototype.mx_formats.nvfp4_tensor import QuantizeTensorToNVFP4Kwargs

    w = bf16_weight(4)
    weight_only = torchao_tensor(w, act_amax=None)
    assert checkpoints.from_torchao(weight_only).weight_only
    dynamic = torchao_tensor(w, act_amax=None)
    dynamic.act_quant_kwargs = QuantizeTensorToNVFP4Kwargs()
    with pytest.raises(ValueError, match="dynamic per-tensor scale"):
        checkpoints.from_torchao(dynamic)
    with pytest.raises(ValueError, match="expected a torchao"):
        checkpoints.from_torchao(w)
