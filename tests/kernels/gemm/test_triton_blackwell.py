"""The ``dot_scaled`` path on a real Blackwell GPU (sm100/sm103/sm120/sm121).

Marked ``blackwell`` and ``gpu``; skipped with the exact reason elsewhere. The
kernel has been compiled for sm100 and sm120 here
(test_triton_backend.py::test_dot_scaled_kernel_lowers_to_native_nvfp4_mma_for_blackwell)
but never run: these tests are its first real check.
"""

from __future__ import annotations

import pytest
import torch

from kernels.linear.emulation import EmulationNvFp4LinearKernel
from tests.kernels.gemm.triton_helpers import make_layer, rel_err, requires_blackwell, sqnr_db

# `blackwell` alone (it implies a GPU): runner profiles without Blackwell list it under may_skip.
pytestmark = [pytest.mark.blackwell, requires_blackwell]


def _prepared(seed=0, bias=False):
    from kernels.linear.triton import TritonNvFp4LinearKernel

    layer = make_layer(1024, 4096, weight_only=False, seed=seed, device="cuda", bias=bias)
    kernel = TritonNvFp4LinearKernel(layer.config(torch.bfloat16))
    kernel.process_weights(layer)
    assert layer.prepared["path"] == "dot_scaled"
    return kernel, layer


@pytest.mark.parametrize("m", [1, 16, 300])
def test_dot_scaled_agrees_with_emulation(m):
    kernel, layer = _prepared(seed=1, bias=True)
    emu_layer = make_layer(1024, 4096, weight_only=False, seed=1, device="cuda", bias=True)
    emu = EmulationNvFp4LinearKernel(emu_layer.config(torch.bfloat16))
    emu.process_weights(emu_layer)
    x = torch.randn(m, 4096, device="cuda").to(torch.bfloat16)
    got, ref = kernel.apply(layer, x), emu.apply(emu_layer, x)
    assert not torch.isnan(got).any()
    assert rel_err(ref, got) <= 2.0**-7 and sqnr_db(ref, got) >= 40.0


@pytest.mark.batch_invariance
def test_dot_scaled_rows_are_bitwise_batch_invariant():
    kernel, layer = _prepared(seed=2)
    x = torch.randn(1024, 4096, device="cuda").to(torch.bfloat16)
    rows = torch.cat([kernel.apply(layer, x[i:i + 1]) for i in range(1024)])
    bad = [m for m in list(range(1, 257)) + [300, 512, 1024]
           if not torch.equal(kernel.apply(layer, x[:m]), rows[:m])]
    assert not bad, f"batch sizes whose rows differ from the M=1 rows: {bad}"
