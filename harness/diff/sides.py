"""The two sides of a diff: which engine each runs, and running both at once.

A side is an interpreter (``--base-python``: one with the engine installed;
default: this one) and, optionally, a source tree put first on its path
(``--base-path``: a git checkout, or a release's Python files unpacked from
its wheel), and optionally a mutant of the target. Each side runs
:mod:`harness.diff.worker` in its own process: both import their engine at
the same time, and an engine can be imported once per process. The worker
always runs this harness: a shim folder first on ``PYTHONPATH`` holds a link
to it (and to this project's ``kernels``, unless the side's tree has its own).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.errors import UsageError

__all__ = ["Side", "run_sides"]

_HARNESS = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Side:
    """One version of the engine's selection."""

    label: str
    python: str | None = None
    path: Path | None = None
    mutant: str | None = None

    def check(self) -> None:
        if self.python is not None and not Path(self.python).is_file():
            raise UsageError(f"--{self.label}-python {self.python}: no such interpreter")
        if self.path is not None and not self.path.is_dir():
            raise UsageError(f"--{self.label}-path {self.path}: not a folder")

    def describe(self) -> str:
        parts = [f"python {self.python}" if self.python else "this interpreter"]
        if self.path is not None:
            parts.append(f"source tree {self.path}")
        if self.mutant:
            parts.append(f"mutant {self.mutant}")
        return ", ".join(parts)

    def command_prefix(self) -> str:
        """How a shell reaches this side's engine (for the ``explain`` of a cell)."""
        prefix = f"PYTHONPATH={shlex.quote(str(self.path))} " if self.path is not None else ""
        if self.python is not None:
            return f"{prefix}{shlex.quote(self.python)} -m harness"
        return f"{prefix}nvfp4-matrix"


def _shim(folder: Path, side: Side) -> Path:
    """A folder linking this harness (and this project's kernels, unless the tree has one)."""
    shim = folder / f"shim-{side.label}"
    shim.mkdir()
    (shim / "harness").symlink_to(_HARNESS, target_is_directory=True)
    if side.path is None or not (side.path / "kernels").is_dir():
        (shim / "kernels").symlink_to(_HARNESS.parent / "kernels", target_is_directory=True)
    return shim


def _relay(stream: Any, say: Callable[[str], None]) -> None:
    for line in stream:
        say(line.rstrip("\n"))


def run_sides(
    sides: Sequence[Side],
    request: dict[str, Any],
    say: Callable[[str], None],
    timeout: float = 1800.0,
) -> list[dict[str, Any]]:
    """Each side's worker result, in parallel processes; progress lines go to ``say``.

    ``request`` names the target, the matrix files (``resolve: true`` instead asks each
    side which file describes its engine) and is completed with each side's mutant."""
    with tempfile.TemporaryDirectory(prefix="nvfp4-diff-") as tmp:
        folder = Path(tmp)
        procs = []
        for side in sides:
            side.check()
            spec = folder / f"{side.label}.request.json"
            spec.write_text(json.dumps({**request, "label": side.label, "mutant": side.mutant}))
            out = folder / f"{side.label}.result.json"
            paths = [str(_shim(folder, side))]
            if side.path is not None:
                paths.append(str(side.path))
            if os.environ.get("PYTHONPATH"):
                paths.append(os.environ["PYTHONPATH"])
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), PYTHONUNBUFFERED="1")
            proc = subprocess.Popen(
                [side.python or sys.executable, "-m", "harness.diff.worker", str(spec), str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
            )
            relay = threading.Thread(target=_relay, args=(proc.stderr, say), daemon=True)
            relay.start()
            procs.append((side, proc, relay, out))
        try:
            return [_collect(side, proc, relay, out, timeout) for side, proc, relay, out in procs]
        finally:  # an interrupt, a failed side: no process outlives the diff
            for _, proc, _, _ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _collect(
    side: Side, proc: subprocess.Popen[str], relay: threading.Thread, out: Path, timeout: float
) -> dict[str, Any]:
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UsageError(f"the {side.label} side ({side.describe()}) ran past "
                         f"{timeout:.0f} s") from None
    relay.join(5)
    if code != 0 or not out.is_file():
        raise UsageError(
            f"the {side.label} side ({side.describe()}) failed (exit {code}); its error is above"
        )
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result
