"""vLLM's real ``is_supported`` code, with only its leaf probes faked.

The support gates of vLLM's kernel classes end in a few leaf probes: package
presence (``has_flashinfer``, ``has_fbgemm_gpu``, ...; the line's
``package_probes``) and compiled ops a CPU cannot load
(``cutlass_scaled_mm_supports_fp4``; the line's ``compiled_probes``, rebuilt
from the rule their machine code implements). :class:`ProbeFaker` finds every
place a loaded ``vllm`` module bound one of them and, for the duration of a
block, replaces each with an answer for the fake machine: the rest of vLLM's
support code runs as released.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

from harness.targets.vllm.facts import CompiledProbe, PackageProbe, ReleaseFacts

__all__ = ["FP4_DTYPE", "ProbeFaker"]

#: torch's packed FP4 dtype, which a fake machine's torch may lack.
FP4_DTYPE = "float4_e2m1fn_x2"

Probe = PackageProbe | CompiledProbe


def _constant(value: object) -> Callable[..., object]:
    def probe(*_args: object, **_kwargs: object) -> object:
        return value

    return probe


def _stand_in(probe: PackageProbe) -> types.SimpleNamespace:
    """What a module accessor returns when the fake machine has the package: vLLM's gate has
    already required the right device before it asks the module's own ``is_supported()``."""
    return types.SimpleNamespace(
        __name__=f"{probe.package} (faked by {__name__})", is_supported=lambda: True
    )


class ProbeFaker:
    """The probes of one release line, and where the loaded ``vllm`` modules bound them."""

    def __init__(self, facts: ReleaseFacts) -> None:
        self.facts = facts
        self.packages = facts.probe_packages
        self._originals: dict[int, tuple[object, Probe]] = {}
        #: ``(field, what)`` of each probe the line names that the release lacks (the
        #: field is its path under the matrix's ``target:``, as ``("release",
        #: "package_probes", 3)``): the line is wrong about this release
        self.missing: list[tuple[tuple[str | int, ...], str]] = []
        probes: list[tuple[str, int, Probe]] = [
            *(("compiled_probes", i, p) for i, p in enumerate(facts.compiled_probes)),
            *(("package_probes", i, p) for i, p in enumerate(facts.package_probes)),
        ]
        for kind, index, probe in probes:
            field: tuple[str | int, ...] = ("release", kind, index)
            module = sys.modules.get(probe.module)
            if module is None:
                try:
                    module = importlib.import_module(probe.module)
                except ImportError as exc:
                    self.missing.append((field, f"no module {probe.module} ({exc})"))
                    continue
            fn = getattr(module, probe.name, None)
            if fn is None:
                self.missing.append((field, f"{probe.module} has no {probe.name}"))
            else:
                self._originals[id(fn)] = (fn, probe)
        self._sites: list[tuple[types.ModuleType, str, Probe]] = []
        self._scanned = -1

    def sites(self) -> list[tuple[types.ModuleType, str, Probe]]:
        """Every ``(module, attribute)`` of a loaded ``vllm`` module bound to a probe;
        rescanned only when modules were imported since the last scan."""
        if len(sys.modules) == self._scanned:
            return self._sites
        sites = []
        for name, module in list(sys.modules.items()):
            if module is None or not (name == "vllm" or name.startswith("vllm.")):
                continue
            try:
                items = list(vars(module).items())
            except TypeError:
                continue
            for attr, value in items:
                entry = self._originals.get(id(value))
                if entry is not None and entry[0] is value:
                    sites.append((module, attr, entry[1]))
        self._sites = sites
        self._scanned = len(sys.modules)
        return sites

    def bound(self) -> list[str]:
        """``package:name`` of every package probe bound somewhere (for ``--describe``)."""
        return sorted(
            {f"{p.package}:{p.name}" for _, _, p in self.sites() if isinstance(p, PackageProbe)}
        )

    @contextlib.contextmanager
    def faked(
        self,
        packages: set[str] | frozenset[str],
        *,
        cuda_runtime: tuple[int, int],
        torch_fp4_dtype: bool,
    ) -> Iterator[None]:
        """Inside the block every probe answers for a machine with ``packages`` installed,
        a CUDA runtime of ``cuda_runtime`` and, unless ``torch_fp4_dtype`` is false, torch's
        FP4 dtype. Everything is restored afterwards."""
        unknown = set(packages) - self.packages
        if unknown:
            raise ValueError(
                f"unknown package(s) {sorted(unknown)}; this release line's probes know "
                f"{sorted(self.packages)}"
            )

        def answer(probe: Probe) -> Callable[..., object]:
            if isinstance(probe, CompiledProbe):

                def compiled(cuda_device_capability: int, *_args: Any) -> bool:
                    return probe.supports(int(cuda_device_capability), cuda_runtime)

                return compiled
            present = probe.package in packages
            if probe.returns == "module":
                return _constant(_stand_in(probe) if present else None)
            return _constant(present)

        import torch  # already imported by vLLM

        patched: list[tuple[object, str, object]] = []
        try:
            if not torch_fp4_dtype and hasattr(torch, FP4_DTYPE):
                patched.append((torch, FP4_DTYPE, getattr(torch, FP4_DTYPE)))
                delattr(torch, FP4_DTYPE)
            for module, attr, probe in self.sites():
                patched.append((module, attr, getattr(module, attr)))
                setattr(module, attr, answer(probe))
            yield
        finally:
            for owner, attr, old in reversed(patched):
                setattr(owner, attr, old)
