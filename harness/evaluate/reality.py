"""The reality check: does the matrix describe the real machine it runs on?

On a hardware runner, :func:`check_reality` detects the platform, finds the
matching profile in the matrix, and compares

1. for every registered backend, the profile's declared support
   (``supported:`` in the matrix) with what ``is_supported()`` says on the real
   machine, and
2. for the default environment and each single forcing variable, the real
   selection on the real machine with the oracle's expectation for the
   profile (derived from the matrix alone).

A mismatch names the profile, the backend (or environment) and both verdicts.
A GPU that no profile describes is an :class:`UnknownGpuError` whose message
carries a profile entry ready to paste into ``matrix/gpus.yaml``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from harness import PROFILE_ENV
from harness.errors import HarnessError, UsageError
from harness.evaluate.compare import compare
from harness.evaluate.session import Session
from harness.load import Matrix
from harness.models import GpuProfile
from harness.targets import Query
from kernels.platform import Platform

__all__ = [
    "RealityReport",
    "SelectionCheck",
    "SupportCheck",
    "UnknownGpuError",
    "check_reality",
    "forcing_environments",
    "match_profile",
    "suggest_profile",
]


class UnknownGpuError(HarnessError, LookupError):
    """No profile in the matrix describes this machine (the message suggests one)."""


@dataclasses.dataclass(frozen=True)
class SupportCheck:
    backend: str
    declared: bool
    actual: bool
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.declared == self.actual

    def line(self) -> str:
        def word(v: bool) -> str:
            return "supported" if v else "unsupported"

        mark = "ok  " if self.ok else "FAIL"
        tail = f" ({self.reason})" if self.reason and not self.actual else ""
        return f"{mark} {self.backend:<18} declared {word(self.declared):<11} real {word(self.actual)}{tail}"


@dataclasses.dataclass(frozen=True)
class SelectionCheck:
    env: tuple[tuple[str, str], ...]
    expected: str
    actual: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def env_text(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.env) or "(default environment)"

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"{mark} {self.env_text}: expected {self.expected}; real {self.actual}"
        return text + "".join(f"\n       - {p}" for p in self.problems)


@dataclasses.dataclass(frozen=True)
class RealityReport:
    profile: GpuProfile
    platform: Platform
    notes: tuple[str, ...]
    support: tuple[SupportCheck, ...]
    selections: tuple[SelectionCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.support) and all(c.ok for c in self.selections)

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "profile": self.profile.id,
            "platform": self.platform.describe(),
            "notes": list(self.notes),
            "support": [dataclasses.asdict(c) | {"ok": c.ok} for c in self.support],
            "selections": [
                {"env": dict(c.env), "expected": c.expected, "actual": c.actual, "problems": list(c.problems)}
                for c in self.selections
            ],
        }

    def format(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        lines = [
            f"reality check {verdict}: profile {self.profile.id} vs the real machine",
            f"  real machine : {self.platform.describe()}",
            f"  profile      : {self.profile.id} - {self.profile.name} "
            f"({self.profile.sm}, packages {', '.join(self.profile.packages) or 'none'})",
        ]
        lines += [f"  note         : {n}" for n in self.notes]
        lines.append("  support (declared in the matrix vs is_supported() here):")
        lines += [f"    {c.line()}" for c in self.support]
        lines.append("  selection (oracle for the profile vs the real selection here):")
        lines += [f"    {c.line()}" for c in self.selections]
        return "\n".join(lines)


def _same_device(profile: GpuProfile, platform: Platform) -> bool:
    return (
        profile.device_type == platform.device_type
        and profile.capability_tuple == platform.capability
    )


def match_profile(matrix: Matrix, platform: Platform, profile_id: str | None = None) -> GpuProfile:
    """The profile that describes ``platform``.

    With ``profile_id`` (a runner says which profile it is), that profile is
    used as is: a wrong device shows up as mismatches, not as a silent switch
    to another profile. Otherwise the profiles with the same device type and
    capability are ranked: same device name first, then the same Triton
    interpreter setting, then profiles that have a
    CI queue, then the one whose packages differ least.
    """
    if profile_id is not None:
        if profile_id not in matrix.profiles:
            raise UnknownGpuError(
                f"profile {profile_id!r} is not in the matrix; profiles: {', '.join(matrix.profiles)}"
            )
        return matrix.profiles[profile_id]
    same = [p for p in matrix.profiles.values() if _same_device(p, platform)]
    if not same:
        raise UnknownGpuError(
            f"no profile in the matrix describes this machine ({platform.describe()}).\n"
            "Add one to matrix/gpus.yaml, for example:\n" + suggest_profile(platform)
        )

    def rank(p: GpuProfile) -> tuple[int, int, int, int]:
        return (
            0 if p.name == platform.name else 1,
            0 if p.triton_interpret == platform.triton_interpret else 1,
            0 if p.queue else 1,
            len(set(p.packages) ^ set(platform.packages)),
        )

    return min(same, key=rank)


def suggest_profile(platform: Platform, supported: list[str] | None = None) -> str:
    """A ``profiles:`` entry describing ``platform``, ready to paste."""
    from kernels.linear.registry import NVFP4_BACKENDS

    if supported is None:
        supported = [n for n, cls in NVFP4_BACKENDS.items() if cls.is_supported(platform)[0]]
    ident = "".join(ch if ch.isalnum() else "-" for ch in platform.name.lower()).strip("-")
    lines = [
        f"  {ident or 'new-gpu'}:",
        f"    name: {platform.name}",
        f"    device_type: {platform.device_type}",
    ]
    if platform.capability is not None:
        lines.append(f'    capability: "{platform.capability[0]}.{platform.capability[1]}"')
    if platform.cuda_version is not None:
        lines.append(f'    cuda: "{platform.cuda_version[0]}.{platform.cuda_version[1]}"')
    if platform.memory_gib is not None:
        lines.append(f"    memory_gib: {platform.memory_gib:g}")
    lines.append(f"    packages: [{', '.join(sorted(platform.packages))}]")
    lines.append(f'    torch: "{platform.torch_version[0]}.{platform.torch_version[1]}"')
    if platform.triton_version is not None:
        lines.append(f'    triton: "{platform.triton_version[0]}.{platform.triton_version[1]}"')
    lines.append("    queue: null")
    lines.append(f"    supported: [{', '.join(supported)}]")
    return "\n".join(lines)


def forcing_environments(matrix: Matrix) -> list[dict[str, str]]:
    """The default environment and each single forcing variable.

    Boolean rules are set to ``1``; a backend-name rule is set to every
    declared backend in turn.
    """
    assert matrix.precedence is not None
    envs: list[dict[str, str]] = [{}]
    for rule in matrix.precedence.forcing:
        if rule.value == "boolean":
            envs.append({rule.variable: "1"})
        else:
            envs += [{rule.variable: name} for name in matrix.backends]
    return envs


def check_reality(
    session: Session,
    platform: Platform | None = None,
    profile_id: str | None = None,
    layer_id: str | None = None,
) -> RealityReport:
    """Compare the session's matrix with the real machine (``platform`` defaults to the one
    the target detects)."""
    target = session.target
    caps = target.capabilities
    if not (caps.real_machine and caps.declared_support):
        raise UsageError(
            f"target {target.describe()} cannot be checked against a real machine (it runs on "
            "fake hardware only, or its profiles do not declare its support)"
        )
    matrix = session.matrix
    platform = platform or target.real_platform()
    profile = match_profile(matrix, platform, profile_id)
    notes: list[str] = []
    if not _same_device(profile, platform):
        notes.append(
            f"profile {profile.id} declares {profile.sm}, the machine is {platform.sm}"
        )
    missing = sorted(set(profile.packages) - platform.packages)
    extra = sorted(platform.packages - set(profile.packages))
    if missing or extra:
        notes.append(
            "packages differ from the profile: "
            + "; ".join(
                part
                for part in (
                    f"not installed here: {', '.join(missing)}" if missing else "",
                    f"installed here only: {', '.join(extra)}" if extra else "",
                )
                if part
            )
        )

    support = [
        SupportCheck(name, profile.declares_support(name), ok, reason)
        for name, (ok, reason) in target.real_support(platform).items()
    ]
    layer = session.layer(layer_id)
    fake = profile.platform()
    selections = []
    for env in forcing_environments(matrix):
        expected = session.expect(Query(fake, env, layer))
        # The real machine, the real selection: only the environment is the cell's.
        actual = session.evaluate(Query(platform, env, layer))
        problems = compare(expected, actual, matrix)
        selections.append(
            SelectionCheck(
                tuple(sorted(env.items())),
                expected.summary(),
                actual.summary(),
                tuple(problems),
            )
        )
    return RealityReport(profile, platform, tuple(notes), tuple(support), tuple(selections))


def profile_from_environment(environ: Mapping[str, str]) -> str | None:
    """The runner's profile id from ``NVFP4_MATRIX_PROFILE`` (set by the generated CI steps)."""
    value = environ.get(PROFILE_ENV, "").strip()
    return value or None
