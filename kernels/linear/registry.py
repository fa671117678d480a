"""The one table of NVFP4 backends: name -> class, in automatic-selection order.

The insertion order of :data:`NVFP4_BACKENDS` *is* the order in which
automatic selection tries the backends: Blackwell-native libraries first, the
emulation last. Nothing else keeps a second list.
"""

from __future__ import annotations

from kernels.errors import quoted
from kernels.linear.base import NvFp4LinearKernel
from kernels.linear.cublaslt import CublasLtNvFp4LinearKernel
from kernels.linear.emulation import EmulationNvFp4LinearKernel
from kernels.linear.fbgemm import FbgemmNvFp4LinearKernel
from kernels.linear.flashinfer_cudnn import FlashInferCudnnNvFp4LinearKernel
from kernels.linear.flashinfer_cutlass import FlashInferCutlassNvFp4LinearKernel
from kernels.linear.flashinfer_trtllm import FlashInferTrtllmNvFp4LinearKernel
from kernels.linear.triton import TritonNvFp4LinearKernel

__all__ = ["NVFP4_BACKENDS", "backend_class", "backend_name_of"]

NVFP4_BACKENDS: dict[str, type[NvFp4LinearKernel]] = {
    cls.name: cls
    for cls in (
        FlashInferCutlassNvFp4LinearKernel,
        CublasLtNvFp4LinearKernel,
        FlashInferTrtllmNvFp4LinearKernel,
        FlashInferCudnnNvFp4LinearKernel,
        FbgemmNvFp4LinearKernel,
        TritonNvFp4LinearKernel,
        EmulationNvFp4LinearKernel,
    )
}


def backend_class(name: str) -> type[NvFp4LinearKernel]:
    """The class registered as ``name``; ``ValueError`` listing the valid names otherwise."""
    try:
        return NVFP4_BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"unknown NVFP4 backend {quoted(name)}; valid choices: {', '.join(NVFP4_BACKENDS)}"
        ) from None


def backend_name_of(kernel_class_name: str) -> str | None:
    """Registry name for a class name (as used in ``VLLM_DISABLED_KERNELS``)."""
    for name, cls in NVFP4_BACKENDS.items():
        if cls.__name__ == kernel_class_name:
            return name
    return None
