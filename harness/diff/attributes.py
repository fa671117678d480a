"""What a reviewer can say about a cell: its attributes, as readable predicates.

A cell's attributes are the facts a description of a change may use: each
selection input's value (and, for a flag, whether the matrix's grammar reads
it as true, false or invalid), the machine (profile, device, capability
family, capability, CUDA version, each optional package installed or not,
torch's FP4 dtype), the layer (its id, weight-only or W4A4) and each mocked
``is_supported()`` result, and each backend's support on the cell's machine
(mocked, or by the matrix's declared rule). They are computed from the matrix
alone, the same on both sides of a diff.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.evaluate.cells import Cell
from harness.load import Matrix
from harness.rules import InvalidValue, parse_flag
from harness.rules.support import support_verdict

__all__ = ["cell_attributes"]


def _flag_kinds(matrix: Matrix) -> dict[str, str]:
    """variable -> ``boolean``/``int-flag``, for the variables the table reads as flags."""
    if matrix.precedence is None:
        return {}
    return {
        rule.variable: rule.value
        for rule in matrix.precedence.forcing
        if rule.value in ("boolean", "int-flag")
    }


def cell_attributes(
    matrix: Matrix, cell: Cell, inputs: tuple[str, ...], packages: tuple[str, ...]
) -> frozenset[str]:
    """Every attribute of ``cell`` (``inputs`` and ``packages``: the target's vocabulary)."""
    attrs: set[str] = set()
    env: Mapping[str, str] = cell.env_dict
    flags = _flag_kinds(matrix)
    booleans = matrix.precedence.booleans if matrix.precedence is not None else None
    for name in inputs:
        raw = env.get(name)
        if raw is None:
            attrs.add(f"{name} unset")
            continue
        attrs.add(f"{name}={raw!r}")
        kind = flags.get(name)
        if kind is not None and booleans is not None:
            try:
                truth = parse_flag(raw, kind, booleans.true_values, booleans.false_values)
                attrs.add(f"{name} {'true' if truth else 'false'}")
            except InvalidValue:
                attrs.add(f"{name} invalid")
    profile = matrix.profiles[cell.profile]
    platform = profile.platform(cell.packages)
    attrs.add(f"profile {cell.profile}")
    attrs.add(f"device {platform.device_type}")
    if platform.capability is not None:
        major, minor = platform.capability
        attrs.add(f"family sm_{major}x")
        attrs.add(f"capability {major}.{minor}")
    if platform.cuda_version is not None:
        attrs.add(f"CUDA {platform.cuda_version[0]}.{platform.cuda_version[1]}")
    for name in packages:
        attrs.add(f"{name} {'installed' if name in platform.packages else 'absent'}")
    attrs.add("torch FP4 dtype" if platform.has_fp4_dtype else "no torch FP4 dtype")
    layer = matrix.layers[cell.layer]
    attrs.add(f"layer {cell.layer}")
    attrs.add("weight-only layer" if layer.weight_only else "W4A4 layer")
    mocked = {name: ok for name, ok, _ in cell.mocks}
    for name, spec in matrix.backends.items():
        if name in mocked:
            attrs.add(f"{name} mocked {'supported' if mocked[name] else 'unsupported'}")
            ok = mocked[name]
        else:
            ok = support_verdict(spec, platform)[0]
        attrs.add(f"{name} {'supported' if ok else 'unsupported'}")
    return frozenset(attrs)
