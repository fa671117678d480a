"""``python -m harness.targets.vllm --selftest | --describe``: what the installed vLLM holds.

The self-test loads the installed vLLM with the facts of the release line
that covers it (its matrix file), prints what it read, and runs a few real
cells with and without the ``vllm-39129`` regression: the regression must
change every batch-invariant cell and nothing else, and every control must
leave ``os.environ`` and the kernel classes as it found them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
import typing
from collections.abc import Callable, Mapping
from pathlib import Path

from harness.errors import HarnessError
from harness.targets.protocol import Outcome, first_line
from harness.targets.vllm.platform import DEVICE_TYPES
from harness.targets.vllm.regression import MutantShapeError, reverse_39820
from harness.targets.vllm.runtime import VllmRuntime

__all__ = ["main", "selftest"]


@dataclasses.dataclass(frozen=True)
class _Machine:
    name: str
    device: str
    capability: tuple[int, int] | None
    packages: frozenset[str] = frozenset()


_MACHINES = (
    _Machine("b200", "cuda", (10, 0), frozenset({"flashinfer"})),
    _Machine("h100", "cuda", (9, 0), frozenset({"flashinfer"})),
    _Machine("rtx5090", "cuda", (12, 0), frozenset({"flashinfer"})),
    _Machine("v100", "cuda", (7, 0), frozenset({"flashinfer"})),
)


def text(outcome: Outcome) -> str:
    """The class chosen, or the error, in one line."""
    if outcome.kind == "backend":
        return str(outcome.kernel)
    return f"{outcome.error_type}: {first_line(outcome.error)}"


def same_choice(a: Outcome, b: Outcome) -> bool:
    """Whether both picked the same kernel or failed with the same error."""
    return (a.kind, a.kernel, a.error_type, a.error) == (b.kind, b.kernel, b.error_type, b.error)


def load_installed() -> VllmRuntime:
    """The installed vLLM, with the facts of the release line that covers it."""
    from harness.load import load_matrix
    from harness.targets.vllm import VllmTarget
    from harness.targets.vllm.facts import release_facts

    target = VllmTarget()
    matrix = load_matrix(list(target.default_matrix(Path.cwd())))
    facts, problems = release_facts(matrix)
    if facts is None:
        raise HarnessError("; ".join(str(p) for p in problems))
    return target.runtime(facts)


def _timed(
    runtime: VllmRuntime,
    machine: _Machine,
    env: Mapping[str, str],
    repeat: int,
    select: Callable[..., typing.Any],
) -> tuple[Outcome, float, float]:
    """The outcome of one cell and the median time of a call, with and without the log."""
    runtime.set_platform(machine.device, machine.capability)
    with runtime.env(env), runtime.real_support(machine.packages), runtime.selection_replaced(select):
        outcome = runtime.select()
        medians = []
        for logs in (True, False):
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                again = runtime.select(logs=logs)
                times.append(time.perf_counter() - start)
            if not same_choice(again, outcome):
                raise AssertionError(f"{machine.name} {env}: a repeated call chose differently")
            medians.append(statistics.median(times) * 1e6)
    return outcome, medians[0], medians[1]


def selftest(repeat: int = 200, out: typing.TextIO = sys.stdout) -> int:
    """Print what the installed vLLM holds and run a few real cells with and without the
    vllm-39129 regression. Returns 0 when every check holds, 1 otherwise."""

    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    failures: list[str] = []
    start = time.perf_counter()
    runtime = load_installed()
    load_s = time.perf_counter() - start
    real = runtime.selection_function
    entry = runtime.facts.entry
    say(f"vLLM {runtime.version}  (import {load_s:.1f} s)")
    say(f"  {entry.module}.{entry.function}{runtime.selection_signature}")
    say(f"  reads: {', '.join(runtime.selection_variables)}")
    say(f"  --linear-backend: {', '.join(runtime.linear_backends) or 'absent'}")
    if runtime.gemm_backend_kernels:
        pairs = ", ".join(f"{k}={v}" for k, v in runtime.gemm_backend_kernels.items())
        say(f"  VLLM_NVFP4_GEMM_BACKEND: {pairs}")
    say(f"  NVFP4 kernel classes ({len(runtime.kernel_classes)}): "
        f"{', '.join(runtime.kernel_classes)}")
    for device in DEVICE_TYPES:
        say(f"  auto order {device}: {', '.join(runtime.auto_order(device)) or '(none)'}")
    for probe in runtime.facts.compiled_probes:
        say(f"  {probe.name}: CUDA runtime >= {probe.min_cuda_runtime}, capability in "
            f"{list(probe.capability_ranges)} ({probe.source})")
    if "EmulationNvFp4LinearKernel" not in runtime.kernel_classes:
        failures.append("no EmulationNvFp4LinearKernel among the kernel classes")
    try:
        mutant = reverse_39820(real)
    except MutantShapeError as exc:
        failures.append(f"the vllm-39129 regression cannot be rebuilt: {exc}")
        mutant = real
    try:  # a function without the batch-invariant branch must be refused, not mutated
        reverse_39820(runtime.kernels_module.register_linear_kernel)
    except MutantShapeError as exc:
        say(f"  the regression refuses a function without the branch: {str(exc).split(': ', 1)[1]}")
    except AttributeError:
        pass
    else:
        failures.append("reverse_39820 accepted register_linear_kernel (no BI branch)")

    envs: list[dict[str, str]] = [{}, {"VLLM_BATCH_INVARIANT": "1"}]
    if "VLLM_USE_FBGEMM" in runtime.selection_variables:
        envs.append({"VLLM_USE_FBGEMM": "1"})
    before = dict(os.environ)
    say()
    say("us/call: median of one selection call, with the log capture / without (logs=False)")
    say(f"{'machine':9} {'env':24} {'vLLM':34} {'vllm-39129 regression':34} {'us/call':>13}")
    for machine in _MACHINES:
        for env in envs:
            got, us, quiet_us = _timed(runtime, machine, env, repeat, real)
            broken, _, _ = _timed(runtime, machine, env, repeat, mutant)
            label = ",".join(f"{k}={v}" for k, v in env.items()) or "(default)"
            say(f"{machine.name:9} {label:24} {text(got)[:34]:34} {text(broken)[:34]:34} "
                f"{us:6.1f} /{quiet_us:5.1f}")
            bi = env.get("VLLM_BATCH_INVARIANT") == "1"
            cell = f"{machine.name} {label}"
            if bi and same_choice(got, broken):
                failures.append(f"{cell}: the regression picks the same as vLLM ({text(got)})")
            if not bi and not same_choice(got, broken):
                failures.append(f"{cell}: the regression differs without VLLM_BATCH_INVARIANT "
                                f"({text(got)} vs {text(broken)})")
    if dict(os.environ) != before:
        failures.append("os.environ changed across the cells")

    b200 = _MACHINES[0]
    runtime.set_platform(b200.device, b200.capability)
    with runtime.env({"VLLM_BATCH_INVARIANT": "1"}), runtime.real_support(b200.packages):
        shown = runtime.select()
        bare = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            try:
                real()
            except ValueError:
                pass
            bare.append(time.perf_counter() - t0)
    say(f"\nlog lines of b200 VLLM_BATCH_INVARIANT=1 (vLLM {runtime.version}):")
    for note in shown.messages or ("(none)",):
        say(f"  {note}")
    say(f"vLLM's function called directly (no runtime, once-only caches warm): "
        f"{statistics.median(bare) * 1e6:.1f} us/call")
    for name in runtime.deprecated_variables:
        value = "emulation" if name == "VLLM_NVFP4_GEMM_BACKEND" else "1"
        with runtime.env({name: value}), runtime.real_support(b200.packages):
            warned = runtime.select()
        say(f"b200 {name}={value} -> {text(warned)}; warnings: "
            f"{'; '.join(f'{c}: {m}' for c, m in warned.warned) or '(none)'}")
        if not warned.warned:
            failures.append(f"{name} is deprecated in envs.py but no warning was captured")

    # Mocked support: only Emulation supported -> the selection can only pick Emulation.
    runtime.set_platform("cuda", (10, 0))
    verdicts: dict[str, tuple[bool, str | None]] = {
        name: (name == "EmulationNvFp4LinearKernel", None if name.startswith("Emul") else "mocked")
        for name in runtime.kernel_classes
    }
    originals = {name: vars(cls).get("is_supported") for name, cls in runtime.kernel_classes.items()}
    with runtime.env({}), runtime.mock_support(verdicts):
        mocked = runtime.select()
    say(f"\nmocked: every class unsupported but Emulation, sm100 -> {text(mocked)}")
    if mocked.kernel != "EmulationNvFp4LinearKernel":
        failures.append(f"mocked support: expected Emulation, the only supported class, got "
                        f"{text(mocked)}")
    for name, cls in runtime.kernel_classes.items():
        if vars(cls).get("is_supported") is not originals[name]:
            failures.append(f"mock_support did not restore {name}.is_supported")
    if "emulation" in runtime.linear_backends:
        with runtime.env({}), runtime.real_support({"flashinfer"}):
            forced = runtime.select(linear_backend="emulation")
        allowed = runtime.linear_backend_kernels.get("emulation", ())
        say(f"--linear-backend=emulation, sm100 -> {text(forced)} (map: {', '.join(allowed)})")
        if forced.kernel not in allowed:
            failures.append(f"--linear-backend=emulation picked {text(forced)}")
    say()
    if failures:
        say(f"selftest FAILED ({len(failures)}):")
        for failure in failures:
            say(f"  - {failure}")
        return 1
    say("selftest passed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.targets.vllm",
        description="Drive the installed vLLM's NVFP4 kernel selection on a CPU.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--selftest", action="store_true", help="run a few real cells")
    group.add_argument("--describe", action="store_true", help="print the release's facts (JSON)")
    parser.add_argument("--repeat", type=int, default=200, help="timed calls per cell")
    args = parser.parse_args(argv)
    try:
        if args.describe:
            print(json.dumps(load_installed().describe(), indent=2))
            return 0
        return selftest(repeat=args.repeat)
    except (HarnessError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
