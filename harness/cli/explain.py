"""``nvfp4-matrix explain``: which backend a machine gets, and why.

With ``--gpu PROFILE`` the machine is the matrix's fake profile and the
environment holds only the ``--env`` values. Without it, the real machine is
detected and the selection variables of the current shell apply, overridden
by ``--env`` (this project's kernels only: another engine runs on fake
hardware). ``--mock NAME=no[:reason]`` answers "what would this engine pick
if that backend were unavailable".
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from rich.table import Table

from harness.cli.common import (
    add_matrix_argument,
    console,
    load_with_target,
    parse_env,
    parse_packages,
    use_engine_path,
)
from harness.errors import UsageError
from harness.load import unknown_name
from kernels.errors import quoted

__all__ = ["add_parser", "explain", "explain_command", "parse_mocks"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="which backend this machine (or a profile) gets, and why")
    add_matrix_argument(p)
    p.add_argument(
        "--gpu", metavar="PROFILE", help="a profile id from the matrix (default: the real machine)"
    )
    p.add_argument(
        "--env",
        action="append",
        metavar="NAME=VALUE",
        help="a selection variable, or --linear-backend=NAME (repeatable)",
    )
    p.add_argument(
        "--linear-backend",
        metavar="NAME",
        help="the engine's --linear-backend option (vLLM >= 0.22), same as --env=--linear-backend=NAME",
    )
    p.add_argument(
        "--packages",
        metavar="LIST",
        help="comma-separated optional packages replacing the machine's ('' for none)",
    )
    p.add_argument(
        "--mock",
        action="append",
        metavar="NAME=yes|no[:reason]",
        help="force a backend's is_supported() (NAME: a backend id or kernel class; repeatable)",
    )
    p.add_argument(
        "--layer", metavar="LAYER", help="a layer id from the matrix (default: the default layer)"
    )
    p.add_argument(
        "--mutant", metavar="NAME",
        help="ask a deliberately broken variant of the target (see `mutants`; a diff's side)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=explain_command)


def parse_mocks(items: list[str] | None, matrix: Any) -> dict[str, tuple[bool, str]]:
    """``["flashinfer-cutlass=no:driver too old", "EmulationNvFp4LinearKernel=yes"]`` -> mocks.

    Keys are the matrix's backend ids; a kernel class name is mapped to its backend.
    """
    mocks: dict[str, tuple[bool, str]] = {}
    for item in items or ():
        name, sep, verdict = item.partition("=")
        answer, _, reason = verdict.partition(":")
        if not sep or not name or answer.strip().lower() not in ("yes", "no"):
            raise UsageError(
                f"--mock {item!r}: expected NAME=yes or NAME=no[:reason], e.g. "
                "--mock flashinfer-cutlass=no:driver too old"
            )
        if matrix is None:
            raise UsageError("--mock needs a matrix (none found)")
        backend = name if name in matrix.backends else matrix.backend_of_kernel(name)
        if backend is None:
            classes = [spec.kernel for spec in matrix.backends.values()]
            raise UsageError(
                "--mock: " + unknown_name("backend", name, [*matrix.backends, *classes])
            )
        if backend in mocks:
            raise UsageError(f"--mock {backend} given twice")
        ok = answer.strip().lower() == "yes"
        mocks[backend] = (ok, "" if ok else (reason.strip() or f"{backend} mocked unsupported"))
    return mocks


def explain(
    gpu: str | None,
    env_items: list[str] | None,
    packages: str | None = None,
    layer: str | None = None,
    matrix_files: list[str] | None = None,
    target_name: str | None = None,
    mock_items: list[str] | None = None,
    line: str | None = None,
    mutant: str | None = None,
) -> dict[str, Any]:
    """The explanation as a JSON-ready dict (``kernel``, ``backend``, ``error``, ``decisions``, ...).

    ``kernel`` is the engine's kernel class name (``EmulationNvFp4LinearKernel``)
    and ``backend`` the matrix id it maps to (``emulation``).
    """
    from harness.evaluate.compare import compare
    from harness.evaluate.session import Session
    from harness.models import LayerSpec
    from harness.targets import Query, get_target
    from harness.targets.environment import isolated_environ

    try:
        matrix, target = load_with_target(matrix_files, target_name, line)
    except UsageError:
        if gpu is not None or matrix_files or line:
            raise
        # No matrix here: explain the real machine, no oracle.
        matrix, target = None, get_target(target_name)
        if not target.capabilities.real_machine:
            raise
    if mutant is not None:
        target = target.mutant(mutant)
    vocabulary = target.vocabulary
    overrides = parse_env(env_items, vocabulary)
    pkgs = parse_packages(packages, vocabulary)
    mocks = parse_mocks(mock_items, matrix)
    notice = target.matrix_notice
    session = Session(matrix, target, lenient=notice is not None) if matrix is not None else None
    if gpu is not None:
        assert matrix is not None
        if gpu not in matrix.profiles:
            raise UsageError(unknown_name("profile", gpu, matrix.profiles))
        platform = matrix.profiles[gpu].platform(pkgs)
        env = dict(overrides)
        env_source = "--env only (fake hardware: the shell's variables are ignored)"
    else:
        platform = target.real_platform()
        if pkgs is not None:
            platform = platform.replace(packages=frozenset(pkgs))
        env = {k: os.environ[k] for k in vocabulary.variables if k in os.environ}
        env.update(overrides)
        env_source = "the shell's selection variables, then --env"
    env = dict(vocabulary.ordered(env))

    layer_spec = LayerSpec(in_features=4096, out_features=4096)
    if matrix is not None:
        if layer is not None and layer not in matrix.layers:
            raise UsageError(unknown_name("layer", layer, matrix.layers))
        layer_spec = matrix.layer(layer)
    elif layer is not None:
        raise UsageError("--layer needs a matrix file (none found)")

    query = Query(platform, env, layer_spec, mocks)
    if session is not None:
        actual = session.evaluate(query)
    else:
        with isolated_environ({}, vocabulary.variables):
            actual = target.evaluate(query, None)
    record = actual.record
    result: dict[str, Any] = {
        "target": target.describe(),
        "profile": gpu,
        "platform": platform.describe(),
        "layer": (
            f"{layer_spec.out_features}x{layer_spec.in_features} {layer_spec.act_dtype}"
            + (" W4A16" if layer_spec.weight_only else " W4A4")
        ),
        "env": env,
        "env_source": env_source,
        "mocks": {b: {"supported": ok, "reason": r or None} for b, (ok, r) in mocks.items()},
        "kernel": actual.kernel,
        "backend": actual.backend,
        "rule": actual.rule,
        "variable": record.variable if record is not None else None,
        "error": actual.error if actual.kind != "backend" else None,
        "error_type": actual.error_type if actual.kind != "backend" else None,
        "decisions": [
            {"backend": c.backend, "kernel": c.kernel, "status": c.status, "reason": c.reason}
            for c in (record.candidates if record is not None else ())
        ],
        "decision_record": target.capabilities.decision_record,
        "messages": list(actual.messages),
        "notes": list(session.notes if session is not None else ()) + ([notice] if notice else []),
        "oracle": None,
    }
    if session is not None:
        expected = session.expect(query)
        problems = compare(expected, actual, session.matrix)
        result["oracle"] = {
            "backend": expected.backend,
            "rule": expected.rule,
            "outcome": expected.outcome,
            "agrees": not problems,
            "problems": problems,
            "because": list(expected.because),
        }
    return result


def explain_command(args: argparse.Namespace) -> int:
    env_items = list(args.env or [])
    if args.linear_backend is not None:
        env_items.append(f"--linear-backend={args.linear_backend}")
    use_engine_path(args.engine_path)
    result = explain(
        args.gpu, env_items, args.packages, args.layer, args.matrix, args.target, args.mock,
        args.line, args.mutant,
    )
    code = 0 if result["kernel"] else 1
    if args.json:
        print(json.dumps(result, indent=2))
        return code
    out = console()
    who = f"profile {result['profile']}" if result["profile"] else "this machine"
    out.print(f"[bold]{who}[/bold]: {result['platform']}")
    out.print(f"target   : {result['target']}", markup=False)
    out.print(f"layer    : {result['layer']}")
    env_text = (
        " ".join(f"{k}={quoted(v)}" for k, v in result["env"].items()) or "(no selection variable set)"
    )
    out.print(f"env      : {env_text}   [dim]from {result['env_source']}[/dim]")
    for backend, mock in result["mocks"].items():
        verdict = "supported" if mock["supported"] else f"unsupported ({mock['reason']})"
        out.print(f"mocked   : {backend} {verdict}", markup=False)
    if result["kernel"]:
        out.print(f"[bold green]kernel   : {result['kernel']}[/] (backend {result['backend']})")
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
    if not result["decision_record"]:
        out.print("record   : this target exposes no rule or candidate verdicts", markup=False)
    for note in result["messages"]:
        out.print(f"note     : {note}", markup=False, soft_wrap=True)
    for note in result["notes"]:
        out.print(f"matrix   : {note}", markup=False, soft_wrap=True)
    oracle = result["oracle"]
    if oracle is not None:
        verdict = "[green]agrees[/]" if oracle["agrees"] else "[bold red]DISAGREES[/]"
        out.print(f"matrix rules: {verdict}")
        for line in oracle["because"]:
            out.print(f"  {line}", markup=False, soft_wrap=True)
        for line in oracle["problems"]:
            out.print(f"  - {line}", markup=False, soft_wrap=True)
    return code
