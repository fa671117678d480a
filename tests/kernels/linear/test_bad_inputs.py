"""The kernel API under bad input: every backend refuses the same inputs the same way.

``from_float`` on empty and all-zero weights (the documented convention),
``apply`` on inputs that require grad, biases of another device or dtype, and
tensors fuzzed over dtype, shape, device, layout, NaN/inf and requires_grad on
the emulation and Triton (interpreter) backends: each call returns an output
of the right shape and dtype that does not require grad, or raises the
project's :class:`~kernels.errors.FormatError` before any kernel runs.
"""

from __future__ import annotations

import logging

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernels.errors import FormatError
from kernels.linear.checkpoints import from_modelopt
from kernels.linear.config import NvFp4LinearConfig
from kernels.linear.emulation import EmulationNvFp4LinearKernel
from kernels.linear.layer import ZERO_TENSOR_GLOBAL_SCALE, NvFp4LinearLayer
from kernels.linear.select import decide, init_nvfp4_linear_kernel
from kernels.linear.triton import TritonNvFp4LinearKernel
from kernels.platform import Platform

N, K = 16, 32
CPU_INTERPRET = Platform(
    name="cpu", device_type="cpu", packages=frozenset({"triton"}), triton_interpret=True
)


def _kernel(cls, act_dtype=torch.bfloat16):
    layer = NvFp4LinearLayer.from_float(
        torch.randn(N, K, generator=torch.Generator().manual_seed(0)), input_amax=4.0
    )
    kernel = cls(layer.config(act_dtype), CPU_INTERPRET)
    kernel.process_weights(layer)
    return kernel, layer


BACKENDS = [EmulationNvFp4LinearKernel, TritonNvFp4LinearKernel]


def test_from_float_refuses_an_empty_weight():
    for shape in ((0, K), (N, 0), (0, 0)):
        with pytest.raises(FormatError, match="needs N > 0 and K > 0"):
            NvFp4LinearLayer.from_float(torch.zeros(shape), input_amax=1.0)


def test_from_float_of_an_all_zero_weight_is_exact_zeros():
    layer = NvFp4LinearLayer.from_float(torch.zeros(N, K), input_amax=1.0)
    assert float(layer.weight_global_scale) == ZERO_TENSOR_GLOBAL_SCALE
    assert not layer.weight.any() and not layer.weight_scale.float().any()
    assert torch.equal(layer.dequantized_weight(), torch.zeros(N, K))
    kernel = EmulationNvFp4LinearKernel(layer.config(), CPU_INTERPRET)
    kernel.process_weights(layer)
    assert torch.equal(kernel.apply(layer, torch.randn(3, K, dtype=torch.bfloat16)),
                       torch.zeros(3, N, dtype=torch.bfloat16))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_from_float_refuses_a_weight_without_finite_amax(bad):
    weight = torch.zeros(N, K)
    weight[1, 2] = bad
    with pytest.raises(FormatError, match="NaN or inf"):
        NvFp4LinearLayer.from_float(weight, input_amax=1.0)


@pytest.mark.parametrize("cls", BACKENDS)
def test_apply_accepts_an_input_that_requires_grad(cls):
    kernel, layer = _kernel(cls)
    x = torch.randn(2, K, dtype=torch.bfloat16, requires_grad=True)
    out = kernel.apply(layer, x)
    assert out.shape == (2, N) and not out.requires_grad
    assert torch.equal(out, kernel.apply(layer, x.detach()))


@pytest.mark.parametrize("cls", BACKENDS)
@pytest.mark.parametrize(
    ("bias", "message"),
    [
        (torch.ones(N, dtype=torch.int64), "bias must be a floating-point tensor"),
        (torch.ones(N, dtype=torch.bool), "bias must be a floating-point tensor"),
        (torch.ones(N, device="meta"), "bias is a meta tensor"),
        (torch.ones(N + 1), r"bias must have shape \(16,\)"),
        (torch.ones(N).to_sparse(), "bias must be a dense"),
    ],
)
def test_every_backend_refuses_the_same_bias_the_same_way(cls, bias, message):
    kernel, layer = _kernel(cls)
    with pytest.raises(FormatError, match=message):
        kernel.apply(layer, torch.randn(2, K, dtype=torch.bfloat16), bias=bias)


def test_a_layer_refuses_an_integer_bias():
    with pytest.raises(FormatError, match="bias must be a floating-point tensor"):
        NvFp4LinearLayer.from_float(torch.randn(N, K), input_amax=1.0,
                                    bias=torch.ones(N, dtype=torch.int32))


def test_unknown_disabled_kernel_names_are_a_warning_with_the_closest_class(caplog):
    env = {"VLLM_DISABLED_KERNELS": "TritonNvfp4LinearKernel,MarlinLinearKernel"}
    config = NvFp4LinearConfig(K, N)
    decision = decide(config, CPU_INTERPRET, env)
    notes = [m for m in decision.messages if "names no NVFP4 kernel" in m]
    assert len(notes) == 2
    assert any("TritonNvfp4LinearKernel (the closest NVFP4 kernel class is "
               "TritonNvFp4LinearKernel)" in m for m in notes)
    assert decision.backend == "triton"  # nothing was disabled: not an error either
    with caplog.at_level(logging.INFO, logger="kernels.linear"):
        init_nvfp4_linear_kernel(config, CPU_INTERPRET, env)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("MarlinLinearKernel" in r.getMessage() for r in warned)
    forced = decide(config, CPU_INTERPRET, {**env, "VLLM_USE_NVFP4_CT_EMULATIONS": "1"})
    assert any("names no NVFP4 kernel called MarlinLinearKernel" in m for m in forced.messages)


DTYPES = [torch.bfloat16, torch.float16, torch.float32, torch.float64, torch.int32, torch.uint8,
          torch.bool, torch.complex64, torch.float8_e4m3fn]


@st.composite
def inputs(draw):
    dtype = draw(st.sampled_from(DTYPES))
    lead = draw(st.lists(st.integers(0, 3), max_size=2))
    last = draw(st.sampled_from([K, K, K, 0, 16, K + 1]))
    shape = (*lead, last)
    if dtype.is_floating_point and dtype != torch.float8_e4m3fn:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 99))))
        fill = draw(st.sampled_from([None, float("nan"), float("inf"), -float("inf"), 1e30]))
        if fill is not None and x.numel():
            x.view(-1)[draw(st.integers(0, x.numel() - 1))] = fill
        x = x.to(dtype)
    else:
        x = torch.zeros(shape).to(dtype)
    layout = draw(st.sampled_from(["contiguous", "transposed", "sparse", "meta", "expanded"]))
    if layout == "transposed" and x.dim() >= 2:
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    elif layout == "sparse" and x.dim() >= 1 and dtype != torch.float8_e4m3fn:
        x = x.to_sparse()
    elif layout == "meta":
        x = torch.empty(shape, dtype=dtype, device="meta")
    elif layout == "expanded" and x.dim() >= 1 and x.numel():
        x = x[..., :1, :].expand(*x.shape) if x.dim() >= 2 else x
    if draw(st.booleans()) and x.is_floating_point() and x.layout == torch.strided:
        x = x.detach().requires_grad_(True)
    return x


def _check_apply(kernel, layer, x):
    try:
        out = kernel.apply(layer, x)
    except FormatError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert out.shape == (*x.shape[:-1], N)
    assert out.dtype == kernel.config.act_dtype and not out.requires_grad
    assert torch.isfinite(out.float()).all() or not torch.isfinite(x.float()).all()


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(x=inputs(), act=st.sampled_from([torch.bfloat16, torch.float16, torch.float32]))
def test_fuzzed_inputs_to_the_emulation_backend(x, act):
    kernel, layer = _kernel(EmulationNvFp4LinearKernel, act)
    _check_apply(kernel, layer, x)


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(x=inputs())
def test_fuzzed_inputs_to_the_triton_backend_under_the_interpreter(x):
    kernel, layer = _kernel(TritonNvFp4LinearKernel)
    _check_apply(kernel, layer, x)


# --- meta tensors (a shape and a dtype, no data) are refused before any work ---------------------

META = "is a meta tensor (a shape and a dtype, no data): materialize it first"


def _meta(t: torch.Tensor) -> torch.Tensor:
    return t.to("meta")


def test_every_entry_point_refuses_a_meta_tensor_with_a_format_error():
    from kernels.nvfp4 import format as fmt

    kernel, layer = _kernel(EmulationNvFp4LinearKernel)
    weight = torch.randn(N, K)
    modelopt = {
        "weight": _meta(layer.weight),
        "weight_scale": _meta(layer.weight_scale),
        "weight_scale_2": torch.tensor(0.01, device="meta"),
        "input_scale": torch.tensor(0.01, device="meta"),
    }
    calls = {
        "weight": lambda: NvFp4LinearLayer.from_float(_meta(weight), input_amax=1.0),
        "input_amax": lambda: NvFp4LinearLayer.from_float(
            weight, input_amax=torch.tensor(1.0, device="meta")
        ),
        "the tensor to quantize": lambda: fmt.quantize(torch.empty(4, 32, device="meta"), 1.0),
        "packed NVFP4 data": lambda: fmt.dequantize(
            _meta(layer.weight), _meta(layer.weight_scale), 1.0
        ),
        "global_scale": lambda: fmt.check_global_scale(torch.tensor(1.0, device="meta")),
        "weight_scale": lambda: NvFp4LinearLayer(
            weight=layer.weight,
            weight_scale=_meta(layer.weight_scale),
            weight_global_scale=layer.weight_global_scale,
            input_global_scale=layer.input_global_scale,
        ),
        "ModelOpt weight": lambda: from_modelopt(modelopt),
        "x": lambda: kernel.apply(layer, torch.empty(2, K, dtype=torch.bfloat16, device="meta")),
        "bias": lambda: kernel.apply(
            layer, torch.randn(2, K, dtype=torch.bfloat16), bias=torch.empty(N, device="meta")
        ),
    }
    for what, call in calls.items():
        with pytest.raises(FormatError) as info:
            call()
        message = str(info.value)
        assert META in message and what.split()[-1] in message, (what, message)


def test_a_weight_too_small_to_scale_names_its_amax():
    with pytest.raises(FormatError) as info:
        NvFp4LinearLayer.from_float(torch.full((32, 64), 1e-40), input_amax=1.0)
    message = str(info.value)
    assert message.startswith("the weight's amax 9.99995e-41 is too small: the global scale ")
    assert "(the smallest amax NVFP4 can scale is 7.9e-36)" in message
    with pytest.raises(FormatError, match=r"^input_amax 1e-40 is too small"):
        NvFp4LinearLayer.from_float(torch.ones(32, 64), input_amax=1e-40)
    # just above the bound it scales: the bound is the real one
    from kernels.nvfp4.format import MIN_AMAX

    layer = NvFp4LinearLayer.from_float(torch.full((32, 64), MIN_AMAX * 1.01), input_amax=1.0)
    assert torch.isfinite(layer.weight_global_scale)
