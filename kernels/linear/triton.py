"""``triton``: this project's batch-invariant NVFP4 GEMM written in Triton.

Support rule (data below): a CUDA GPU of compute capability >= 8.0 (bf16
tensor cores, which the dequantize-then-``tl.dot`` path needs) with Triton
importable, or a CPU with ``TRITON_INTERPRET=1`` set (tiny shapes, for tests).

Path (:meth:`TritonNvFp4LinearKernel.path_for`): ``dot_scaled`` (native FP4 MMA
through ``tl.dot_scaled`` with E4M3 block-16 scales) on the Blackwell families
where the installed Triton lowers it natively, ``dequant`` (explicit dequant
then ``tl.dot``) everywhere else, including the interpreter.
"""

from __future__ import annotations

import torch

from kernels.linear.base import NvFp4LinearKernel, NvFp4LinearLayer, Verdict
from kernels.platform import Platform, current_platform

__all__ = ["TritonNvFp4LinearKernel"]


class TritonNvFp4LinearKernel(NvFp4LinearKernel):
    """Batch-invariant NVFP4 GEMM in Triton (W4A4 and weight-only)."""

    name = "triton"
    batch_invariant = True
    supports_weight_only = True
    MIN_CAPABILITY = (8, 0)
    #: (family, minimum Triton) pairs where tl.dot_scaled lowers NVFP4 natively:
    #: sm100/sm103 through tcgen05 since the block-scaled tutorial (Triton 3.3),
    #: sm120/sm121 through mma.sync block_scale (Triton 3.6).
    DOT_SCALED_NATIVE = ((10, (3, 3)), (12, (3, 6)))

    @classmethod
    def is_supported(cls, platform: Platform | None = None) -> Verdict:
        p = platform or current_platform()
        if not p.is_cuda:
            if p.triton_interpret and p.has_package("triton"):
                return True, None
            if not p.has_package("triton"):
                return False, "triton needs the triton package, which is not installed"
            return False, "triton on a CPU needs TRITON_INTERPRET=1 (the Triton interpreter)"
        if not p.has_capability(*cls.MIN_CAPABILITY):
            return False, (
                f"triton needs compute capability >= {cls.MIN_CAPABILITY[0]}.{cls.MIN_CAPABILITY[1]} "
                f"(bf16 tensor cores), platform is {p.sm}"
            )
        if not p.has_package("triton"):
            return False, "triton needs the triton package, which is not installed"
        return True, None

    @classmethod
    def path_for(cls, platform: Platform | None = None) -> str:
        """``"dot_scaled"`` or ``"dequant"``: which kernel variant runs on ``platform``."""
        p = platform or current_platform()
        if p.is_cuda and not p.triton_interpret and p.triton_version is not None:
            for family, min_triton in cls.DOT_SCALED_NATIVE:
                if p.is_family(family) and p.triton_version >= min_triton:
                    return "dot_scaled"
        return "dequant"

    def process_weights(self, layer: NvFp4LinearLayer) -> None:
        raise NotImplementedError

    def _apply(self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError
