"""The emulation backend: float64 agreement, bitwise batch invariance, input checks."""

from __future__ import annotations

import pytest
import torch

from kernels.errors import FormatError
from kernels.linear import NvFp4LinearConfig, NvFp4LinearLayer
from kernels.linear.emulation import ROW_TILE, EmulationNvFp4LinearKernel, tiled_matmul
from kernels.nvfp4 import format as fmt
from kernels.platform import Platform

CPU = Platform("cpu", "cpu")


def make(n=48, k=64, *, weight_only=False, bias=False, dtype=torch.bfloat16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=gen)
    b = torch.randn(n, generator=gen) if bias else None
    layer = NvFp4LinearLayer.from_float(w, input_amax=None if weight_only else 4.0, bias=b)
    kernel = EmulationNvFp4LinearKernel(layer.config(dtype), CPU)
    kernel.process_weights(layer)
    return kernel, layer


def reference_float64(layer: NvFp4LinearLayer, x: torch.Tensor) -> torch.Tensor:
    """Dequantized operands, float64 product: the format's definition of the layer."""
    w = layer.dequantized_weight(torch.float64)
    if layer.input_global_scale is None:
        a = x.double()
    else:
        a = fmt.quantize_dequantize(x, layer.input_global_scale, torch.float64)
    out = a @ w.t()
    if layer.bias is not None:
        out = out + layer.bias.double()
    return out


@pytest.mark.parametrize("weight_only", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_matches_float64_reference(weight_only: bool, bias: bool) -> None:
    kernel, layer = make(weight_only=weight_only, bias=bias, dtype=torch.float32)
    x = torch.randn(37, 64, generator=torch.Generator().manual_seed(5))
    out = kernel.apply(layer, x)
    ref = reference_float64(layer, x)
    # float32 accumulation over K=64 of exact products: a few float32 ulps.
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def test_bf16_output_is_the_rounded_float32_result() -> None:
    kernel, layer = make(dtype=torch.bfloat16)
    x = torch.randn(9, 64, generator=torch.Generator().manual_seed(6)).bfloat16()
    out = kernel.apply(layer, x)
    assert out.dtype == torch.bfloat16
    ref = reference_float64(layer, x).float().bfloat16()
    assert (out.float() - ref.float()).abs().max() <= ref.float().abs().max() * 2**-7


def test_row_is_bitwise_identical_for_every_batch_size_1_to_64() -> None:
    kernel, layer = make(n=40, k=96, bias=True, dtype=torch.bfloat16)
    x = torch.randn(64, 96, generator=torch.Generator().manual_seed(7)).bfloat16()
    full = kernel.apply(layer, x)
    for m in range(1, 65):
        part = kernel.apply(layer, x[:m])
        assert torch.equal(part, full[:m]), f"rows differ at M={m}"
    for i in range(64):
        assert torch.equal(kernel.apply(layer, x[i : i + 1]), full[i : i + 1]), f"row {i} alone"


def test_rows_do_not_see_each_other() -> None:
    kernel, layer = make(dtype=torch.float32)
    x = torch.randn(ROW_TILE + 3, 64, generator=torch.Generator().manual_seed(8))
    base = kernel.apply(layer, x)
    noisy = x.clone()
    noisy[1:] = torch.randn_like(noisy[1:]) * 1e4  # huge neighbours, same row 0
    assert torch.equal(kernel.apply(layer, noisy)[0], base[0])
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(9))
    assert torch.equal(kernel.apply(layer, x[perm]), base[perm])


def test_leading_dimensions_are_kept() -> None:
    kernel, layer = make(dtype=torch.float32)
    x = torch.randn(2, 3, 64)
    out = kernel.apply(layer, x)
    assert out.shape == (2, 3, 48)
    assert torch.equal(out.reshape(6, 48), kernel.apply(layer, x.reshape(6, 64)))


def test_never_nan_where_the_reference_is_finite() -> None:
    kernel, layer = make(dtype=torch.float32)
    x = torch.zeros(4, 64)
    x[1] = 1e30  # saturates the static activation scale
    out = kernel.apply(layer, x)
    assert torch.isfinite(out).all()


def test_tiled_matmul_equals_mm_shape_for_shape() -> None:
    a = torch.randn(70, 16)
    b = torch.randn(16, 8)
    out = tiled_matmul(a, b)
    assert out.shape == (70, 8)
    torch.testing.assert_close(out, a @ b)


# --- refusals before any work -------------------------------------------------------


def test_refuses_wrong_shape_dtype_and_unprocessed_layer() -> None:
    kernel, layer = make(dtype=torch.bfloat16)
    with pytest.raises(FormatError, match=r"x has shape \(4, 32\), expected \[\.\.\., 64\]"):
        kernel.apply(layer, torch.zeros(4, 32, dtype=torch.bfloat16))
    with pytest.raises(FormatError, match="x has dtype torch.float16, the layer was configured for torch.bfloat16"):
        kernel.apply(layer, torch.zeros(4, 64, dtype=torch.float16))
    with pytest.raises(FormatError, match=r"bias must have shape \(48,\)"):
        kernel.apply(layer, torch.zeros(4, 64, dtype=torch.bfloat16), bias=torch.zeros(3))
    fresh = NvFp4LinearLayer.from_float(torch.randn(48, 64), input_amax=1.0)
    with pytest.raises(ValueError, match="call EmulationNvFp4LinearKernel.process_weights"):
        kernel.apply(fresh, torch.zeros(1, 64, dtype=torch.bfloat16))


def test_config_validation() -> None:
    with pytest.raises(FormatError, match="must be positive"):
        NvFp4LinearConfig(0, 4)
    with pytest.raises(FormatError, match="act_dtype"):
        NvFp4LinearConfig(16, 4, act_dtype=torch.int8)
    assert NvFp4LinearConfig(16, 4, weight_only=True, has_bias=True).describe() == "W4A16 N=4 K=16 bfloat16, bias"
