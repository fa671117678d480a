"""NVFP4 linear kernels: one class per backend, the registry, and the selection."""

from kernels.linear.base import NvFp4LinearKernel
from kernels.linear.config import NvFp4LinearConfig, Verdict
from kernels.linear.decision import CandidateVerdict, SelectionDecision
from kernels.linear.layer import NvFp4LinearLayer
from kernels.linear.registry import NVFP4_BACKENDS, backend_class
from kernels.linear.select import (
    BATCH_INVARIANT_PREFERENCE,
    PRECEDENCE,
    decide,
    init_nvfp4_linear_kernel,
)

__all__ = [
    "BATCH_INVARIANT_PREFERENCE",
    "NVFP4_BACKENDS",
    "PRECEDENCE",
    "CandidateVerdict",
    "NvFp4LinearConfig",
    "NvFp4LinearKernel",
    "NvFp4LinearLayer",
    "SelectionDecision",
    "Verdict",
    "backend_class",
    "decide",
    "init_nvfp4_linear_kernel",
]
