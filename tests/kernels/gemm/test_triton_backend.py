"""The ``triton`` backend's weight processing and forward contract (CPU, interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from kernels.errors import FormatError
from kernels.platform import Platform, use_platform
from tests.kernels.gemm.triton_helpers import make_layer

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in divide:RuntimeWarning")


def _kernel(layer, dtype=torch.bfloat16):
    from kernels.linear.triton import TritonNvFp4LinearKernel

    return TritonNvFp4LinearKernel(layer.config(dtype))


def test_process_weights_records_plan_path_and_scales():
    from kernels.gemm.plan import plan_for

    layer = make_layer(48, 160, weight_only=False, seed=1)
    kernel = _kernel(layer)
    kernel.process_weights(layer)
    p = layer.prepared
    assert layer.processed_by == "triton"
    assert p["path"] == "dequant" and p["plan"] == plan_for(48, 160)
    w_gs, in_gs = float(layer.weight_global_scale), float(layer.input_global_scale)
    assert p["input_scale"] == in_gs
    assert p["alpha"] == pytest.approx(256.0 / (w_gs * in_gs), rel=1e-6)


def test_weight_only_layer_has_no_input_scale():
    layer = make_layer(48, 160, weight_only=True, seed=1)
    kernel = _kernel(layer)
    kernel.process_weights(layer)
    assert layer.prepared["input_scale"] is None
    assert layer.prepared["alpha"] == pytest.approx(256.0 / float(layer.weight_global_scale), rel=1e-6)


def test_apply_before_process_weights_is_refused():
    layer = make_layer(48, 160, weight_only=True, seed=1)
    with pytest.raises(ValueError, match="call TritonNvFp4LinearKernel.process_weights"):
        _kernel(layer).apply(layer, torch.zeros(2, 160, dtype=torch.bfloat16))


def test_wrong_input_is_refused_with_both_sides():
    layer = make_layer(48, 160, weight_only=True, seed=1)
    kernel = _kernel(layer)
    kernel.process_weights(layer)
    with pytest.raises(FormatError, match=r"x has shape \(2, 144\), expected \[\.\.\., 160\]"):
        kernel.apply(layer, torch.zeros(2, 144, dtype=torch.bfloat16))
    with pytest.raises(FormatError, match="x has dtype torch.float16, the layer was configured for "
                                          "torch.bfloat16"):
        kernel.apply(layer, torch.zeros(2, 160, dtype=torch.float16))


def test_non_contiguous_input_is_accepted():
    layer = make_layer(48, 160, weight_only=True, seed=2)
    kernel = _kernel(layer)
    kernel.process_weights(layer)
    x = torch.randn(160, 6).to(torch.bfloat16)
    assert torch.equal(kernel.apply(layer, x.t()), kernel.apply(layer, x.t().contiguous()))


def test_bias_argument_overrides_the_layer_bias():
    layer = make_layer(48, 160, weight_only=True, seed=3, bias=True)
    kernel = _kernel(layer)
    kernel.process_weights(layer)
    x = torch.randn(3, 160).to(torch.bfloat16)
    no_bias = torch.zeros(48, dtype=torch.bfloat16)
    with_layer_bias = kernel.apply(layer, x)
    overridden = kernel.apply(layer, x, bias=no_bias)
    assert not torch.equal(with_layer_bias, overridden)


def test_gpu_weights_need_a_gpu_platform():
    layer = make_layer(48, 160, weight_only=True, seed=1)
    gpu = Platform(name="fake H100", device_type="cuda", capability=(9, 0), packages={"triton"},
                   triton_version=(3, 6))
    with use_platform(gpu):
        kernel = _kernel(layer)
    with pytest.raises(FormatError, match="weight is on cpu, but the kernel was built for sm_90"):
        kernel.process_weights(layer)


@pytest.mark.parametrize("family, triton_version, expected", [
    (10, (3, 6), "dot_scaled"), (12, (3, 6), "dot_scaled"), (12, (3, 5), "dequant"),
    (9, (3, 9), "dequant"), (8, (3, 9), "dequant"),
])
def test_path_for_fake_platforms(family, triton_version, expected):
    from kernels.linear.triton import TritonNvFp4LinearKernel

    p = Platform(name="fake", device_type="cuda", capability=(family, 0), packages={"triton"},
                 triton_version=triton_version)
    assert TritonNvFp4LinearKernel.path_for(p) == expected


_COMPILE = textwrap.dedent("""
    import re, triton
    from triton.backends.compiler import GPUTarget
    from kernels.gemm import dot_scaled_gemm as G
    fn = G._nvfp4_dot_scaled_kernel
    types = dict(a_ptr='*u8', sa_ptr='*u8', w_ptr='*u8', sw_ptr='*u8', bias_ptr='*bf16', y_ptr='*bf16',
                 part_ptr='*fp32', M='i32', N='i32', K='i32', stride_am='i32', stride_sam='i32',
                 stride_wn='i32', stride_swn='i32', stride_ym='i32', alpha='fp32')
    consts = dict(BLOCK_M=16, BLOCK_N=128, BLOCK_K=256, SPLIT_K=2, STEPS_PER_SPLIT=4, GROUP_M=8,
                  PARTIAL=True, HAS_BIAS=True, NUM_STAGES=3)
    sig = {a: ('constexpr' if a in consts else types[a]) for a in fn.arg_names}
    for arch in (100, 120):
        k = triton.compile(triton.compiler.ASTSource(fn, sig, consts),
                           target=GPUTarget('cuda', arch, 32), options=dict(num_warps=4))
        ops = sorted(set(re.findall(r'(?:tcgen05\\.mma|mma\\.sync)[^ ;]*', k.asm['ptx'])))
        print(arch, ops)
""")


def test_dot_scaled_kernel_lowers_to_native_nvfp4_mma_for_blackwell():
    """Compile-only (no GPU needed): sm100 and sm120 get block-scaled FP4 MMAs with E4M3 scales.

    Runs in a subprocess: the interpreter switch of this test session would
    otherwise replace the JIT functions that the compiler needs.
    """
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    try:
        out = subprocess.run([sys.executable, "-c", _COMPILE], capture_output=True, text=True,
                             env=env, timeout=240, check=False, cwd=Path(__file__).resolve().parents[3])
    except subprocess.TimeoutExpired:
        pytest.fail("compiling the dot_scaled kernel for sm100/sm120 took more than 240 s")
    if out.returncode != 0 and "ptxas" in out.stderr and "not found" in out.stderr:
        pytest.skip("this Triton install has no ptxas for Blackwell targets")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert "kind::mxf4nvf4.block_scale" in lines["100"]
    assert "kind::mxf4nvf4.block_scale" in lines["120"] and "ue4m3" in lines["120"]
