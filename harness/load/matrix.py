"""The merged matrix: every file's models in one :class:`Matrix`, with where each part is written.

:func:`harness.load.loader.load_matrix` builds it.
"""

from __future__ import annotations

import dataclasses

from harness.load.problems import unknown_name
from harness.load.yamlsrc import Location, PathKey, Source
from harness.models import (
    BackendSpec,
    GoldenCase,
    GpuProfile,
    KnownFailure,
    LayerSpec,
    Precedence,
    Sweep,
    TargetSpec,
)

__all__ = ["Matrix"]


@dataclasses.dataclass
class Matrix:
    """Every matrix file merged into one model.

    Attributes:
        files: the files read, in order (includes after their includer).
        profiles: profile id -> :class:`GpuProfile`, in file order.
        layers: layer id -> :class:`LayerSpec`.
        default_layer: the layer a cell uses unless it names another.
        backends: backend name -> :class:`BackendSpec`, in file order.
        precedence: the precedence table (exactly one file defines it).
        sweeps: every sweep, in file order.
        cases: every golden case, in file order.
        target: the system under test the files describe (``None``: this
            project's kernels; at most one file says).
        known_failures: cells where the code under test is known to be wrong.
        triton_interpret: ``TRITON_INTERPRET`` value -> the Triton releases that
            switch the interpreter on for it (at most one file says; detection
            cells set each value on each profile with Triton).
    """

    files: list[Source]
    profiles: dict[str, GpuProfile]
    layers: dict[str, LayerSpec]
    default_layer: str | None
    backends: dict[str, BackendSpec]
    precedence: Precedence | None
    sweeps: list[Sweep]
    cases: list[GoldenCase]
    target: TargetSpec | None = None
    known_failures: list[KnownFailure] = dataclasses.field(default_factory=list)
    triton_interpret: dict[str, str] | None = None
    _origins: dict[tuple[str, str], tuple[Source, PathKey]] = dataclasses.field(
        default_factory=dict, repr=False
    )

    # --- lookups -------------------------------------------------------------------
    def profile(self, profile_id: str) -> GpuProfile:
        """The profile called ``profile_id``; ``KeyError`` naming the known ones otherwise."""
        try:
            return self.profiles[profile_id]
        except KeyError:
            raise KeyError(unknown_name("profile", profile_id, self.profiles)) from None

    def layer(self, layer_id: str | None = None) -> LayerSpec:
        return self.layers[layer_id or self.default_layer_id]

    @property
    def default_layer_id(self) -> str:
        if self.default_layer is not None:
            return self.default_layer
        return next(iter(self.layers))

    def declared_support(self, profile_id: str, backend: str) -> bool:
        """Does the matrix declare ``backend`` supported on profile ``profile_id``?"""
        if backend not in self.backends:
            raise KeyError(unknown_name("backend", backend, self.backends))
        return self.profile(profile_id).declares_support(backend)

    def kernel_class_name(self, backend: str) -> str:
        return self.backends[backend].kernel

    def backend_of_kernel(self, kernel: str) -> str | None:
        for name, spec in self.backends.items():
            if spec.kernel == kernel:
                return name
        return None

    def queues(self) -> dict[str, list[str]]:
        """Buildkite queue -> profile ids that run on it (profiles without a queue omitted)."""
        out: dict[str, list[str]] = {}
        for pid, profile in self.profiles.items():
            if profile.queue:
                out.setdefault(profile.queue, []).append(pid)
        return out

    @property
    def target_name(self) -> str | None:
        return None if self.target is None else self.target.name

    def where(self, kind: str, key: str, *subpath: str | int) -> Location:
        """Where ``kind`` (profile, backend, layer, sweep, case, precedence) ``key`` is defined."""
        source, path = self._origins[(kind, key)]
        return Location(source.name, source.line(path + tuple(subpath)))

    def source_of(self, kind: str, key: str) -> tuple[Source, PathKey]:
        return self._origins[(kind, key)]

    def forcing_rule_location(self, rule_id: str) -> Location | None:
        if self.precedence is None:
            return None
        for index, rule in enumerate(self.precedence.forcing):
            if rule.rule == rule_id:
                return self.where("precedence", "", "forcing", index)
        if rule_id == self.precedence.auto.rule:
            return self.where("precedence", "", "auto")
        return None


