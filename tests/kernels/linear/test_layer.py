"""The weights container and its checkpoint loaders."""

from __future__ import annotations

import pytest
import torch

from kernels.errors import FormatError
from kernels.linear import NvFp4LinearLayer, checkpoints
from kernels.nvfp4 import format as fmt


def quantized(n=32, k=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=gen)
    gs = fmt.global_scale_from_amax(w.abs().max())
    packed, scale = fmt.quantize(w, gs)
    return w, gs, packed, scale


def test_from_float_sets_the_engine_convention() -> None:
    w, gs, packed, scale = quantized()
    layer = NvFp4LinearLayer.from_float(w, input_amax=3.0)
    assert torch.equal(layer.weight, packed)
    assert torch.equal(layer.weight_scale.float(), scale.float())
    assert layer.weight_global_scale.item() == pytest.approx(gs.item())
    assert layer.input_global_scale is not None
    assert layer.input_global_scale.item() == pytest.approx(448 * 6 / 3.0)
    assert (layer.in_features, layer.out_features, layer.weight_only) == (64, 32, False)
    assert NvFp4LinearLayer.from_float(w, input_amax=None).weight_only


def test_modelopt_checkpoint_stores_reciprocals() -> None:
    w, gs, packed, scale = quantized()
    tensors = {
        "model.layers.0.mlp.down_proj.weight": packed,
        "model.layers.0.mlp.down_proj.weight_scale": scale,
        # fused partitions: one dequant factor each; the max is taken
        "model.layers.0.mlp.down_proj.weight_scale_2": torch.stack([1.0 / gs, 0.5 / gs]),
        "model.layers.0.mlp.down_proj.input_scale": torch.tensor([0.01, 0.02]),
    }
    layer = checkpoints.from_modelopt(tensors, prefix="model.layers.0.mlp.down_proj.")
    # The stored decode factors are kept as stored; the multipliers are their float32 reciprocals.
    assert layer.weight_decode_scale is not None and layer.input_decode_scale is not None
    assert torch.equal(layer.weight_decode_scale, (1.0 / gs).reshape(()))
    assert torch.equal(layer.input_decode_scale, torch.tensor(0.02))
    assert torch.equal(layer.weight_global_scale, 1.0 / (1.0 / gs))
    assert layer.input_global_scale is not None
    assert torch.equal(layer.input_global_scale, 1.0 / torch.tensor(0.02))
    # The decode multiplies by the stored factor: code * scale * weight_scale_2, rounded once.
    assert torch.equal(
        layer.dequantized_weight(), fmt.dequantize(packed, scale, decode_scale=1.0 / gs)
    )
    values = fmt.e2m1_codes_to_float(fmt.unpack_fp4(packed)).double().reshape(32, 4, 16)
    exact = values * scale.double().unsqueeze(-1) * float(1.0 / gs)
    assert torch.equal(layer.dequantized_weight(), exact.reshape(32, 64).float())


#: decode factors whose float32 reciprocals do not invert back to them
F_W = torch.tensor(0.15) / 2688
F_IN = torch.tensor(2.5) / 2688


def modelopt_layer(weight_only: bool = False) -> NvFp4LinearLayer:
    _, _, packed, scale = quantized()
    tensors = {"weight": packed, "weight_scale": scale, "weight_scale_2": F_W.reshape(1)}
    if not weight_only:
        tensors["input_scale"] = F_IN.reshape(1)
    return checkpoints.from_modelopt(tensors)


def test_stored_decode_factor_is_not_the_reciprocal_of_the_multiplier() -> None:
    layer = modelopt_layer()
    assert float(1.0 / layer.weight_global_scale) != float(F_W)
    assert float(1.0 / layer.input_global_scale) != float(F_IN)  # type: ignore[operator]
    # Multiplying by the stored factor and dividing by the rounded reciprocal disagree.
    assert not torch.equal(
        layer.dequantized_weight(),
        fmt.dequantize(layer.weight, layer.weight_scale, layer.weight_global_scale),
    )


def test_decode_scales_and_output_scale() -> None:
    from fractions import Fraction

    stored = modelopt_layer()
    w, i = stored.decode_scales()
    assert w is stored.weight_decode_scale and i is stored.input_decode_scale
    # Two stored factors: alpha is their float32 product, one rounding.
    assert stored.output_scale().dtype == torch.float32
    assert torch.equal(stored.output_scale(), F_W * F_IN)
    assert torch.equal(modelopt_layer(weight_only=True).output_scale(), F_W)
    assert modelopt_layer(weight_only=True).decode_scales()[1] is None

    def correctly_rounded(q: Fraction) -> float:
        """The float32 nearest to the rational ``q`` (ties are not reached here)."""
        f = torch.tensor(float(q), dtype=torch.float32)
        around = (f, f.nextafter(torch.tensor(0.0)), f.nextafter(torch.tensor(1.0)))
        return min((float(c) for c in around), key=lambda c: abs(Fraction(c) - q))

    # Two multipliers: 1 / (gs_w * gs_in) correctly rounded (not the float32 1 / fl32(product)).
    plain = NvFp4LinearLayer.from_float(
        torch.randn(16, 32, generator=torch.Generator().manual_seed(4)), input_amax=3.7
    )
    assert plain.input_global_scale is not None
    gs_w = Fraction(float(plain.weight_global_scale))
    gs_in = Fraction(float(plain.input_global_scale))
    assert float(plain.output_scale()) == correctly_rounded(1 / (gs_w * gs_in))
    w, i = plain.decode_scales()
    assert torch.equal(w, 1.0 / plain.weight_global_scale)
    assert torch.equal(i, 1.0 / plain.input_global_scale)  # type: ignore[operator]
    # Mixed: a stored weight factor and an input multiplier.
    mixed = NvFp4LinearLayer(
        weight=stored.weight,
        weight_scale=stored.weight_scale,
        weight_global_scale=stored.weight_global_scale,
        input_global_scale=torch.tensor(1234.5),
        weight_decode_scale=F_W,
    )
    assert float(mixed.output_scale()) == correctly_rounded(Fraction(float(F_W)) / Fraction(1234.5))


def test_decode_factor_must_match_the_multiplier() -> None:
    layer = modelopt_layer()
    fields = dict(
        weight=layer.weight,
        weight_scale=layer.weight_scale,
        weight_global_scale=layer.weight_global_scale,
        input_global_scale=layer.input_global_scale,
    )
    with pytest.raises(FormatError, match="weight_global_scale .* is not the float32 reciprocal "
                                          "of weight_decode_scale"):
        NvFp4LinearLayer(**fields, weight_decode_scale=F_W * 2)
    with pytest.raises(FormatError, match="input_global_scale .* is not the float32 reciprocal"):
        NvFp4LinearLayer(**fields, input_decode_scale=F_W)
    with pytest.raises(FormatError, match="weight_decode_scale must be finite and > 0"):
        NvFp4LinearLayer(**fields, weight_decode_scale=torch.tensor(0.0))
    with pytest.raises(FormatError, match="input_decode_scale is set but input_global_scale is None"):
        NvFp4LinearLayer(**{**fields, "input_global_scale": None}, input_decode_scale=F_IN)
    with pytest.raises(FormatError, match=r"ModelOpt weight_scale_2 must be finite and > 0, got 0.0"):
        checkpoints.from_modelopt(
            {"weight": layer.weight, "weight_scale": layer.weight_scale,
             "weight_scale_2": torch.zeros(1)}
        )
    with pytest.raises(FormatError, match=r"ModelOpt l.input_scale must be finite and > 0"):
        checkpoints.from_modelopt(
            {"l.weight": layer.weight, "l.weight_scale": layer.weight_scale,
             "l.weight_scale_2": F_W, "l.input_scale": torch.tensor([float("nan")])},
            prefix="l.",
        )


def test_compressed_tensors_checkpoint_stores_multipliers() -> None:
    w, gs, packed, scale = quantized()
    tensors = {
        "weight_packed": packed,
        "weight_scale": scale,
        "weight_global_scale": gs.reshape(1),
        "input_global_scale": torch.tensor([50.0]),
        "bias": torch.zeros(32),
    }
    layer = checkpoints.from_compressed_tensors(tensors)
    assert layer.weight_global_scale.item() == pytest.approx(gs.item())
    assert layer.input_global_scale is not None and layer.input_global_scale.item() == 50.0
    assert layer.bias is not None
    w4a16 = checkpoints.from_compressed_tensors(
        {k: v for k, v in tensors.items() if k != "input_global_scale"}
    )
    assert w4a16.weight_only


def test_missing_checkpoint_tensor_is_named() -> None:
    with pytest.raises(FormatError, match=r"ModelOpt checkpoint: missing tensor 'l.weight_scale_2'"):
        checkpoints.from_modelopt({"l.weight": torch.zeros(1, 8, dtype=torch.uint8)}, prefix="l.")


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(weight=torch.zeros(4, 8, dtype=torch.int8)), "weight must be 2-D torch.uint8"),
        (dict(weight=torch.zeros(4, 12, dtype=torch.uint8)), "K = 24 is not a multiple of 16"),
        (dict(weight_scale=torch.zeros(4, 2)), "weight_scale must be float8_e4m3fn"),
        (dict(weight_scale=torch.zeros(4, 1).to(torch.float8_e4m3fn)), r"weight_scale has shape \(4, 1\), expected \(4, 2\)"),
        (dict(weight_global_scale=torch.tensor(float("inf"))), "weight_global_scale must be finite"),
        (dict(input_global_scale=torch.tensor(0.0)), "input_global_scale must be finite and > 0"),
        (dict(bias=torch.zeros(5)), r"bias must have shape \(4,\)"),
    ],
)
def test_container_refuses_inconsistent_tensors(change, message) -> None:
    fields = dict(
        weight=torch.zeros(4, 16, dtype=torch.uint8),
        weight_scale=torch.zeros(4, 2).to(torch.float8_e4m3fn),
        weight_global_scale=torch.tensor(1.0),
        input_global_scale=torch.tensor(1.0),
    )
    fields.update(change)
    with pytest.raises(FormatError, match=message):
        NvFp4LinearLayer(**fields)


def test_to_device_drops_backend_preparation() -> None:
    layer = NvFp4LinearLayer.from_float(torch.randn(16, 32), input_amax=1.0)
    layer.prepared["x"] = 1
    layer.processed_by = "emulation"
    copy = layer.to("cpu")
    assert copy.prepared == {} and copy.processed_by is None
    assert torch.equal(copy.weight, layer.weight)


def test_to_device_keeps_the_stored_decode_factors() -> None:
    layer = modelopt_layer()
    copy = layer.to("cpu")
    assert torch.equal(copy.weight_decode_scale, F_W)  # type: ignore[arg-type]
    assert torch.equal(copy.input_decode_scale, F_IN)  # type: ignore[arg-type]
    assert torch.equal(copy.dequantized_weight(), layer.dequantized_weight())
