"""Shared helpers of the Triton backend tests (imported by the test modules of this folder).

CPU runs go through the Triton interpreter (the top-level conftest sets
``TRITON_INTERPRET=1`` before anything imports Triton), on tiny shapes. GPU
tests are marked ``gpu`` and skip with the reason below on machines without
CUDA; Blackwell tests are marked ``blackwell``.
"""

from __future__ import annotations

import pytest
import torch

from kernels.linear.layer import NvFp4LinearLayer
from kernels.nvfp4 import format as fmt

NO_CUDA = "needs a CUDA GPU (torch.cuda.is_available() is False)"


def _is_blackwell() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] in (10, 12)


NOT_BLACKWELL = (
    "needs a Blackwell GPU (sm100/sm103/sm120/sm121) for tl.dot_scaled with NVFP4 operands; "
    "this machine has "
    + (f"sm_{''.join(map(str, torch.cuda.get_device_capability()))}"
       if torch.cuda.is_available() else "no CUDA GPU")
)

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
requires_blackwell = pytest.mark.skipif(not _is_blackwell(), reason=NOT_BLACKWELL)


def make_layer(n: int, k: int, *, weight_only: bool, seed: int = 0, device: str = "cpu",
               bias: bool = False, bias_dtype: torch.dtype = torch.bfloat16) -> NvFp4LinearLayer:
    """A random NVFP4 layer (weights with a spread of row magnitudes, so scales vary)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * torch.exp(torch.randn(n, 1, generator=g))
    b = (torch.randn(n, generator=g) * 0.5).to(bias_dtype) if bias else None
    layer = NvFp4LinearLayer.from_float(w, input_amax=None if weight_only else 3.0, bias=b)
    return layer.to(device)


def sqnr_db(ref: torch.Tensor, out: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio of ``out`` against ``ref`` in dB."""
    ref = ref.double()
    noise = (out.double() - ref).norm()
    if noise == 0:
        return float("inf")
    return float(20 * torch.log10(ref.norm() / noise))


def rel_err(ref: torch.Tensor, out: torch.Tensor) -> float:
    ref = ref.double()
    return float((out.double() - ref).norm() / ref.norm())


def quantized_weight(n: int = 40, k: int = 160, seed: int = 7, device: str = "cpu"):
    """(packed, scale, global_scale) of a random ``[n, k]`` weight."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * torch.exp(torch.randn(n, 1, generator=g))
    gs = fmt.global_scale_from_amax(w.abs().max())
    packed, scale = fmt.quantize(w, gs)
    return packed.to(device), scale.to(device), gs
