"""The sizes and dtypes of one NVFP4 linear layer: what the selection decides on.

A layer computes ``y = x @ W.T + bias`` with ``W`` stored in NVFP4
(:mod:`kernels.nvfp4.format`). Two checkpoint kinds exist:

* **W4A4**: the checkpoint carries a *static* input global scale; activations
  are quantized to NVFP4 on every forward (per row, per 16-element block, with
  that static scale), and the GEMM multiplies FP4 by FP4.
* **weight-only (W4A16)**: no input scale; activations stay in bf16/fp16.
"""

from __future__ import annotations

import dataclasses

import torch

from kernels.errors import FormatError

__all__ = ["ACT_DTYPES", "NvFp4LinearConfig", "Verdict"]

#: (ok, reason): reason is None when ok, a sentence naming the backend otherwise.
Verdict = tuple[bool, str | None]

ACT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


@dataclasses.dataclass(frozen=True)
class NvFp4LinearConfig:
    """The sizes and dtypes of one NVFP4 linear layer.

    Attributes:
        in_features: K, a multiple of 16 (the NVFP4 block size).
        out_features: N.
        act_dtype: dtype of the activations and of the output.
        weight_only: the checkpoint is W4A16 (no input global scale).
        has_bias: the layer has a bias of shape ``[N]``.
    """

    in_features: int
    out_features: int
    act_dtype: torch.dtype = torch.bfloat16
    weight_only: bool = False
    has_bias: bool = False

    def __post_init__(self) -> None:
        if self.in_features <= 0 or self.out_features <= 0:
            raise FormatError(
                f"in_features and out_features must be positive, got "
                f"{self.in_features} x {self.out_features}"
            )
        if self.act_dtype not in ACT_DTYPES:
            raise FormatError(
                f"act_dtype must be one of {[str(d) for d in ACT_DTYPES]}, got {self.act_dtype}"
            )

    @property
    def scheme(self) -> str:
        return "W4A16" if self.weight_only else "W4A4"

    def describe(self) -> str:
        dt = str(self.act_dtype).removeprefix("torch.")
        bias = ", bias" if self.has_bias else ""
        return f"{self.scheme} N={self.out_features} K={self.in_features} {dt}{bias}"
