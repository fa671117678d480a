"""``nvfp4-matrix explain``: which backend a machine gets, and why.

With ``--gpu PROFILE`` the machine is the matrix's fake profile and the
environment holds only the ``--env`` values. Without it, the real machine is
detected and the selection variables of the current shell apply, overridden
by ``--env``.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from rich.table import Table

from harness.cli.common import console, load, parse_env, parse_packages
from harness.errors import UsageError
from harness.matrix import unknown_name

__all__ = ["add_parser", "explain", "explain_command"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="which backend this machine (or a profile) gets, and why")
    p.add_argument(
        "--gpu", metavar="PROFILE", help="a profile id from the matrix (default: the real machine)"
    )
    p.add_argument(
        "--env", action="append", metavar="NAME=VALUE", help="a selection variable (repeatable)"
    )
    p.add_argument(
        "--packages",
        metavar="LIST",
        help="comma-separated optional packages replacing the machine's ('' for none)",
    )
    p.add_argument(
        "--layer", metavar="LAYER", help="a layer id from the matrix (default: the default layer)"
    )
    p.add_argument(
        "--matrix",
        action="append",
        metavar="PATH",
        help="matrix file (repeatable; default: matrix/*.yaml)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=explain_command)


def explain(
    gpu: str | None,
    env_items: list[str] | None,
    packages: str | None = None,
    layer: str | None = None,
    matrix_files: list[str] | None = None,
) -> dict[str, Any]:
    """The explanation as a JSON-ready dict (``kernel``, ``error``, ``decisions``, ...)."""
    from harness.oracle import Oracle
    from harness.runner import Actual, compare, quiet_selection_logs
    from kernels.envs import SELECTION_VARIABLES
    from kernels.errors import InvalidEnvironmentError
    from kernels.linear.select import decide
    from kernels.platform import detect_platform

    overrides = parse_env(env_items)
    pkgs = parse_packages(packages)
    matrix = None
    if gpu is not None or matrix_files:
        matrix = load(matrix_files)
    else:
        try:
            matrix = load(None)
        except UsageError:
            matrix = None  # no matrix here: explain the real machine without the oracle
    if gpu is not None:
        assert matrix is not None
        if gpu not in matrix.profiles:
            raise UsageError(unknown_name("profile", gpu, matrix.profiles))
        platform = matrix.profiles[gpu].platform(pkgs)
        env = dict(overrides)
        env_source = "--env only (fake hardware: the shell's variables are ignored)"
    else:
        platform = detect_platform()
        if pkgs is not None:
            platform = platform.replace(packages=frozenset(pkgs))
        env = {k: os.environ[k] for k in SELECTION_VARIABLES if k in os.environ}
        env.update(overrides)
        env_source = "the shell's selection variables, then --env"
    env = {k: env[k] for k in SELECTION_VARIABLES if k in env}

    layer_spec = None
    if matrix is not None:
        if layer is not None and layer not in matrix.layers:
            raise UsageError(unknown_name("layer", layer, matrix.layers))
        layer_spec = matrix.layer(layer)
    elif layer is not None:
        raise UsageError("--layer needs a matrix file (none found)")
    config = _config(layer_spec)

    result: dict[str, Any] = {
        "profile": gpu,
        "platform": platform.describe(),
        "layer": config.describe(),
        "env": env,
        "env_source": env_source,
        "kernel": None,
        "kernel_class": None,
        "rule": None,
        "variable": None,
        "error": None,
        "error_type": None,
        "decisions": [],
        "messages": [],
        "oracle": None,
    }
    with quiet_selection_logs():
        try:
            decision = decide(config, platform, env)
        except InvalidEnvironmentError as exc:
            decision = None
            result.update(error=str(exc), error_type=type(exc).__name__)
            actual = Actual("invalid-env", error=str(exc))
    if decision is not None:
        from kernels.linear.registry import NVFP4_BACKENDS

        result.update(
            kernel=decision.backend,
            kernel_class=NVFP4_BACKENDS[decision.backend].__name__ if decision.backend else None,
            rule=decision.rule,
            variable=decision.variable,
            error=decision.error,
            error_type="KernelSelectionError" if decision.error else None,
            decisions=[
                {"backend": c.backend, "kernel": c.kernel, "status": c.status, "reason": c.reason}
                for c in decision.candidates
            ],
            messages=list(decision.messages),
        )
        candidates = tuple((c.backend, c.status) for c in decision.candidates)
        actual = Actual(
            "backend" if decision.backend else "error",
            decision.backend,
            decision.rule,
            decision.error,
            candidates,
            decision,
        )
    if matrix is not None and layer_spec is not None:
        expected = Oracle(matrix).expect(platform, env, layer_spec)
        problems = compare(expected, actual, matrix)
        result["oracle"] = {
            "kernel": expected.backend,
            "rule": expected.rule,
            "outcome": expected.outcome,
            "agrees": not problems,
            "problems": problems,
            "because": list(expected.because),
        }
    return result


def _config(layer: Any) -> Any:
    import torch

    from kernels.linear.base import NvFp4LinearConfig

    if layer is None:
        return NvFp4LinearConfig(4096, 4096, torch.bfloat16)
    return NvFp4LinearConfig(
        layer.in_features,
        layer.out_features,
        getattr(torch, layer.act_dtype),
        weight_only=layer.weight_only,
        has_bias=layer.has_bias,
    )


def explain_command(args: argparse.Namespace) -> int:
    result = explain(args.gpu, args.env, args.packages, args.layer, args.matrix)
    code = 0 if result["kernel"] else 1
    if args.json:
        print(json.dumps(result, indent=2))
        return code
    out = console()
    who = f"profile {result['profile']}" if result["profile"] else "this machine"
    out.print(f"[bold]{who}[/bold]: {result['platform']}")
    out.print(f"layer    : {result['layer']}")
    env_text = (
        " ".join(f"{k}={v!r}" for k, v in result["env"].items()) or "(no selection variable set)"
    )
    out.print(f"env      : {env_text}   [dim]from {result['env_source']}[/dim]")
    if result["kernel"]:
        out.print(f"[bold green]kernel   : {result['kernel']}[/] ({result['kernel_class']})")
    else:
        out.print(f"[bold red]error    : {result['error_type']}[/]")
        out.print(result["error"], markup=False, soft_wrap=True)
    if result["rule"]:
        out.print(
            f"rule     : {result['rule']}"
            + (f" ({result['variable']})" if result["variable"] else "")
        )
    if result["decisions"]:
        table = Table(
            title="candidates, in the order the rule consulted them", title_justify="left"
        )
        for col in ("backend", "kernel", "verdict", "reason"):
            table.add_column(col, overflow="fold")
        for d in result["decisions"]:
            colour = {"selected": "green", "not-reached": "dim"}.get(d["status"], "red")
            table.add_row(
                d["backend"], d["kernel"], f"[{colour}]{d['status']}[/]", d["reason"] or ""
            )
        out.print(table)
    for note in result["messages"]:
        out.print(f"note     : {note}", markup=False, soft_wrap=True)
    oracle = result["oracle"]
    if oracle is not None:
        verdict = "[green]agrees[/]" if oracle["agrees"] else "[bold red]DISAGREES[/]"
        out.print(f"matrix rules: {verdict}")
        for line in oracle["because"]:
            out.print(f"  {line}", markup=False, soft_wrap=True)
        for line in oracle["problems"]:
            out.print(f"  - {line}", markup=False, soft_wrap=True)
    return code
