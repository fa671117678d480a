"""Layers that keep a checkpoint's stored decode factors (ModelOpt, torchao) through the forward.

The weight decodes to ``code * block_scale * f`` with ``f`` as stored, and the
GEMM backends multiply by ``f_w * f_in`` rounded once; the quantization
multipliers are the float32 reciprocals. Checked here on the CPU for the
emulation backend (against a float64 reference built from the stored factors)
and the Triton backend under the interpreter (its epilogue alpha bit for bit,
its output against emulation within the documented agreement). The Blackwell
library backends are checked with fakes in test_blackwell_backends.py.
"""

from __future__ import annotations

import pytest
import torch

from kernels.linear import checkpoints
from kernels.linear.emulation import EmulationNvFp4LinearKernel
from kernels.linear.layer import NvFp4LinearLayer
from kernels.linear.triton import TritonNvFp4LinearKernel
from kernels.nvfp4 import format as fmt
from kernels.platform import Platform

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in divide:RuntimeWarning")

CPU = Platform("cpu", "cpu")
INTERPRETER = Platform(
    name="cpu", device_type="cpu", packages=frozenset({"triton"}), triton_interpret=True
)
#: decode factors whose float32 reciprocals do not invert back to them (1 / fl32(1 / f) != f)
F_W = torch.tensor(0.15) / 2688
F_IN = torch.tensor(2.5) / 2688
N, K = 48, 160


def modelopt_layer(*, weight_only: bool, bias: bool = False, seed: int = 0) -> NvFp4LinearLayer:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(N, K, generator=g) * 0.05
    packed, scale = fmt.quantize(w, 1 / F_W)
    tensors = {"weight": packed, "weight_scale": scale, "weight_scale_2": F_W.reshape(1)}
    if not weight_only:
        tensors["input_scale"] = F_IN.reshape(1)
    if bias:
        tensors["bias"] = torch.randn(N, generator=g)
    return checkpoints.from_modelopt(tensors)


def reference_float64(layer: NvFp4LinearLayer, x: torch.Tensor) -> torch.Tensor:
    """Exact operands from the stored factors (``code * scale * f``), float64 product."""
    codes = fmt.e2m1_codes_to_float(fmt.unpack_fp4(layer.weight)).double()
    w = codes.reshape(N, -1, 16) * layer.weight_scale.double().unsqueeze(-1) * float(F_W)
    if layer.input_global_scale is None:
        a = x.double()
    else:
        packed, scale = fmt.quantize(x, layer.input_global_scale)
        a_codes = fmt.e2m1_codes_to_float(fmt.unpack_fp4(packed)).double()
        a = a_codes.reshape(x.shape[0], -1, 16) * scale.double().unsqueeze(-1) * float(F_IN)
        a = a.reshape(x.shape)
    out = a @ w.reshape(N, K).t()
    if layer.bias is not None:
        out = out + layer.bias.double()
    return out


@pytest.mark.parametrize("weight_only", [False, True], ids=["W4A4", "W4A16"])
def test_emulation_decodes_with_the_stored_factors(weight_only):
    layer = modelopt_layer(weight_only=weight_only, bias=True)
    kernel = EmulationNvFp4LinearKernel(layer.config(torch.float32), CPU)
    kernel.process_weights(layer)
    x = torch.randn(37, K, generator=torch.Generator().manual_seed(5)) * 1.5
    out = kernel.apply(layer, x)
    ref = reference_float64(layer, x)
    # float32 accumulation over K=160 of exactly decoded operands: a few float32 ulps.
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    # The decoded operands are the stored-factor ones, bit for bit.
    w = fmt.dequantize_raw(
        layer.weight, layer.weight_scale, None, decode_scale=layer.weight_decode_scale
    )
    assert torch.equal(w, layer.dequantized_weight())


@pytest.mark.parametrize("weight_only", [False, True], ids=["W4A4", "W4A16"])
def test_triton_alpha_is_the_stored_factor_product(weight_only):
    layer = modelopt_layer(weight_only=weight_only, seed=1)
    kernel = TritonNvFp4LinearKernel(layer.config(torch.bfloat16), INTERPRETER)
    kernel.process_weights(layer)
    p = layer.prepared
    # Dequant path: the weight operand carries 2**-8, so alpha is 256 * f_w (* f_in),
    # one float32 value computed on the host, applied as one multiply in the epilogue.
    expected = F_W if weight_only else F_W * F_IN
    assert p["path"] == "dequant"
    assert isinstance(p["alpha"], float)
    assert p["alpha"] == float(expected) * 256.0
    assert p["alpha"] == float(torch.tensor(p["alpha"], dtype=torch.float32))
    assert p["input_scale"] == (None if weight_only else float(1 / F_IN))


@pytest.mark.parametrize("weight_only", [False, True], ids=["W4A4", "W4A16"])
def test_triton_agrees_with_emulation_and_is_batch_invariant(weight_only):
    layer = modelopt_layer(weight_only=weight_only, bias=True, seed=2)
    triton = TritonNvFp4LinearKernel(layer.config(torch.bfloat16), INTERPRETER)
    triton.process_weights(layer)
    emu_layer = layer.to("cpu")
    emu = EmulationNvFp4LinearKernel(emu_layer.config(torch.bfloat16), CPU)
    emu.process_weights(emu_layer)
    x = (torch.randn(5, K, generator=torch.Generator().manual_seed(3)) * 2).to(torch.bfloat16)
    got = triton.apply(layer, x)
    ref = emu.apply(emu_layer, x).double()
    # The documented agreement with emulation (tests/triton/test_triton_gemm.py): 2**-7 in bf16.
    assert float((got.double() - ref).norm() / ref.norm()) <= 2.0**-7
    for m in (1, 3):
        assert torch.equal(triton.apply(layer, x[:m]), got[:m])
