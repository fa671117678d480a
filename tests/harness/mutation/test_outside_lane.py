"""The mutation lanes' entry points outside their lane: one line and exit 2, never a traceback."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT


@pytest.mark.parametrize("module", ["harness.mutation", "harness.mutation.vllm"])
@pytest.mark.parametrize("command", [["list"], ["run"], ["run", "--jobs", "2"]])
def test_a_lane_command_outside_its_lane_is_one_line(tmp_path: Path, module, command) -> None:
    """From a folder that is no checkout (and, here, without cosmic-ray or vLLM): one line
    that says where the lanes run."""
    run = subprocess.run([sys.executable, "-m", module, *command], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 2, run.stdout + run.stderr
    lines = (run.stdout + run.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    if importlib.util.find_spec("cosmic_ray") is None:
        assert "cosmic-ray is not installed here" in lines[0]
    else:
        assert "mutation/cosmic-ray.toml" in lines[0]
    assert "tox -e mutation" in lines[0]


@pytest.mark.parametrize("entry", ["harness.mutation.project", "harness.mutation.vllm"])
def test_the_process_a_lane_starts_per_part_is_its_own_entry_point(entry) -> None:
    """``run --jobs N`` starts ``python -m <ENTRY> _part TODO OUT LABEL`` per part: ENTRY must be
    a module that runs the lane's command line (not ``__main__``, not a module without one)."""
    import importlib

    module = importlib.import_module(entry)
    run = subprocess.run([sys.executable, "-m", module.ENTRY, "_part", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "_part [-h]" in run.stdout and "todo" in run.stdout
