"""Launch plans: the reduction order depends on (N, K) only; tile configs are validated."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernels.errors import FormatError
from kernels.gemm.plan import BUCKETS, GemmPlan, TileConfig, plan_for, tile_for


@given(n=st.integers(1, 70000), kb=st.integers(1, 4000))
def test_plan_is_valid_and_a_function_of_the_weight_shape(n, kb):
    k = 16 * kb
    plan = plan_for(n, k)
    assert plan == plan_for(n, k)
    assert plan.k_chunks % plan.split_k == 0
    assert plan.block_k in (128, 256) and plan.k_pad >= k and plan.n_pad >= n


def test_plan_takes_no_batch_argument():
    # The split must not be able to follow M: the planner has no M to look at.
    with pytest.raises(TypeError):
        plan_for(64, 256, m=4)  # type: ignore[call-arg]


@pytest.mark.parametrize("n, k, split", [(8192, 8192, 1), (28672, 8192, 1), (8192, 28672, 2), (1024, 4096, 4)])
def test_benchmark_shapes_plans(n, k, split):
    plan = plan_for(n, k)
    assert (plan.block_k, plan.split_k) == (256, split)


@given(m=st.integers(1, 1 << 20))
def test_every_m_gets_a_valid_tile_of_the_same_mma_family(m):
    for plan in (GemmPlan(8192, 8192, 256, 2), GemmPlan(28672, 8192, 256, 1)):
        tile = tile_for(m, plan)
        # 64 weight rows per warpgroup: always Hopper wgmma, never mma.sync
        assert tile.block_n in (64, 128) and tile.num_warps in (4, 4 * tile.block_n // 64)
        if plan.split_k == 1:
            assert tile.reduce == "inline"


def test_buckets_cover_increasing_m():
    limits = [b[0] for b in BUCKETS]
    assert limits == sorted(limits)


@pytest.mark.parametrize("kwargs, match", [
    (dict(block_m=8), "block_m must be one of"),
    (dict(block_n=32), "block_n must be 64 or 128"),
    (dict(num_warps=2), "num_warps=2 does not match"),
    (dict(reduce="atomic"), "reduce must be one of"),
    (dict(block_k=32), "block_k must be one of"),
    (dict(stripe_n=100, dense=True), "stripe_n must be 0 or a positive multiple of 128"),
    (dict(stripe_n=-128, dense=True), "stripe_n must be 0 or a positive multiple of 128"),
    (dict(stripe_n=256), "stripe_n needs dense=True"),
    (dict(stripe_n=256, dense=True, reduce="fused"), "stripe_n needs dense=True and reduce 'inline' or 'spill'"),
])
def test_bad_tile_configs_are_refused(kwargs, match):
    base = dict(block_m=16, block_n=64, num_warps=4, num_stages=3, reduce="inline")
    with pytest.raises(FormatError, match=match):
        TileConfig(**{**base, **kwargs})


def test_split_must_divide_the_chunks():
    with pytest.raises(FormatError, match="split_k=3 must divide the 8 K chunks"):
        GemmPlan(64, 1024, 128, 3)
    assert dataclasses.replace(GemmPlan(64, 1024, 128, 2), split_k=4).chunks_per_split == 2


def test_tile_for_refuses_empty_batches():
    with pytest.raises(FormatError, match="m must be >= 1"):
        tile_for(0, plan_for(64, 256))
