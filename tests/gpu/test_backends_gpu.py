"""Every backend this GPU supports: numerics against emulation, and bitwise batch
invariance for every backend that claims it.

Backends the GPU does not support skip with their own ``is_supported`` reason;
the Blackwell-only ones carry the ``blackwell`` marker, so on other GPUs their
skips are the ones a profile's ``real_tests.may_skip`` expects, and any other
skip fails a runner started with ``--nvfp4-profile``.
"""

from __future__ import annotations

import math

import pytest
import torch

from kernels.linear import NVFP4_BACKENDS, NvFp4LinearLayer
from kernels.platform import current_platform

#: Agreement with the emulation backend (same quantized operands, float32
#: accumulation): max relative error over the output and minimum SQNR in dB.
#: The emulation is itself within float32 rounding of the float64 reference.
#: Blackwell libraries accumulate in a different order inside the tensor cores
#: and round to bf16 before the global scale in some paths, hence 2e-2.
TOLERANCE: dict[str, tuple[float, float]] = {
    "emulation": (1e-6, 120.0),
    "triton": (1e-2, 45.0),
    "flashinfer-cutlass": (2e-2, 35.0),
    "cublaslt": (2e-2, 35.0),
    "flashinfer-trtllm": (2e-2, 35.0),
    "flashinfer-cudnn": (2e-2, 35.0),
    "fbgemm": (2e-2, 35.0),
}
BLACKWELL_ONLY = {"flashinfer-cutlass", "cublaslt", "flashinfer-trtllm", "flashinfer-cudnn", "fbgemm"}


def backend_params(predicate=lambda cls: True):
    out = []
    for name, cls in NVFP4_BACKENDS.items():
        if not predicate(cls):
            continue
        # Blackwell-only backends carry `blackwell` alone (it implies a GPU): a
        # runner profile lists them under may_skip, while `gpu` tests must run.
        marks = [pytest.mark.blackwell] if name in BLACKWELL_ONLY else [pytest.mark.gpu]
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def build(name: str, n: int, k: int, seed: int = 0):
    cls = NVFP4_BACKENDS[name]
    ok, reason = cls.is_supported(current_platform())
    if not ok:
        pytest.skip(reason or f"{name} is not supported here")
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=gen)
    layer = NvFp4LinearLayer.from_float(w, input_amax=4.0, bias=torch.randn(n, generator=gen)).to("cuda")
    kernel = cls(layer.config(torch.bfloat16))
    kernel.process_weights(layer)
    return kernel, layer


def sqnr_db(ref: torch.Tensor, out: torch.Tensor) -> float:
    noise = (ref - out).pow(2).sum().item()
    return math.inf if noise == 0 else 10 * math.log10(ref.pow(2).sum().item() / noise)


def test_tolerance_table_names_every_backend() -> None:
    assert set(TOLERANCE) == set(NVFP4_BACKENDS)


@pytest.mark.parametrize("name", backend_params())
@pytest.mark.parametrize("m", [1, 7, 128])
def test_matches_emulation(name: str, m: int) -> None:
    n, k = 512, 1024
    kernel, layer = build(name, n, k)
    ref_kernel, ref_layer = build("emulation", n, k)
    x = torch.randn(m, k, generator=torch.Generator().manual_seed(1)).to("cuda", torch.bfloat16)
    out = kernel.apply(layer, x).float()
    ref = ref_kernel.apply(ref_layer, x).float()
    assert torch.isfinite(out).all()
    rel = ((out - ref).abs().max() / ref.abs().max()).item()
    rel_tol, min_sqnr = TOLERANCE[name]
    # bf16 output: one rounding of each side is allowed on top of the tolerance
    assert rel <= rel_tol + 2**-8, f"{name}: max relative error {rel:.2e} > {rel_tol:.0e}"
    assert sqnr_db(ref, out) >= min(min_sqnr, 45.0), f"{name}: SQNR {sqnr_db(ref, out):.1f} dB"


@pytest.mark.batch_invariance
@pytest.mark.parametrize("name", backend_params(lambda cls: cls.batch_invariant))
def test_rows_are_bitwise_batch_invariant(name: str) -> None:
    n, k = 256, 512
    kernel, layer = build(name, n, k, seed=2)
    x = torch.randn(300, k, generator=torch.Generator().manual_seed(3)).to("cuda", torch.bfloat16)
    full = kernel.apply(layer, x)
    singles = torch.cat([kernel.apply(layer, x[i : i + 1]) for i in range(x.shape[0])])
    assert torch.equal(full, singles), f"{name}: rows differ between M=300 and M=1"
    for m in (2, 3, 16, 17, 64, 65, 128, 129, 256):
        assert torch.equal(kernel.apply(layer, x[:m]), full[:m]), f"{name}: rows differ at M={m}"
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(4)).to("cuda")
    assert torch.equal(kernel.apply(layer, x[perm]), full[perm]), f"{name}: row permutation changes results"
