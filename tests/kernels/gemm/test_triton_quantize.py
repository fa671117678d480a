"""The Triton activation quantizer is bitwise kernels.nvfp4.format.quantize_raw (interpreter on CPU)."""

from __future__ import annotations

import pytest
import torch

from kernels.nvfp4 import format as fmt

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in divide:RuntimeWarning")


def _special_input(dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 1040, generator=g) * torch.logspace(-12, 3, 1040)
    x[0, :16] = 0.0                                  # an all-zero block: scale 0, codes 0
    x[1, 3] = float("nan")                           # NaN: code +0, ignored by the amax
    x[2, 40] = float("inf")                          # inf: scale 448, code 6
    x[3, 70] = -float("inf")
    x[4, 5] = -0.0                                   # keeps its sign: code 8
    ties = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0, 7.0, -0.25, -0.75, -1.25, -2.5, -3.5, -5.0, 448.0]
    x[5, :32] = torch.tensor(ties * 2)               # E2M1 ties to even, in a block whose scale is 448/6
    return x.to(dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_codes_scales_and_values_are_bitwise_the_reference(dtype):
    from kernels.gemm.quantize import nvfp4_quantize

    x = _special_input(dtype)
    gs = torch.tensor(1.0) if dtype != torch.float32 else fmt.global_scale_from_amax(100.0)
    values, codes, scales = nvfp4_quantize(x, float(gs), values=True, codes=True)
    ref_codes, ref_scales = fmt.quantize_raw(x, gs)
    assert torch.equal(codes, ref_codes)
    assert torch.equal(scales.view(torch.uint8), ref_scales.view(torch.uint8))
    ref_values = (fmt.e2m1_codes_to_float(fmt.unpack_fp4(ref_codes)).reshape(6, -1, 16)
                  * ref_scales.float().unsqueeze(-1)).reshape(6, -1).to(dtype)
    bits = torch.int32 if dtype == torch.float32 else torch.int16
    assert torch.equal(values.view(bits), ref_values.view(bits))


def test_every_scale_rounding_case_matches():
    from kernels.gemm.quantize import nvfp4_quantize

    # block amaxes spread over 20 binades: normal and subnormal E4M3 scales, ties included
    g = torch.Generator().manual_seed(11)
    x = torch.rand(48, 2048, generator=g) * torch.logspace(-9, 4, 2048)
    gs = torch.tensor(7.3125)
    _, codes, scales = nvfp4_quantize(x, float(gs), values=False, codes=True)
    ref_codes, ref_scales = fmt.quantize_raw(x, gs)
    assert torch.equal(codes, ref_codes)
    assert torch.equal(scales.view(torch.uint8), ref_scales.view(torch.uint8))


def test_rows_are_quantized_independently():
    from kernels.gemm.quantize import nvfp4_quantize

    x = _special_input(torch.bfloat16)
    whole, _, _ = nvfp4_quantize(x, 1.0)
    for i in range(x.shape[0]):
        row, _, _ = nvfp4_quantize(x[i:i + 1], 1.0)
        assert torch.equal(row.view(torch.int16), whole[i:i + 1].view(torch.int16))


@pytest.mark.parametrize("call, match", [
    (lambda q: q(torch.zeros(2, 24), 1.0), "K=24 .* not a multiple of the block size 16"),
    (lambda q: q(torch.zeros(2, 32, dtype=torch.int32), 1.0), "bfloat16, float16 or float32"),
    (lambda q: q(torch.zeros(32), 1.0), "2-D tensor"),
    (lambda q: q(torch.zeros(2, 32), float("inf")), "finite and > 0"),
    (lambda q: q(torch.zeros(2, 32), 1.0, values=False), "nothing to compute"),
    (lambda q: q(torch.zeros(32, 2).t(), 1.0), "unit stride along K"),
])
def test_bad_arguments_are_refused_before_launch(call, match):
    from kernels.gemm.quantize import nvfp4_quantize

    with pytest.raises(ValueError, match=match):
        call(nvfp4_quantize)
