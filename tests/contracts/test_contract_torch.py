"""``cublaslt`` against the real PyTorch scaled matmul API (the installed CPU build).

* Our ``torch.nn.functional.scaled_mm`` and ``torch._scaled_mm`` calls, recorded
  on the matrix layers' shapes, bind to the real Python signature / operator
  schema; the recipes and swizzles are members of the real enums.
* The real ``scaled_mm`` front end runs on our arguments down to the operator
  (``torch._scaled_mm_v2``), whose call binds to the ``aten::_scaled_mm_v2``
  schema with the enum values PyTorch itself derives.
* PyTorch's own test helper for the 128x4 scale layout (``to_blocked``, used by
  its NVFP4 scaled-mm tests) is bitwise our swizzle.
* What a CPU build cannot check: the FP4 argument checks live in the CUDA
  implementation (``ScaledBlas.cpp``); the CPU kernels refuse earlier, and that
  refusal is asserted so a build that starts checking on CPU is noticed.
"""

from __future__ import annotations

import pytest
import torch

from kernels.linear.config import NvFp4LinearConfig
from kernels.linear.cublaslt import CublasLtNvFp4LinearKernel, scaled_mm_entry
from kernels.linear.layer import NvFp4LinearLayer
from kernels.nvfp4 import layout
from kernels.platform import Platform
from tests.contracts import contract
from tests.contracts.support import Call, Recorder, matrix_layers
from tests.support import fakes

F = torch.nn.functional
REAL_SCALED_MM = F.scaled_mm
REAL_SCALED_MM_V1 = torch._scaled_mm
SCHEMA_V1 = torch.ops.aten._scaled_mm.default._schema
SCHEMA_V2 = torch.ops.aten._scaled_mm_v2.default._schema
FAKE_B200 = Platform(
    name="fake B200 (contracts)",
    device_type="cuda",
    capability=(10, 0),
    cuda_version=(12, 8),
    packages=frozenset(),
)
M_VALUES = (1, 129)


def random_layer(n: int, k: int, bias: bool = False) -> NvFp4LinearLayer:
    g = torch.Generator().manual_seed(n + k)
    return NvFp4LinearLayer(
        weight=torch.randint(0, 256, (n, k // 2), generator=g, dtype=torch.uint8),
        weight_scale=torch.randint(0x20, 0x48, (n, k // 16), generator=g, dtype=torch.uint8).view(
            torch.float8_e4m3fn
        ),
        weight_global_scale=torch.tensor(1536.0),
        input_global_scale=torch.tensor(448.0),
        bias=torch.randn(n, generator=g) if bias else None,
    )


def _cases():
    for spec in matrix_layers():
        config = NvFp4LinearConfig(spec.k, spec.n, spec.dtype, spec.weight_only)
        if CublasLtNvFp4LinearKernel.can_implement(config)[0]:
            for m in M_VALUES:
                yield pytest.param(spec, m, id=f"{spec.name}-M{m}")


@pytest.fixture
def recorded(monkeypatch, no_device_check):
    fake = fakes.FakeScaledMM()
    v2 = Recorder("scaled_mm", fake.scaled_mm, real=REAL_SCALED_MM)
    v1 = Recorder("_scaled_mm", fake._scaled_mm)
    monkeypatch.setattr(F, "scaled_mm", v2)
    monkeypatch.setattr(torch, "_scaled_mm", v1)
    return {"scaled_mm": v2, "_scaled_mm": v1}


def _run(spec, m, bias=False):
    layer = random_layer(spec.n, spec.k, bias)
    kernel = CublasLtNvFp4LinearKernel(layer.config(spec.dtype), platform=FAKE_B200)
    kernel.process_weights(layer)
    x = torch.randn(m, spec.k, generator=torch.Generator().manual_seed(m)).to(spec.dtype)
    out = kernel.apply(layer, x)
    assert out.shape == (m, spec.n) and out.dtype == spec.dtype
    return layer


def _to_v2_operator(call: Call) -> Call:
    """Run the real ``scaled_mm`` front end on ``call``; return what reaches ``_scaled_mm_v2``."""
    seen = Recorder("_scaled_mm_v2", lambda *a, **k: torch.empty(0))
    real_v2 = torch._scaled_mm_v2
    torch._scaled_mm_v2 = seen
    try:
        REAL_SCALED_MM(*call.args, **call.kwargs)
    finally:
        torch._scaled_mm_v2 = real_v2
    (op_call,) = seen.calls
    return op_call


@pytest.mark.parametrize("spec,m", list(_cases()))
def test_scaled_mm_call_binds_to_the_real_api(spec, m, recorded):
    assert scaled_mm_entry() == "scaled_mm"
    layer = _run(spec, m)
    assert not recorded["_scaled_mm"].calls
    (call,) = recorded["scaled_mm"].calls
    bound = contract.bind(REAL_SCALED_MM, call)
    args = bound.arguments
    # Enum members of the real enums, in the NVFP4 two-level recipe.
    for side in ("a", "b"):
        recipe, swizzle = args[f"scale_recipe_{side}"], args[f"swizzle_{side}"]
        assert recipe == [F.ScalingType.BlockWise1x16, F.ScalingType.TensorWise]
        assert swizzle == [F.SwizzleType.SWIZZLE_32_4_4, F.SwizzleType.NO_SWIZZLE]
        assert all(isinstance(r, type(F.ScalingType.TensorWise)) for r in recipe)
        assert all(isinstance(s, type(F.SwizzleType.NO_SWIZZLE)) for s in swizzle)
        block, tensor = args[f"scale_{side}"]
        assert block.dtype == torch.float8_e4m3fn and block.is_contiguous() and block.dim() == 1
        assert tensor.dtype == torch.float32 and tensor.numel() == 1
    a, b = args["mat_a"], args["mat_b"]
    assert a.dtype == b.dtype == torch.float4_e2m1fn_x2
    assert a.stride(1) == 1 and b.stride(0) == 1, "mat_a row-major, mat_b column-major"
    k = 2 * a.shape[1]
    assert k % 16 == 0 and b.shape[1] % 16 == 0, "PyTorch needs K and N multiples of 16"
    for side, rows in (("a", m), ("b", b.shape[1])):
        want = layout.round_up(rows, 128) * layout.round_up(k // 16, 4)
        got = args[f"scale_{side}"][0].numel()
        assert got == want, f"scale_{side}[0]: {got} scales, the 128x4 layout needs {want}"
    assert float(args["scale_a"][1]) == pytest.approx(1 / float(layer.input_global_scale))
    assert float(args["scale_b"][1]) == pytest.approx(1 / float(layer.weight_global_scale))
    assert args["output_dtype"] == spec.dtype and args["bias"] is None
    assert args["use_fast_accum"] is False and tuple(args["contraction_dim"]) == ()

    # The real front end takes our arguments and hands the operator its schema's types.
    op_call = _to_v2_operator(call)
    op = contract.bind_schema(SCHEMA_V2, op_call).arguments
    recipe_ints = [int(F.ScalingType.BlockWise1x16.value), int(F.ScalingType.TensorWise.value)]
    swizzle_ints = [int(F.SwizzleType.SWIZZLE_32_4_4.value), int(F.SwizzleType.NO_SWIZZLE.value)]
    assert op["recipe_a"] == op["recipe_b"] == recipe_ints
    assert op["swizzle_a"] == op["swizzle_b"] == swizzle_ints
    assert op["out_dtype"] == spec.dtype


@pytest.mark.parametrize("spec,m", list(_cases())[:2])
def test_scaled_mm_v1_call_binds_to_the_real_schema(spec, m, recorded, monkeypatch):
    monkeypatch.delattr(F, "scaled_mm")
    assert scaled_mm_entry() == "_scaled_mm"
    _run(spec, m, bias=True)
    (call,) = recorded["_scaled_mm"].calls
    args = contract.bind_schema(SCHEMA_V1, call).arguments
    assert args["self"].dtype == args["mat2"].dtype == torch.float4_e2m1fn_x2
    assert args["scale_a"].dtype == args["scale_b"].dtype == torch.float8_e4m3fn
    # float32 out (the unscaled product overflows fp16), no bias with it, no result scale.
    assert args["out_dtype"] == torch.float32
    assert args["bias"] is None and args["scale_result"] is None
    assert args["use_fast_accum"] is False


def test_schema_binding_can_fail():
    bad = Call("_scaled_mm", (torch.zeros(1),) * 4, {"output_dtype": torch.float32})
    with pytest.raises(contract.ContractError, match="does not bind"):
        contract.bind_schema(SCHEMA_V1, bad)
    wrong_type = Call("_scaled_mm", (torch.zeros(1),) * 4, {"out_dtype": "float32"})
    with pytest.raises(contract.ContractError, match="out_dtype.*ScalarType"):
        contract.bind_schema(SCHEMA_V1, wrong_type)


def test_pytorch_to_blocked_is_our_swizzle():
    """``torch.testing._internal.common_quantized.to_blocked``: the layout PyTorch tests feed cuBLASLt."""
    from torch.testing._internal.common_quantized import to_blocked

    for rows, cols in [(128, 4), (130, 5), (1, 1), (300, 64), (4096, 256)]:
        sf = torch.randint(0, 127, (rows, cols), dtype=torch.uint8).view(torch.float8_e4m3fn)
        theirs = to_blocked(sf).view(torch.uint8)
        ours = layout.swizzle_scales(sf).view(torch.uint8).reshape(-1)
        assert torch.equal(theirs, ours), f"[{rows}, {cols}]"


def test_cpu_build_refuses_fp4_before_its_checks():
    """The limit: a CPU build has no FP4 block-scaled path, so its argument checks never run.

    ``scaled_mm`` refuses any swizzle on CPU and ``_scaled_mm``'s CPU kernel
    knows TensorWise/RowWise float8 only. If a future CPU build runs these, this
    test fails and the contract should call the real thing instead.
    """
    fp4 = torch.float4_e2m1fn_x2
    a = torch.zeros(128, 16, dtype=torch.uint8).view(fp4)
    b = torch.zeros(32, 16, dtype=torch.uint8).view(fp4).t()
    sa = torch.zeros(128 * 4, dtype=torch.float8_e4m3fn)
    sb = torch.zeros(128 * 4, dtype=torch.float8_e4m3fn)
    recipe = [F.ScalingType.BlockWise1x16, F.ScalingType.TensorWise]
    swizzle = [F.SwizzleType.SWIZZLE_32_4_4, F.SwizzleType.NO_SWIZZLE]
    with pytest.raises((ValueError, RuntimeError), match="CPU does not support swizzle"):
        REAL_SCALED_MM(
            a,
            b,
            scale_a=[sa, torch.ones(1)],
            scale_recipe_a=recipe,
            scale_b=[sb, torch.ones(1)],
            scale_recipe_b=recipe,
            swizzle_a=swizzle,
            swizzle_b=swizzle,
            output_dtype=torch.bfloat16,
        )
    with pytest.raises((ValueError, RuntimeError), match="Invalid scaling configuration"):
        REAL_SCALED_MM_V1(a, b, sa, sb, out_dtype=torch.float32)
