"""The weights container and its checkpoint loaders."""

from __future__ import annotations

import pytest
import torch

from kernels.errors import FormatError
from kernels.linear import NvFp4LinearLayer
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
    layer = NvFp4LinearLayer.from_modelopt(tensors, prefix="model.layers.0.mlp.down_proj.")
    assert layer.weight_global_scale.item() == pytest.approx(gs.item())
    assert layer.input_global_scale is not None
    assert layer.input_global_scale.item() == pytest.approx(1 / 0.02)
    torch.testing.assert_close(layer.dequantized_weight(), fmt.dequantize(packed, scale, gs))


def test_compressed_tensors_checkpoint_stores_multipliers() -> None:
    w, gs, packed, scale = quantized()
    tensors = {
        "weight_packed": packed,
        "weight_scale": scale,
        "weight_global_scale": gs.reshape(1),
        "input_global_scale": torch.tensor([50.0]),
        "bias": torch.zeros(32),
    }
    layer = NvFp4LinearLayer.from_compressed_tensors(tensors)
    assert layer.weight_global_scale.item() == pytest.approx(gs.item())
    assert layer.input_global_scale is not None and layer.input_global_scale.item() == 50.0
    assert layer.bias is not None
    w4a16 = NvFp4LinearLayer.from_compressed_tensors(
        {k: v for k, v in tensors.items() if k != "input_global_scale"}
    )
    assert w4a16.weight_only


def test_missing_checkpoint_tensor_is_named() -> None:
    with pytest.raises(FormatError, match=r"ModelOpt checkpoint: missing tensor 'l.weight_scale_2'"):
        NvFp4LinearLayer.from_modelopt({"l.weight": torch.zeros(1, 8, dtype=torch.uint8)}, prefix="l.")


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
