"""``fbgemm``: FBGEMM GenAI's NVFP4 GEMM (``torch.ops.fbgemm.f4f4bf16``).

Support rule (data below): ``fbgemm_gpu`` installed, CUDA >= 12.8, capability
family 10.x (the op's CUTLASS kernels are built for sm100a). Output is bf16,
so the layer must have bf16 activations.
"""

from __future__ import annotations

import torch

from kernels.linear.base import NvFp4LinearKernel, NvFp4LinearLayer, Verdict, requirement_verdict
from kernels.platform import Platform, current_platform

__all__ = ["FbgemmNvFp4LinearKernel"]


class FbgemmNvFp4LinearKernel(NvFp4LinearKernel):
    """W4A4 through ``torch.ops.fbgemm.f4f4bf16``."""

    name = "fbgemm"
    SUPPORTED_FAMILIES = (10,)
    MIN_CUDA = (12, 8)
    act_dtypes = (torch.bfloat16,)

    @classmethod
    def is_supported(cls, platform: Platform | None = None) -> Verdict:
        return requirement_verdict(
            cls.name,
            platform or current_platform(),
            families=cls.SUPPORTED_FAMILIES,
            min_cuda=cls.MIN_CUDA,
            packages=("fbgemm_gpu",),
            family_labels={10: "sm_10x (B200/B300)"},
        )

    def process_weights(self, layer: NvFp4LinearLayer) -> None:
        raise NotImplementedError

    def _apply(self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError
