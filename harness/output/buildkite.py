"""Generate the Buildkite pipeline from the matrix, so CI and matrix never drift.

:func:`generate_pipeline` is a pure function from the loaded
:class:`~harness.load.Matrix` to a ``dict`` in Buildkite's pipeline format;
dumping it to YAML is the caller's last step (``nvfp4-matrix buildkite``).

Steps:

* one CPU step (``tox -e cpu`` and ``tox -e matrix``) on the queue of the
  first CPU profile that names one;
* for every CUDA profile with a ``queue``: a "GPU suite (<ID>)" step running
  ``tox -e gpu`` for that profile (sharded with ``parallelism`` when the
  profile asks for shards), and a "Batch Invariance (<ID>)" step running the
  batch-invariance tests;
* a "Mutation lane" step (``tox -e mutation``, ``python -m harness.mutation``): the
  mutants of the selection code in :data:`MUTATION_SHARDS` shards, one per
  job (Buildkite ``parallelism``), each failing on its own survivors;
* every lane a target asks for (:meth:`harness.targets.Target.ci_lanes`; the
  vLLM target: a "vLLM <line> selection" step, ``tox -e vllm-<line>``, and a
  "vLLM <line> mutation lane" step, ``tox -e mutation-vllm-<line>``, per
  release line), each on the CPU queue;
* a final step that annotates the build with every step's markdown summary,
  whatever the other steps' outcomes.

Every command step has a timeout, retries automatically only when the agent
is lost (exit status -1) or stopped (signal reason ``agent_stop``), never when
a test fails, and uploads the reports folder as artifacts.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Sequence
from typing import Any

from harness import PROFILE_ENV, TOOL
from harness.load import Matrix
from harness.models import GpuProfile
from harness.targets import CiLane

__all__ = [
    "AGENT_LOST_RETRY",
    "MUTATION_SHARDS",
    "REPORTS_GLOB",
    "TOX_ENVS",
    "generate_pipeline",
    "gpu_profiles_with_queue",
    "step_label",
]

#: Retry an agent that vanished (-1) or was stopped, never a failing test.
AGENT_LOST_RETRY: dict[str, Any] = {
    "automatic": [
        {"exit_status": -1, "limit": 2},
        {"signal_reason": "agent_stop", "limit": 2},
    ],
    "manual": {"permit_on_passed": False},
}
REPORTS_GLOB = "reports/**/*"
#: The tox environments the generated commands may use (tests check tox.ini has them);
#: the targets' lanes bring their own.
TOX_ENVS = ("cpu", "matrix", "gpu", "mutation")
CPU_TIMEOUT_MINUTES = 30
#: Jobs of the mutation lane's step: each runs one shard (``--shard buildkite``).
MUTATION_SHARDS = 8
MUTATION_TIMEOUT_MINUTES = 60
GPU_TIMEOUT_MINUTES = 45
BATCH_INVARIANCE_MARK = "batch_invariance"


def step_label(profile: GpuProfile) -> str:
    """``"H100"`` for profile ``h100``: the short name used in step labels."""
    return profile.id.upper()


def gpu_profiles_with_queue(matrix: Matrix) -> list[GpuProfile]:
    return [p for p in matrix.profiles.values() if p.device_type == "cuda" and p.queue]


def _cpu_queue(matrix: Matrix) -> str | None:
    for profile in matrix.profiles.values():
        if profile.device_type == "cpu" and profile.queue:
            return profile.queue
    return None


def _command_step(
    label: str,
    key: str,
    commands: list[str],
    queue: str | None,
    timeout: int,
    *,
    env: dict[str, str] | None = None,
    parallelism: int = 1,
) -> dict[str, Any]:
    # Fresh objects per step: shared ones would be dumped as YAML anchors.
    step: dict[str, Any] = {"label": label, "key": key, "commands": commands}
    if queue:
        step["agents"] = {"queue": queue}
    if env:
        step["env"] = dict(env)
    step["timeout_in_minutes"] = timeout
    step["retry"] = copy.deepcopy(AGENT_LOST_RETRY)
    step["artifact_paths"] = [REPORTS_GLOB]
    if parallelism > 1:
        step["parallelism"] = parallelism
    return step


def generate_pipeline(
    matrix: Matrix, *, matrix_paths: Sequence[str] = (), lanes: Sequence[CiLane] = ()
) -> dict[str, Any]:
    """The Buildkite pipeline for ``matrix``.

    ``matrix_paths`` (e.g. the files named on the generator's command line)
    are appended to the commands that read the matrix, each quoted for the
    shell: a path with a space or a ``;`` stays one argument, never syntax.
    ``lanes`` are the targets' own CI lanes, a CPU step each.
    """
    extra = "".join(f" {shlex.quote(str(p))}" for p in matrix_paths)
    steps: list[dict[str, Any]] = [
        _command_step(
            ":pytest: CPU suite and matrix",
            "cpu",
            [
                "python3 -m pip install --quiet 'tox>=4.11'",
                "tox -e cpu",
                f"tox -e matrix -- --reports reports/matrix{extra}".rstrip(),
            ],
            _cpu_queue(matrix),
            CPU_TIMEOUT_MINUTES,
        )
    ]
    for lane in lanes:
        arguments = "".join(f" {shlex.quote(a)}" for a in lane.arguments)
        steps.append(
            _command_step(
                lane.label,
                lane.key,
                [
                    "python3 -m pip install --quiet 'tox>=4.11'",
                    f"tox -e {lane.tox_env}" + (f" --{arguments}" if arguments else ""),
                ],
                _cpu_queue(matrix),
                CPU_TIMEOUT_MINUTES,
            )
        )
    steps.append(
        _command_step(
            ":dna: Mutation lane",
            "mutation",
            [
                "python3 -m pip install --quiet 'tox>=4.11'",
                "tox -e mutation -- --shard buildkite",
            ],
            _cpu_queue(matrix),
            MUTATION_TIMEOUT_MINUTES,
            parallelism=MUTATION_SHARDS,
        )
    )
    for profile in gpu_profiles_with_queue(matrix):
        label = step_label(profile)
        env = {PROFILE_ENV: profile.id}
        runner = f"tox -e gpu -- --nvfp4-profile {profile.id}"
        steps.append(
            _command_step(
                f":nvidia: GPU suite ({label})",
                f"gpu-{profile.id}",
                [f"{runner} --nvfp4-reports reports/gpu-{profile.id}"],
                profile.queue,
                GPU_TIMEOUT_MINUTES,
                env=env,
                parallelism=profile.shards,
            )
        )
        steps.append(
            _command_step(
                f"Batch Invariance ({label})",
                f"batch-invariance-{profile.id}",
                [
                    f"{runner} -m {BATCH_INVARIANCE_MARK} "
                    f"--nvfp4-reports reports/batch-invariance-{profile.id}"
                ],
                profile.queue,
                GPU_TIMEOUT_MINUTES,
                env=env,
            )
        )
    keys = [s["key"] for s in steps]
    steps.append(
        {
            "label": ":memo: Annotate",
            "key": "annotate",
            "depends_on": keys,
            "allow_dependency_failure": True,
            "commands": [
                "buildkite-agent artifact download 'reports/**/summary.md' . || true",
                "find reports -name summary.md | sort | xargs cat | "
                f"buildkite-agent annotate --style info --context {TOOL}",
            ],
            "timeout_in_minutes": 10,
            "retry": copy.deepcopy(AGENT_LOST_RETRY),
        }
    )
    if _cpu_queue(matrix):
        steps[-1]["agents"] = {"queue": _cpu_queue(matrix)}
    return {"steps": steps}
