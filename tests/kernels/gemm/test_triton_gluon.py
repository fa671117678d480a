"""The warp-specialized Gluon kernel (kernels/gemm/wgmma_gemm.py) where no GPU is needed.

Its numerics and batch invariance are checked on an H100 by the GPU tests
(``test_triton_gpu.py``); here: the tile table, the support rule, and an
offline compile for sm90 whose disassembly must show what the kernel is for
(both ``wgmma`` operands in shared memory, 16-byte operand stores, no local
memory, fewer decode instructions per weight element than the Triton kernel).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kernels.gemm.plan import GemmPlan
from kernels.gemm.wgmma_gemm import SMEM_LIMIT, WsTile, supported, ws_tile_for

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("m", [1, 2, 15, 16, 17, 32, 33, 64, 65, 128, 129, 256, 1000, 8192])
def test_tile_table_covers_every_m_and_fits_shared_memory(m):
    tile = ws_tile_for(m, GemmPlan(8192, 8192, 256, 1))
    assert tile.block_m >= min(m, 16) or tile.block_m == 128
    assert tile.smem_bytes() <= SMEM_LIMIT
    # the epilogue reuses the activation buffers as its float32 scratch
    assert tile.x_stages * tile.block_m * 128 * 2 >= tile.block_n * tile.block_m * 4


def test_tile_refuses_shapes_the_kernel_cannot_run():
    with pytest.raises(ValueError, match="block_n"):
        WsTile(16, 96)
    with pytest.raises(ValueError, match="block_m"):
        WsTile(24, 64)
    with pytest.raises(ValueError, match="shared memory"):
        WsTile(256, 128, x_stages=4)


def test_not_supported_off_hopper():
    x = torch.zeros(4, 4096, dtype=torch.bfloat16)
    assert not supported(x, GemmPlan(1024, 4096, 256, 1))          # a CPU tensor
    assert not supported(x, GemmPlan(1024, 4096, 128, 1))          # chunk of 128
    assert not supported("not a tensor", GemmPlan(1024, 4096, 256, 1))


def test_gluon_kernel_compiles_for_sm90_to_smem_wgmma_with_a_shorter_decode():
    """Compile-only: the Triton kernel's K loop against the warp-specialized kernel's decode loop."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    try:
        out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sass_triton_nvfp4.py")],
                             capture_output=True, text=True, env=env, timeout=300, check=False, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("compiling the NVFP4 kernels for sm90 took more than 300 s")
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    triton_k, *ws = report["kernels"]
    assert triton_k["per_element"] > 3.5  # the Triton kernel: about 4 per weight element
    for k in ws:
        assert k["hgmma"] and all(h.startswith("HGMMA.64x") for h in k["hgmma"]), k
        assert k["hgmma_operands_in_smem"], k
        assert k["sts128_in_decode"] > 0, k
        assert k["local_memory"] == 0, k
        assert k["shared_bytes"] <= SMEM_LIMIT, k
        assert k["per_element"] < 3.2 < triton_k["per_element"], (k, triton_k)
