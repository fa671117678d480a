"""The ``triton`` backend on a real GPU: agreement, batch invariance, CUDA graphs.

Every test here is marked ``gpu`` and skips with the exact reason on a machine
without CUDA. On Blackwell the W4A4 layers take the ``dot_scaled`` path; the
weight-only layers, and every layer on Ampere/Hopper, the explicit-dequant path.
"""

from __future__ import annotations

import pytest
import torch

from kernels.linear.emulation import EmulationNvFp4LinearKernel
from tests.kernels.gemm.triton_helpers import make_layer, rel_err, requires_cuda, sqnr_db

pytestmark = [pytest.mark.gpu, requires_cuda]

REL_TOL = {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10}
MIN_SQNR_DB = {torch.bfloat16: 40.0, torch.float16: 58.0}
#: (N, K): one plan with K splits (partial/inline buckets) and one without
SHAPES = [(1024, 4096), (1536, 768)]


def _prepared(n, k, weight_only, dtype=torch.bfloat16, seed=0, bias=False):
    from kernels.linear.triton import TritonNvFp4LinearKernel

    layer = make_layer(n, k, weight_only=weight_only, seed=seed, device="cuda", bias=bias)
    kernel = TritonNvFp4LinearKernel(layer.config(dtype))
    kernel.process_weights(layer)
    return kernel, layer


@pytest.mark.parametrize("weight_only", [False, True], ids=["W4A4", "W4A16"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("m", [1, 16, 200, 1500])
def test_agrees_with_emulation_on_gpu(weight_only, dtype, m):
    kernel, layer = _prepared(1024, 4096, weight_only, dtype, seed=1, bias=True)
    emu_layer = make_layer(1024, 4096, weight_only=weight_only, seed=1, device="cuda", bias=True)
    emu = EmulationNvFp4LinearKernel(emu_layer.config(dtype))
    emu.process_weights(emu_layer)
    x = (torch.randn(m, 4096, device="cuda") * 2).to(dtype)
    got = kernel.apply(layer, x)
    ref = emu.apply(emu_layer, x)
    assert not torch.isnan(got).any()
    assert rel_err(ref, got) <= REL_TOL[dtype]
    assert sqnr_db(ref, got) >= MIN_SQNR_DB[dtype]


@pytest.mark.batch_invariance
@pytest.mark.parametrize("weight_only", [False, True], ids=["W4A4", "W4A16"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_m_up_to_256_and_a_sample_to_8192_is_bitwise_the_m1_rows(weight_only, shape):
    n, k = shape
    kernel, layer = _prepared(n, k, weight_only, seed=2, bias=True)
    g = torch.Generator(device="cuda").manual_seed(3)
    x = torch.randn(8192, k, device="cuda", generator=g).to(torch.bfloat16)
    rows = torch.cat([kernel.apply(layer, x[i:i + 1]) for i in range(8192)])
    bad = [m for m in range(1, 257) if not torch.equal(kernel.apply(layer, x[:m]), rows[:m])]
    bad += [m for m in (257, 300, 511, 512, 513, 777, 1024, 2048, 3000, 4096, 6000, 8192)
            if not torch.equal(kernel.apply(layer, x[:m]), rows[:m])]
    assert not bad, f"batch sizes whose rows differ from the M=1 rows: {bad}"


@pytest.mark.batch_invariance
@pytest.mark.parametrize("m", [13, 300, 2000])
def test_row_permutation_garbage_padding_and_repeats(m):
    kernel, layer = _prepared(1024, 4096, False, seed=4)
    g = torch.Generator(device="cuda").manual_seed(5)
    x = torch.randn(m, 4096, device="cuda", generator=g).to(torch.bfloat16)
    y = kernel.apply(layer, x)
    perm = torch.randperm(m, device="cuda", generator=g)
    assert torch.equal(kernel.apply(layer, x[perm]), y[perm])
    junk = torch.empty(m + 37, 4096, device="cuda", dtype=torch.bfloat16)
    junk[:m] = x
    junk[m:m + 20] = float("nan")
    junk[m + 20:] = 6.0e4
    assert torch.equal(kernel.apply(layer, junk)[:m], y)
    for _ in range(5):
        assert torch.equal(kernel.apply(layer, x), y)


@pytest.mark.batch_invariance
@pytest.mark.parametrize("m", [1, 16, 600])
def test_cuda_graph_replay_matches_eager_and_m1_rows(m):
    kernel, layer = _prepared(1024, 4096, False, seed=6, bias=True)
    static_x = torch.randn(m, 4096, device="cuda").to(torch.bfloat16)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        kernel.apply(layer, static_x)  # warm-up: compile outside the capture
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = kernel.apply(layer, static_x)
    for seed in (7, 8):
        fresh = torch.randn(m, 4096, device="cuda", generator=torch.Generator(device="cuda").manual_seed(seed))
        static_x.copy_(fresh.to(torch.bfloat16))
        graph.replay()
        torch.cuda.synchronize()
        eager = kernel.apply(layer, static_x)
        rows = torch.cat([kernel.apply(layer, static_x[i:i + 1]) for i in range(min(m, 8))])
        assert torch.equal(static_y, eager)
        assert torch.equal(static_y[: rows.shape[0]], rows)


@pytest.mark.batch_invariance
def test_every_tile_config_is_one_bit_class_on_this_gpu():
    """Each speed choice (batch tile, weight tile, K step, partial/inline, dense, stripes) gives the same bits."""
    from kernels.gemm import layout as L
    from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm
    from kernels.gemm.plan import BUCKETS, GemmPlan, TileConfig
    from tests.kernels.gemm.triton_helpers import quantized_weight

    packed, scale, gs = quantized_weight(n=1024, k=4096, seed=9, device="cuda")
    x = torch.randn(300, 4096, device="cuda").to(torch.bfloat16)
    for split in (1, 4):
        plan = GemmPlan(1024, 4096, 256, split)
        prepared = L.pack_dequant_weights(packed, scale, 256)
        tiles = [t for _, single, several in BUCKETS for t in (single if split == 1 else several,)]
        tiles += [TileConfig(16, 64, 4, 4, "inline", block_k=128),
                  TileConfig(64, 128, 8, 3, "inline", block_k=128, dense=True)]
        # dense in stripes (384: a last stripe of 256 rows)
        tiles += [TileConfig(bm, 128, 8, 3, "inline" if split == 1 else "spill", block_k=64, dense=True,
                             stripe_n=s) for bm, s in ((256, 256), (128, 384))]
        outs = [nvfp4_dequant_gemm(x, prepared, plan, 1.0, None, t) for t in tiles]
        classes = {i for i, y in enumerate(outs) if not torch.equal(y, outs[0])}
        assert not classes, f"split {split}: tiles {[tiles[i] for i in classes]} differ from {tiles[0]}"


@pytest.mark.batch_invariance
def test_warp_specialized_kernel_is_the_triton_kernels_bit_class():
    """The Gluon kernel (tiles of its table and a benchmark candidate) gives the Triton kernel's bits.

    bf16 on the plan's 4 K splits and unsplit, fp16 unsplit; rows also against
    the M = 1 rows. Skips with the reason where the kernel cannot run (no
    sm90, or a Triton without the Gluon API it was written for).
    """
    import dataclasses

    from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm
    from kernels.gemm.plan import GemmPlan, TileConfig, tile_for
    from kernels.gemm.wgmma_gemm import (
        GLUON_TRITON,
        WsTile,
        supported,
        ws_dequant_gemm,
        ws_tile_for,
    )

    n, k = 1024, 4096
    probe = torch.zeros(1, k, device="cuda", dtype=torch.bfloat16)
    if not supported(probe, GemmPlan(n, k, 256, 1)):
        pytest.skip(f"the warp-specialized kernel needs sm90 and Triton {GLUON_TRITON}; this machine has "
                    f"sm_{''.join(map(str, torch.cuda.get_device_capability()))}")
    for dtype, splits in ((torch.bfloat16, (4, 1)), (torch.float16, (1, ))):
        kernel, layer = _prepared(n, k, True, dtype, seed=11, bias=True)
        p = layer.prepared
        x = torch.randn(300, k, device="cuda").to(dtype)
        bias = torch.randn(n, device="cuda").to(dtype)
        for split in splits:
            plan = dataclasses.replace(p["plan"], split_k=split)
            ones = torch.cat([nvfp4_dequant_gemm(x[i:i + 1], p["weights"], plan, p["alpha"], bias,
                                                 TileConfig(16, 64, 4, 3, "inline")) for i in range(4)])
            for m in (1, 33, 128, 300):
                ref = nvfp4_dequant_gemm(x[:m], p["weights"], plan, p["alpha"], bias,
                                         dataclasses.replace(tile_for(m, plan), reduce="inline"))
                tiles = [ws_tile_for(m, plan)] + ([WsTile(128, 64, x_stages=4, raw_stages=4)] if m >= 128 else [])
                for tile in tiles:
                    y = ws_dequant_gemm(x[:m], p["weights"], plan, p["alpha"], bias, tile)
                    assert torch.equal(y, ref), f"{dtype} split {split} M={m} {tile}"
                    assert torch.equal(y[:min(m, 4)], ones[:min(m, 4)]), f"{dtype} split {split} M={m} {tile}"
