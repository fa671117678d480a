"""Layers, and the backends with their declared support rules."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from harness.models.common import (
    MAX_FAMILY,
    MAX_FEATURES,
    MAX_K_MULTIPLE,
    ActDtype,
    KernelClassName,
    PackageName,
    Strict,
    VersionStr,
)

__all__ = ["BackendSpec", "Implements", "LayerSpec", "SupportRule"]


# --- layers ------------------------------------------------------------------------


class LayerSpec(Strict):
    """One NVFP4 linear layer shape (:class:`kernels.linear.NvFp4LinearConfig`)."""

    in_features: int = Field(gt=0, le=MAX_FEATURES, description="K")
    out_features: int = Field(gt=0, le=MAX_FEATURES, description="N")
    act_dtype: ActDtype = "bfloat16"
    weight_only: bool = Field(default=False, description="W4A16 checkpoint (no static input scale)")
    has_bias: bool = False


# --- backends and their declared rules ------------------------------------------------------


class SupportRule(Strict):
    """One way a backend can be supported; every stated requirement must hold.

    ``families`` is an exact set of capability majors (10 = B200/B300,
    12 = RTX 50 / GB10), never "this or newer"; ``min_capability`` is the
    "this generation or newer" form for rules that really mean it.
    """

    device: Literal["cuda", "cpu", "any"]
    families: list[Annotated[int, Field(ge=0, le=MAX_FAMILY)]] | None = Field(
        None, description="exact capability majors"
    )
    min_capability: VersionStr | None = None
    min_cuda: VersionStr | None = None
    packages: list[PackageName] = Field(default_factory=list)
    fp4_dtype: bool | None = Field(None, description="torch must (not) provide float4_e2m1fn_x2")
    triton_interpret: bool | None = Field(None, description="TRITON_INTERPRET=1 must (not) be set")

    @model_validator(mode="after")
    def _cuda_only_keys(self) -> SupportRule:
        cuda_keys = [
            k for k in ("families", "min_capability", "min_cuda") if getattr(self, k) is not None
        ]
        if cuda_keys and self.device != "cuda":
            raise ValueError(f"{', '.join(cuda_keys)} only make sense with device: cuda")
        return self

    def describe(self) -> str:
        parts: list[str] = [self.device if self.device != "any" else "any device"]
        if self.families is not None:
            parts.append("family " + " or ".join(f"sm_{f}x" for f in self.families))
        if self.min_capability:
            parts.append(f"capability >= {self.min_capability}")
        if self.min_cuda:
            parts.append(f"CUDA >= {self.min_cuda}")
        if self.packages:
            parts.append("packages " + ", ".join(self.packages))
        if self.fp4_dtype is not None:
            parts.append(("" if self.fp4_dtype else "no ") + "torch fp4 dtype")
        if self.triton_interpret is not None:
            parts.append("TRITON_INTERPRET=" + ("1" if self.triton_interpret else "0"))
        return ", ".join(parts)


class Implements(Strict):
    """Which layers the backend can implement (its ``can_implement`` rule)."""

    act_dtypes: list[ActDtype]
    weight_only: bool = Field(False, description="supports W4A16 checkpoints")
    k_multiple: int = Field(
        16, gt=0, le=MAX_K_MULTIPLE, description="in_features must be a multiple of this"
    )


class BackendSpec(Strict):
    """A registered NVFP4 backend, described as data for the oracle."""

    kernel: KernelClassName = Field(
        description="class name (the spelling VLLM_DISABLED_KERNELS uses)"
    )
    batch_invariant: bool = False
    support: list[SupportRule] = Field(min_length=1, description="supported when any rule holds")
    implements: Implements

    def describe_support(self) -> str:
        return " | ".join(rule.describe() for rule in self.support)
