"""Choosing the NVFP4 linear kernel.

Precedence, first match wins (:data:`PRECEDENCE` is this table, in order):

====  ==============================  =============================================
rule  variable                        effect
====  ==============================  =============================================
1     ``VLLM_BATCH_INVARIANT``        force a batch-invariant backend
2     ``VLLM_USE_FBGEMM``             force ``fbgemm``
3     ``VLLM_USE_NVFP4_CT_EMULATIONS`` force ``emulation``
4     ``VLLM_NVFP4_GEMM_BACKEND``     force the named backend
5     (none)                          automatic: first supported backend in
                                      registry order, skipping
                                      ``VLLM_DISABLED_KERNELS``
====  ==============================  =============================================

A forced backend that is not supported is an error
(``Forced NVFP4 kernel <Class> is not supported: <reason>``), never a silent
fallback to automatic selection. Every environment variable is validated
before any rule runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Callable, Mapping, Sequence

from kernels import envs as env_vars
from kernels.envs import NvFp4Envs, read_envs
from kernels.errors import InvalidEnvironmentError, KernelSelectionError, quoted
from kernels.linear.base import NvFp4LinearKernel
from kernels.linear.config import NvFp4LinearConfig
from kernels.linear.decision import CandidateVerdict, SelectionDecision
from kernels.linear.registry import NVFP4_BACKENDS
from kernels.platform import Platform, current_platform

__all__ = [
    "BATCH_INVARIANT_PREFERENCE",
    "PRECEDENCE",
    "PROCESS_NOTES",
    "NoteLog",
    "PrecedenceRule",
    "decide",
    "init_nvfp4_linear_kernel",
]

#: Backends that ``VLLM_BATCH_INVARIANT`` may force, best first. Each must
#: declare ``batch_invariant = True`` (checked in :func:`decide`).
BATCH_INVARIANT_PREFERENCE: tuple[str, ...] = ("triton", "emulation")


@dataclasses.dataclass(frozen=True)
class PrecedenceRule:
    """One row of the precedence table: a variable that, when active, forces its backends."""

    id: str
    variable: str
    summary: str
    active: Callable[[NvFp4Envs], bool]
    backends: Callable[[NvFp4Envs], tuple[str, ...]]


PRECEDENCE: tuple[PrecedenceRule, ...] = (
    PrecedenceRule(
        "batch_invariant",
        env_vars.VLLM_BATCH_INVARIANT,
        "forces a batch-invariant backend",
        lambda e: e.batch_invariant,
        lambda e: BATCH_INVARIANT_PREFERENCE,
    ),
    PrecedenceRule(
        "use_fbgemm",
        env_vars.VLLM_USE_FBGEMM,
        "forces fbgemm",
        lambda e: e.use_fbgemm,
        lambda e: ("fbgemm",),
    ),
    PrecedenceRule(
        "ct_emulations",
        env_vars.VLLM_USE_NVFP4_CT_EMULATIONS,
        "forces emulation",
        lambda e: e.use_ct_emulations,
        lambda e: ("emulation",),
    ),
    PrecedenceRule(
        "gemm_backend",
        env_vars.VLLM_NVFP4_GEMM_BACKEND,
        "forces the named backend",
        lambda e: e.gemm_backend is not None,
        lambda e: (e.gemm_backend,) if e.gemm_backend else (),
    ),
)

class NoteLog:
    """Where :func:`init_nvfp4_linear_kernel` logs the notes of its decisions: each distinct
    note once.

    A model builds hundreds of NVFP4 layers; the same fallback warning for each
    would drown the log. The memory of what was logged is this object's:
    :data:`PROCESS_NOTES`, the default, lasts the process (what an engine
    wants); a caller that wants its own (a second model, a test of the log, the
    harness checking one cell) passes a fresh one, or calls :meth:`forget`.
    Nothing is attached to the logger: a record logged on ``kernels.linear`` by
    anything else is never held back.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("kernels.linear")
        self.seen: set[str] = set()

    def log(self, level: int, message: str) -> None:
        """Log ``message`` at ``level`` unless this log has logged it."""
        if message not in self.seen:
            self.seen.add(message)
            self.logger.log(level, message)

    def forget(self) -> None:
        """Log every note once more."""
        self.seen.clear()


#: The notes of this process (the default of :func:`init_nvfp4_linear_kernel`).
PROCESS_NOTES = NoteLog()


#: The start of the note that automatic selection ended at the emulation (a warning).
FALLBACK_NOTE = "NVFP4 linear falling back to the slow emulation backend"
#: The start of the note for a ``VLLM_DISABLED_KERNELS`` name that matches no kernel (a warning).
UNKNOWN_DISABLED_NOTE = f"{env_vars.VLLM_DISABLED_KERNELS} names no NVFP4 kernel"
#: Notes logged as warnings by :func:`init_nvfp4_linear_kernel` (the rest is information).
WARNING_NOTES = (FALLBACK_NOTE, UNKNOWN_DISABLED_NOTE)


def unknown_disabled_notes(
    envs: NvFp4Envs, table: Mapping[str, type[NvFp4LinearKernel]]
) -> list[str]:
    """One note per ``VLLM_DISABLED_KERNELS`` name that is no NVFP4 kernel class.

    Engines share that variable across kernel families (a name may be another
    family's kernel), so such a name is not an error; but a typo must never be
    silent: the note names it and the closest NVFP4 kernel class.
    """
    known = [cls.__name__ for cls in table.values()]
    notes = []
    for name in sorted(envs.disabled_kernels - set(known)):
        close = closest_name(name, known)
        hint = f" (the closest NVFP4 kernel class is {close})" if close else ""
        notes.append(f"{UNKNOWN_DISABLED_NOTE} called {name}{hint}; it disables nothing here")
    return notes


def closest_name(name: str, known: Sequence[str]) -> str | None:
    """The name in ``known`` closest to ``name`` (which is not in it), ignoring case."""
    folded = {k.casefold(): k for k in reversed(known)}
    if name.casefold() in folded:
        return folded[name.casefold()]
    close = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.0)
    return folded[close[0]] if close else None


def decide(
    config: NvFp4LinearConfig,
    platform: Platform | None = None,
    environ: Mapping[str, str] | NvFp4Envs | None = None,
    backends: Mapping[str, type[NvFp4LinearKernel]] | None = None,
) -> SelectionDecision:
    """Decide which backend implements ``config`` on ``platform``.

    Pure: returns a :class:`SelectionDecision` whose ``error`` is set when
    nothing fits, and whose ``messages`` hold the notes a caller should log
    (:func:`init_nvfp4_linear_kernel` does). Raises
    :class:`~kernels.errors.InvalidEnvironmentError` (a ``ValueError``) for an
    environment value that does not parse or names an unknown backend.
    """
    platform = platform or current_platform()
    envs = environ if isinstance(environ, NvFp4Envs) else read_envs(environ)
    table = NVFP4_BACKENDS if backends is None else backends
    if envs.gemm_backend is not None and envs.gemm_backend not in table:
        raise InvalidEnvironmentError(
            f"Unknown {env_vars.VLLM_NVFP4_GEMM_BACKEND}={quoted(envs.gemm_backend)}. "
            f"Valid choices: {', '.join(table)}"
        )
    context = dict(platform=platform.describe(), layer=config.describe())

    consulted: list[tuple[str, str | None]] = []
    for rule in PRECEDENCE:
        consulted.append((rule.variable, envs.raw_value(rule.variable)))
        if rule.active(envs):
            return _forced(rule, envs, config, platform, table, tuple(consulted), context)
    consulted.append(
        (env_vars.VLLM_DISABLED_KERNELS, envs.raw_value(env_vars.VLLM_DISABLED_KERNELS))
    )
    return _automatic(envs, config, platform, table, tuple(consulted), context)


def _walk(
    classes: list[tuple[str, type[NvFp4LinearKernel]]],
    config: NvFp4LinearConfig,
    platform: Platform,
    disabled: frozenset[str] = frozenset(),
) -> tuple[list[CandidateVerdict], str | None]:
    """Try ``classes`` in order; the first that is supported and can implement wins.

    Returns every candidate's verdict and the chosen backend name (or None).
    ``disabled`` holds class names to skip (automatic selection only).
    """
    candidates: list[CandidateVerdict] = []
    chosen: str | None = None
    for name, cls in classes:
        kernel = cls.__name__
        if chosen is not None:
            candidates.append(CandidateVerdict(name, kernel, "not-reached"))
            continue
        if kernel in disabled:
            why = f"{kernel} disabled by {env_vars.VLLM_DISABLED_KERNELS}"
            candidates.append(CandidateVerdict(name, kernel, "disabled", why))
            continue
        ok, reason = cls.is_supported(platform)
        if not ok:
            candidates.append(CandidateVerdict(name, kernel, "unsupported", reason))
            continue
        ok, reason = cls.can_implement(config)
        if not ok:
            candidates.append(CandidateVerdict(name, kernel, "cannot-implement", reason))
            continue
        chosen = name
        candidates.append(CandidateVerdict(name, kernel, "selected"))
    return candidates, chosen


def _forced(
    rule: PrecedenceRule,
    envs: NvFp4Envs,
    config: NvFp4LinearConfig,
    platform: Platform,
    table: Mapping[str, type[NvFp4LinearKernel]],
    consulted: tuple[tuple[str, str | None], ...],
    context: dict[str, str],
) -> SelectionDecision:
    classes = [(name, table[name]) for name in rule.backends(envs)]
    if rule.id == "batch_invariant":
        for _, cls in classes:
            if not cls.batch_invariant:
                raise AssertionError(
                    f"{cls.__name__} is in the batch-invariant preference but is not batch invariant"
                )
    candidates, chosen = _walk(classes, config, platform)
    messages: list[str] = unknown_disabled_notes(envs, table)
    if envs.disabled_kernels:
        messages.append(
            f"{env_vars.VLLM_DISABLED_KERNELS} applies to automatic selection only; "
            f"ignored because {rule.variable} forces the choice"
        )
    if chosen is None:
        last = candidates[-1]
        verb = "is not supported" if last.status == "unsupported" else "cannot implement this layer"
        error = f"Forced NVFP4 kernel {last.kernel} {verb}: {last.reason}"
        earlier = candidates[:-1]
        if earlier:
            error += " (also tried: " + "; ".join(f"{c.kernel}: {c.reason}" for c in earlier) + ")"
        return SelectionDecision(
            rule.id, rule.variable, consulted, candidates=tuple(candidates), backend=None,
            error=error, messages=tuple(messages), **context,
        )
    if rule.id == "batch_invariant":
        skipped = [c for c in candidates if c.status not in ("selected", "not-reached")]
        why = f"{rule.variable} forces NVFP4 linear to use the batch-invariant {chosen} backend"
        if skipped:
            why += " (" + "; ".join(f"{c.backend}: {c.reason}" for c in skipped) + ")"
        messages.append(why)
    return SelectionDecision(
        rule.id, rule.variable, consulted, candidates=tuple(candidates), backend=chosen,
        messages=tuple(messages), **context,
    )


def _automatic(
    envs: NvFp4Envs,
    config: NvFp4LinearConfig,
    platform: Platform,
    table: Mapping[str, type[NvFp4LinearKernel]],
    consulted: tuple[tuple[str, str | None], ...],
    context: dict[str, str],
) -> SelectionDecision:
    candidates, chosen = _walk(list(table.items()), config, platform, envs.disabled_kernels)
    messages: list[str] = unknown_disabled_notes(envs, table)
    rejected = [c for c in candidates if c.status in ("unsupported", "cannot-implement", "disabled")]
    if chosen is None:
        reasons = "\n".join(f"  - {c.kernel}: {c.reason}" for c in rejected)
        error = (
            "Failed to find a kernel that can implement the NVFP4 linear layer "
            f"({context['layer']}) on {context['platform']}. Reasons:\n{reasons}"
        )
        return SelectionDecision(
            "auto", None, consulted, candidates=tuple(candidates), backend=None,
            error=error, messages=tuple(messages), **context,
        )
    if chosen == "emulation" and rejected:
        warning = (
            f"{FALLBACK_NOTE}; rejected: "
            + "; ".join(f"{c.kernel}: {c.reason}" for c in rejected)
        )
        messages.append(warning)
    return SelectionDecision(
        "auto", None, consulted, candidates=tuple(candidates), backend=chosen,
        messages=tuple(messages), **context,
    )


def init_nvfp4_linear_kernel(
    config: NvFp4LinearConfig,
    platform: Platform | None = None,
    environ: Mapping[str, str] | None = None,
    notes: NoteLog | None = None,
) -> tuple[NvFp4LinearKernel, SelectionDecision]:
    """Select and build the NVFP4 kernel for ``config``.

    Returns ``(kernel, decision)``. Raises
    :class:`~kernels.errors.KernelSelectionError` (a ``ValueError``) carrying
    the decision when nothing can be selected, and
    :class:`~kernels.errors.InvalidEnvironmentError` (a ``ValueError``) for an
    invalid environment value. ``environ`` defaults to ``os.environ``, read
    now; ``platform`` to :func:`~kernels.platform.current_platform`; ``notes``
    (where the decision's notes are logged, each once) to :data:`PROCESS_NOTES`.
    """
    platform = platform or current_platform()
    notes = PROCESS_NOTES if notes is None else notes
    decision = decide(config, platform, environ)
    for message in decision.messages:
        # The fallback to emulation and an unknown disabled name are warnings; the rest is information.
        level = logging.WARNING if message.startswith(WARNING_NOTES) else logging.INFO
        notes.log(level, message)
    if decision.backend is None:
        raise KernelSelectionError(decision.error or "no NVFP4 kernel selected", decision)
    kernel = NVFP4_BACKENDS[decision.backend](config, platform)
    notes.log(logging.DEBUG, f"Using {type(kernel).__name__} for NVFP4 GEMM")
    return kernel, decision
