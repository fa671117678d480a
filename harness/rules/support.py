"""Support and ``implements`` rules, evaluated from the matrix's data alone.

Compares raw fields of a :class:`~kernels.platform.Platform` (a plain value
object) with a backend's declared rules; never calls a backend's
``is_supported()`` or ``can_implement()``.
"""

from __future__ import annotations

from harness.models import BackendSpec, LayerSpec, SupportRule, parse_version
from kernels.platform import Platform, sm_label

__all__ = ["Verdict", "implements_verdict", "rule_verdict", "support_verdict"]

#: ``(holds, reason)``: the reason says what is missing when it does not hold.
Verdict = tuple[bool, str | None]


def _version(v: tuple[int, int] | None) -> str:
    return "none" if v is None else f"{v[0]}.{v[1]}"


def rule_verdict(rule: SupportRule, p: Platform) -> Verdict:
    """Does one declared rule hold on ``p``? Every stated requirement must."""
    cap = p.capability
    if rule.device != "any" and p.device_type != rule.device:
        return False, f"needs a {rule.device} device, platform is {p.device_type}"
    if rule.families is not None and (cap is None or cap[0] not in rule.families):
        want = " or ".join(f"sm_{f}x" for f in rule.families)
        return False, f"needs family {want}, platform is {sm_label(cap)}"
    need_cap = parse_version(rule.min_capability)
    if need_cap is not None and (cap is None or cap < need_cap):
        return False, f"needs capability >= {rule.min_capability}, platform is {sm_label(cap)}"
    need_cuda = parse_version(rule.min_cuda)
    if need_cuda is not None and (p.cuda_version is None or p.cuda_version < need_cuda):
        return False, f"needs CUDA >= {rule.min_cuda}, platform has {_version(p.cuda_version)}"
    for package in rule.packages:
        if package not in p.packages:
            return False, f"needs the {package} package, not installed"
    if rule.fp4_dtype is not None and p.has_fp4_dtype != rule.fp4_dtype:
        return (
            False,
            "needs torch.float4_e2m1fn_x2" if rule.fp4_dtype else "needs a torch without fp4",
        )
    if rule.triton_interpret is not None and p.triton_interpret != rule.triton_interpret:
        return False, f"needs TRITON_INTERPRET={'1' if rule.triton_interpret else 'unset'}"
    return True, None


def support_verdict(spec: BackendSpec, platform: Platform) -> Verdict:
    """A backend's declared support on ``platform``: supported when any of its rules holds."""
    reasons = []
    for rule in spec.support:
        ok, reason = rule_verdict(rule, platform)
        if ok:
            return True, None
        reasons.append((rule, reason))
    if len(reasons) == 1:
        return False, reasons[0][1]
    return False, "no rule holds: " + "; ".join(f"[{r.describe()}] {why}" for r, why in reasons)


def implements_verdict(spec: BackendSpec, layer: LayerSpec) -> Verdict:
    """Can the backend implement ``layer``, by its declared ``implements`` block?"""
    imp = spec.implements
    if layer.in_features % imp.k_multiple:
        return False, f"needs in_features % {imp.k_multiple} == 0, layer has {layer.in_features}"
    if layer.weight_only and not imp.weight_only:
        return False, "needs a W4A4 layer, layer is W4A16"
    if layer.act_dtype not in imp.act_dtypes:
        return False, f"takes {', '.join(imp.act_dtypes)} activations, layer has {layer.act_dtype}"
    return True, None
