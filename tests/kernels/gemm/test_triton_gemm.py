"""The explicit-dequant GEMM and the ``triton`` backend on the CPU (Triton interpreter, tiny shapes).

The same properties are checked on a real GPU in test_triton_gpu.py; here they
run in CI on every change.
"""

from __future__ import annotations

import pytest
import torch

from kernels.linear.emulation import EmulationNvFp4LinearKernel
from tests.kernels.gemm.triton_helpers import make_layer, quantized_weight, rel_err, sqnr_db

pytestmark = [pytest.mark.filterwarnings("ignore:.*encountered in divide:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")]

#: documented agreement with ``emulation`` (docs/benchmarks.md#numerics): one
#: output ulp at most in the worst case, far less in practice
REL_TOL = {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10}
MIN_SQNR_DB = {torch.bfloat16: 40.0, torch.float16: 58.0}


def _backend(layer, dtype):
    from kernels.linear.triton import TritonNvFp4LinearKernel

    kernel = TritonNvFp4LinearKernel(layer.config(dtype))
    kernel.process_weights(layer)
    return kernel


def _emulation(layer, dtype):
    layer = layer.to("cpu")
    kernel = EmulationNvFp4LinearKernel(layer.config(dtype))
    kernel.process_weights(layer)
    return kernel, layer


@pytest.mark.parametrize("weight_only", [False, True], ids=["W4A4", "W4A16"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("bias", [False, True])
def test_agrees_with_emulation(weight_only, dtype, bias):
    layer = make_layer(96, 272, weight_only=weight_only, seed=1, bias=bias)
    emu, emu_layer = _emulation(layer, dtype)
    kernel = _backend(layer, dtype)
    x = (torch.randn(2, 7, 272, generator=torch.Generator().manual_seed(2)) * 2).to(dtype)
    got = kernel.apply(layer, x)
    ref = emu.apply(emu_layer, x)
    assert got.shape == (2, 7, 96) and got.dtype == dtype
    assert not torch.isnan(got).any()
    assert rel_err(ref, got) <= REL_TOL[dtype]
    assert sqnr_db(ref, got) >= MIN_SQNR_DB[dtype]


def test_never_nan_where_the_reference_is_finite():
    layer = make_layer(64, 256, weight_only=False, seed=4)
    emu, emu_layer = _emulation(layer, torch.bfloat16)
    kernel = _backend(layer, torch.bfloat16)
    x = torch.randn(6, 256)
    x[0, 5] = float("inf")      # saturates to code 6 with scale 448 in its block
    x[1, :] = 3.0e38            # huge but finite: saturates
    x[2, 7] = float("nan")      # NaN activations quantize to +0 (W4A4)
    x[3, :] = 0.0
    x = x.to(torch.bfloat16)
    got = kernel.apply(layer, x)
    ref = emu.apply(emu_layer, x)
    finite = torch.isfinite(ref)
    assert finite.all()
    assert not torch.isnan(got[finite]).any()
    assert rel_err(ref, got) <= REL_TOL[torch.bfloat16]


@pytest.mark.parametrize("weight_only", [False, True], ids=["W4A4", "W4A16"])
def test_rows_are_bitwise_batch_invariant(weight_only):
    layer = make_layer(64, 256, weight_only=weight_only, seed=5, bias=True)
    kernel = _backend(layer, torch.bfloat16)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(24, 256, generator=g).to(torch.bfloat16)
    singles = torch.cat([kernel.apply(layer, x[i:i + 1]) for i in range(24)])
    for m in (1, 2, 3, 7, 16, 17, 24):
        assert torch.equal(kernel.apply(layer, x[:m]), singles[:m]), m
    perm = torch.randperm(24, generator=g)
    assert torch.equal(kernel.apply(layer, x[perm]), singles[perm])
    # garbage in the other rows of the batch never reaches a row
    junk = torch.cat([x[:5], torch.full((11, 256), float("nan")), torch.full((4, 256), 6e4)])
    assert torch.equal(kernel.apply(layer, junk.to(torch.bfloat16))[:5], singles[:5])
    # repeated runs
    assert torch.equal(kernel.apply(layer, x), kernel.apply(layer, x))


def test_every_tile_config_gives_the_same_bits():
    """All speed choices (batch tile, weight tile, K step, reduction mode, dense) share one order."""
    from kernels.gemm import layout as L
    from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm
    from kernels.gemm.plan import GemmPlan, TileConfig

    packed, scale, gs = quantized_weight(n=96, k=1008, seed=8)
    plan = GemmPlan(96, 1008, 256, 2)
    prepared = L.pack_dequant_weights(packed, scale, 256)
    x = torch.randn(21, 1008, generator=torch.Generator().manual_seed(9)).to(torch.bfloat16)
    bias = torch.randn(96, generator=torch.Generator().manual_seed(10))
    alpha = 256.0 / float(gs)
    tiles = [
        TileConfig(16, 64, 4, 2, "partial", block_k=256), TileConfig(16, 64, 4, 2, "inline", block_k=128),
        TileConfig(32, 128, 8, 2, "partial", block_k=128), TileConfig(64, 64, 4, 3, "inline", block_k=256),
        TileConfig(16, 128, 8, 2, "inline", block_k=64, dense=True),
        TileConfig(32, 64, 4, 2, "partial", block_k=128, dense=True),
        TileConfig(16, 64, 4, 2, "fused", block_k=256), TileConfig(32, 64, 4, 2, "spill", block_k=64),
        TileConfig(16, 128, 8, 2, "spill", block_k=64, dense=True),
        TileConfig(16, 64, 4, 2, "fused", block_k=128, dense=True),
    ]
    outs = [nvfp4_dequant_gemm(x, prepared, plan, alpha, bias, t) for t in tiles]
    for t, y in zip(tiles[1:], outs[1:], strict=True):
        assert torch.equal(y, outs[0]), t


@pytest.mark.parametrize("split", [1, 2])
def test_dense_stripes_give_the_unstriped_bits(split):
    """Decoding the weight a stripe of rows at a time (one reused scratch) changes no bit.

    300 rows: stripes of 128 leave a last stripe of 44 logical rows inside
    its padded 128; the bias and the spilled running total must follow each
    stripe's first row.
    """
    from kernels.gemm import layout as L
    from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm
    from kernels.gemm.plan import GemmPlan, TileConfig

    packed, scale, gs = quantized_weight(n=300, k=512, seed=21)
    plan = GemmPlan(300, 512, 128, split)
    prepared = L.pack_dequant_weights(packed, scale, 128)
    x = torch.randn(19, 512, generator=torch.Generator().manual_seed(22)).to(torch.bfloat16)
    bias = torch.randn(300, generator=torch.Generator().manual_seed(23))
    red = "spill" if split > 1 else "inline"
    base = nvfp4_dequant_gemm(x, prepared, plan, 256.0 / float(gs), bias,
                              TileConfig(16, 64, 4, 2, "partial" if split > 1 else "inline", block_k=128))
    for stripe in (128, 256, 384):
        tile = TileConfig(16, 128, 8, 2, red, block_k=64, dense=True, stripe_n=stripe)
        assert torch.equal(nvfp4_dequant_gemm(x, prepared, plan, 256.0 / float(gs), bias, tile), base), stripe


def test_each_split_count_is_batch_invariant():
    """Whatever split the plan fixes, full batches equal their rows computed one at a time."""
    from kernels.gemm import layout as L
    from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm
    from kernels.gemm.plan import GemmPlan, TileConfig

    packed, scale, gs = quantized_weight(n=64, k=1024, seed=12)
    prepared = L.pack_dequant_weights(packed, scale, 128)
    x = torch.randn(5, 1024, generator=torch.Generator().manual_seed(13)).to(torch.bfloat16)
    for split in (1, 2, 8):
        plan = GemmPlan(64, 1024, 128, split)
        red = "partial" if split > 1 else "inline"
        full = nvfp4_dequant_gemm(x, prepared, plan, 1.0, None, TileConfig(16, 64, 4, 2, red, block_k=128))
        rows = torch.cat([nvfp4_dequant_gemm(x[i:i + 1], prepared, plan, 1.0) for i in range(5)])
        assert torch.equal(full, rows), split


def test_fused_reduction_leaves_its_counters_zero_for_the_next_call():
    """The last program of each tile resets its ticket: one buffer serves every call."""
    from kernels.gemm import layout as L
    from kernels.gemm.dequant_gemm import counter_slots, nvfp4_dequant_gemm
    from kernels.gemm.plan import GemmPlan, TileConfig

    packed, scale, gs = quantized_weight(n=80, k=512, seed=14)
    prepared = L.pack_dequant_weights(packed, scale, 128)
    plan = GemmPlan(80, 512, 128, 4)
    tile = TileConfig(16, 64, 4, 2, "fused", block_k=128)
    x = torch.randn(20, 512, generator=torch.Generator().manual_seed(15)).to(torch.bfloat16)
    counters = torch.zeros(counter_slots(20, 80, tile), dtype=torch.int32)
    ref = nvfp4_dequant_gemm(x, prepared, plan, 1.0, None, TileConfig(16, 64, 4, 2, "partial", block_k=128))
    for _ in range(2):
        assert torch.equal(nvfp4_dequant_gemm(x, prepared, plan, 1.0, None, tile, counters=counters), ref)
        assert int(counters.abs().sum()) == 0
    with pytest.raises(ValueError, match="counters must be int32 .* at least 4 elements"):
        nvfp4_dequant_gemm(x, prepared, plan, 1.0, None, tile, counters=counters[:3])


def _gemm_args(**over):
    from kernels.gemm import layout as L
    from kernels.gemm.plan import plan_for

    packed, scale, gs = quantized_weight()
    plan = plan_for(40, 160)
    args = dict(x=torch.zeros(3, 160, dtype=torch.bfloat16),
                weights=L.pack_dequant_weights(packed, scale, plan.block_k), plan=plan, alpha=1.0)
    args.update(over)
    return args


@pytest.mark.parametrize("over, match", [
    (dict(x=torch.zeros(3, 144, dtype=torch.bfloat16)), r"x has K=144 .* weight has K=160"),
    (dict(x=torch.zeros(3, 160, dtype=torch.float32)), "bfloat16 or float16"),
    (dict(x=torch.zeros(160, dtype=torch.bfloat16)), "2-D tensor"),
    (dict(x=torch.zeros(160, 3, dtype=torch.bfloat16).t()), "unit stride along K"),
    (dict(bias=torch.zeros(41)), r"bias must have shape \(40,\)"),
])
def test_gemm_refuses_bad_arguments_before_launch(over, match):
    from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm

    with pytest.raises(ValueError, match=match):
        nvfp4_dequant_gemm(**_gemm_args(**over))


def test_gemm_refuses_a_plan_of_another_weight():
    from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm
    from kernels.gemm.plan import GemmPlan

    with pytest.raises(ValueError, match="does not match the prepared weight"):
        nvfp4_dequant_gemm(**_gemm_args(plan=GemmPlan(40, 160, 256, 1)))


def test_empty_batch_gives_an_empty_output():
    from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm

    y = nvfp4_dequant_gemm(**_gemm_args(x=torch.zeros(0, 160, dtype=torch.bfloat16)))
    assert y.shape == (0, 40)
