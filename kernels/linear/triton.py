"""``triton``: this project's batch-invariant NVFP4 GEMM written in Triton.

Support rule (data below): a CUDA GPU of compute capability >= 8.0 (bf16
tensor cores, which the dequantize-then-``tl.dot`` path needs) with Triton
importable, or a CPU with ``TRITON_INTERPRET=1`` set (tiny shapes, for tests).

Path (:meth:`TritonNvFp4LinearKernel.path_for`): ``dot_scaled`` (native FP4 MMA
through ``tl.dot_scaled`` with E4M3 block-16 scales) on the Blackwell families
where the installed Triton lowers it natively, ``dequant`` (explicit dequant
then ``tl.dot``) everywhere else, including the interpreter. Weight-only
layers always take ``dequant`` (the block-scaled MMA needs two FP4 operands).

Numerics (the contract, see :mod:`kernels.gemm`): W4A4 activations are
quantized per row with the layer's static input scale, bitwise as
:func:`kernels.nvfp4.format.quantize_raw`; every product of an activation
value and a weight value is exact in float32; the sums are float32 in a K order
fixed by the weight shape alone (:func:`kernels.gemm.plan.plan_for`), and the
global scales and bias are applied in a float32 epilogue. Row ``i`` of the
output is therefore bitwise the same for every batch size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from kernels.errors import FormatError
from kernels.gemm.layout import pack_dequant_weights, pack_linear_weights
from kernels.gemm.plan import fused_counter_slots, plan_for, tile_for
from kernels.linear.base import NvFp4LinearKernel, requirement_verdict
from kernels.linear.config import Verdict
from kernels.linear.layer import NvFp4LinearLayer
from kernels.platform import Platform, current_platform

if TYPE_CHECKING:
    from kernels.gemm.layout import DequantWeights, LinearWeights

# The Triton kernels (kernels.gemm.quantize, .dequant_gemm, .dot_scaled_gemm)
# are imported when first used: importing them imports Triton, which the
# registry must not need (a machine without Triton still lists this backend as
# unsupported), and on a CPU the interpreter switch must be set before it.

__all__ = ["TritonNvFp4LinearKernel"]

#: the GEMM is launched as a programmatic dependent of the quantizer up to this
#: many rows: it hides part of the launch gap at decode (0.2-0.5 us on H100)
#: and measured nothing but noise at large M
PDL_MAX_M = 128


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
        # On a GPU: bf16 tensor cores (sm80+) for the dequantize-then-tl.dot path.
        return requirement_verdict(
            cls.name, p, min_capability=cls.MIN_CAPABILITY, packages=("triton",)
        )

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
        """Plan the GEMM for the weight shape and pre-arrange the weight for the chosen path.

        ``layer.prepared`` gets ``path``, ``plan``, ``weights`` (the layout of
        :mod:`kernels.gemm.layout`), ``alpha`` (float32 epilogue factor),
        ``input_scale`` (the static activation multiplier as a float, or None),
        ``counters`` (the zeroed int32 tickets of the fused split-K reduction,
        reset by every launch; a layer must not run on two streams at once) and
        ``pdl`` (launch the GEMM as a programmatic dependent of the quantizer,
        sm90+; speed only).
        Reads the global scales on the host once, here, so that the forward
        path has no host synchronisation (CUDA-graph safe).
        """
        device = layer.weight.device
        if device.type not in ("cuda", "cpu"):
            raise FormatError(f"{type(self).__name__} needs weights on a CUDA device (or the CPU "
                              f"under the Triton interpreter), got {device}")
        if (device.type == "cuda") != self.platform.is_cuda:
            raise FormatError(f"weight is on {device}, but the kernel was built for {self.platform.sm}")
        n, k = layer.out_features, layer.in_features
        plan = plan_for(n, k)
        path = "dequant" if layer.weight_only else self.path_for(self.platform)
        in_gs: float | None = None
        if layer.input_global_scale is not None:
            in_gs = float(layer.input_global_scale.to(torch.float32))
        # The product of the two decode factors, rounded once to float32
        # (NvFp4LinearLayer.output_scale: a checkpoint's stored decode factors
        # multiply, our multipliers divide).
        output_scale = layer.output_scale()
        weights: LinearWeights | DequantWeights
        if path == "dot_scaled":
            weights = pack_linear_weights(layer.weight, layer.weight_scale, plan.block_k)
            alpha = float(output_scale)
        else:
            weights = pack_dequant_weights(layer.weight, layer.weight_scale, plan.block_k)
            # the decoded weight carries a factor 2**-8 (kernels.gemm.layout); times 2**8 is exact
            alpha = float(output_scale * 256.0)
        counters = torch.zeros(max(1, fused_counter_slots(plan)), dtype=torch.int32, device=device)
        pdl = self.platform.is_cuda and self.platform.has_capability(9, 0)
        layer.prepared.update(path=path, plan=plan, weights=weights, alpha=alpha, input_scale=in_gs,
                              counters=counters, pdl=pdl)
        layer.processed_by = self.name

    def _apply(self, layer: NvFp4LinearLayer, x2d: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        from kernels.gemm.dequant_gemm import nvfp4_dequant_gemm
        from kernels.gemm.dot_scaled_gemm import nvfp4_dot_scaled_gemm
        from kernels.gemm.quantize import nvfp4_quantize

        p = layer.prepared
        plan = p["plan"]
        if x2d.shape[1] and x2d.stride(1) != 1:
            x2d = x2d.contiguous()
        if p["path"] == "dot_scaled":
            _, codes, scales = nvfp4_quantize(x2d, p["input_scale"], values=False, codes=True)
            assert codes is not None and scales is not None
            return nvfp4_dot_scaled_gemm(codes, scales, p["weights"], plan, p["alpha"], x2d.dtype,
                                         bias=bias)
        a = x2d
        pdl = p["pdl"] and x2d.shape[0] <= PDL_MAX_M
        if p["input_scale"] is not None:
            values, _, _ = nvfp4_quantize(x2d, p["input_scale"], values=True, codes=False, pdl=pdl)
            assert values is not None
            a = values
        return nvfp4_dequant_gemm(a, p["weights"], plan, p["alpha"], bias=bias,
                                  tile=tile_for(max(a.shape[0], 1), plan),
                                  counters=p["counters"], pdl=pdl)
