"""Drive the installed vLLM's own NVFP4 linear-kernel selection on a CPU with a fake GPU.

vLLM chooses its NVFP4 GEMM backend in
``vllm.model_executor.kernels.linear.init_nvfp4_linear_kernel``. This module imports that
function unmodified from the installed ``vllm`` package and calls it under a fake platform,
a clean environment and faked support probes, one cell at a time:

    rt = VllmRuntime.load()                    # once per process (seconds)
    rt.set_platform("cuda", (10, 0))           # a B200
    with rt.env({"VLLM_BATCH_INVARIANT": "1"}), rt.real_support({"flashinfer"}):
        outcome = rt.select()                  # tens of microseconds
    outcome.kernel                             # 'EmulationNvFp4LinearKernel' on 0.20.x

How it works, and why in this order:

* **Platform.** vLLM modules bind ``vllm.platforms.current_platform`` when they are imported.
  :meth:`VllmRuntime.load` puts one instance of a subclass of vLLM's own ``Platform`` into
  ``vllm.platforms._current_platform`` *before* the kernels package is imported, reporting
  ``UNSPECIFIED`` during the import: a platform that says CUDA at import time makes import-time
  code call compiled CUDA ops (and, in 0.33, import ``vllm.vllm_flash_attn``), which fails on a
  CPU. After the import the same object is switched per cell by :meth:`VllmRuntime.set_platform`;
  every module that bound it sees the change. Its methods are vLLM's (``has_device_capability``,
  ``is_device_capability_family``, ...); only the device kind and the capability are ours.
* **Inputs of the selection.** ``init_nvfp4_linear_kernel`` takes no layer description: it builds
  vLLM's ``NvFp4LinearLayerConfig()`` itself (an empty dataclass in every release: all NVFP4
  layers share one layout) and *returns an instance* of the chosen kernel class; the kernel's
  ``__init__`` only re-asserts ``can_implement`` and ``is_supported`` and stores the config, so
  no GPU and no weights are needed. The only argument is ``use_a16`` (weight-only W4A16
  checkpoints), from 0.23 on. ``--linear-backend`` (0.22 on) is read through the module-level
  ``_get_linear_backend()``, which answers ``"auto"`` when no engine config is active; a cell
  that sets it replaces that function for the call.
* **Environment.** ``vllm.envs`` reads ``os.environ`` lazily unless its cache was enabled;
  :meth:`VllmRuntime.env` sets exactly the given variables, removes every other NVFP4 selection
  variable and disables the cache, so vLLM's own parsers and validators see each cell.
* **Support.** Either :meth:`VllmRuntime.mock_support` replaces ``is_supported`` on named
  kernel classes (the precedence alone), or :meth:`VllmRuntime.real_support` keeps vLLM's real
  ``is_supported`` code and fakes only its leaf probes: package presence (``has_flashinfer``,
  ``has_fbgemm_gpu``, ...) and the compiled ``cutlass_scaled_mm_supports_fp4``, which a CPU
  cannot load and which is rebuilt from its C++ rule (:data:`CUTLASS_FP4_RULES`).
* **Outcome.** :meth:`VllmRuntime.select` returns an :class:`Outcome`: the chosen class name or
  the error, plus the log lines vLLM emitted during the call (its once-only caches are cleared
  first, so every call logs as if it were the first).

The mutant ``"vllm-39129"`` rebuilds ``init_nvfp4_linear_kernel`` from its own source with the
hunk of vLLM PR #39820 reversed (the ``VLLM_BATCH_INVARIANT`` branch removed, the next ``elif``
made an ``if``): the regression of vLLM PR #39129, which no PyPI release shipped.

One vLLM per process: the kernels package can be imported once. ``python -m
harness.targets.vllm_runtime --selftest`` runs a few real cells; ``--describe`` prints what the
installed release holds. This module imports nothing from the rest of the project.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import inspect
import json
import logging
import os
import re
import statistics
import sys
import time
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = [
    "CUTLASS_FP4_RULES",
    "MUTANTS",
    "PACKAGE_PROBES",
    "RELEASE_LINES",
    "CompiledRule",
    "MutantShapeError",
    "Outcome",
    "PackageProbe",
    "ReleaseLine",
    "UnsupportedReleaseError",
    "VllmRuntime",
]

KERNELS_MODULE = "vllm.model_executor.kernels.linear"
"""The module that holds ``init_nvfp4_linear_kernel`` and the candidate lists."""

SELECTION_FUNCTION = "init_nvfp4_linear_kernel"

DEVICE_TYPES = ("cuda", "rocm", "cpu")
"""Device kinds a cell can ask for; they map to vLLM's ``PlatformEnum`` members."""

HISTORICAL_SELECTION_VARIABLES = (
    "VLLM_BATCH_INVARIANT",
    "VLLM_USE_FBGEMM",
    "VLLM_USE_NVFP4_CT_EMULATIONS",
    "VLLM_NVFP4_GEMM_BACKEND",
    "VLLM_DISABLED_KERNELS",
)
"""Every variable an NVFP4 selection of a covered release reads (0.20 reads all five, 0.24 on
only the first and the last). :meth:`VllmRuntime.env` clears them all, together with the ones
read from the installed function's source, so a variable left in the shell never leaks."""


# --------------------------------------------------------------------------------------------
# Release lines
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseLine:
    """Releases whose NVFP4 selection has the same precedence, named after the newest checked.

    ``first`` and ``last`` are inclusive ``(major, minor)`` bounds.
    """

    name: str
    first: tuple[int, int]
    last: tuple[int, int]
    precedence: str

    def covers(self, version: tuple[int, int]) -> bool:
        return self.first <= version <= self.last

    @property
    def span(self) -> str:
        return f"{self.first[0]}.{self.first[1]}.x-{self.last[0]}.{self.last[1]}.x"


RELEASE_LINES = (
    ReleaseLine(
        "0.20",
        (0, 20),
        (0, 21),
        "VLLM_BATCH_INVARIANT -> Emulation; VLLM_USE_FBGEMM; VLLM_USE_NVFP4_CT_EMULATIONS; "
        "VLLM_NVFP4_GEMM_BACKEND; automatic (VLLM_DISABLED_KERNELS)",
    ),
    ReleaseLine(
        "0.22",
        (0, 22),
        (0, 23),
        "VLLM_BATCH_INVARIANT -> Cutlass if supported else Emulation; the deprecated variables "
        "only when --linear-backend is auto; automatic filtered by --linear-backend",
    ),
    ReleaseLine(
        "0.33",
        (0, 24),
        (0, 33),
        "VLLM_BATCH_INVARIANT -> Cutlass if supported else Emulation; automatic filtered by "
        "--linear-backend (VLLM_DISABLED_KERNELS)",
    ),
)
"""The release lines this runtime knows; see docs/vllm-sources.md for the source diffs."""


class UnsupportedReleaseError(ValueError):
    """The installed vLLM belongs to no known release line."""


def release_line(version: str) -> ReleaseLine:
    """The :class:`ReleaseLine` of a vLLM version string such as ``"0.22.1"``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise UnsupportedReleaseError(f"cannot read a release from vLLM version {version!r}")
    key = (int(match.group(1)), int(match.group(2)))
    for line in RELEASE_LINES:
        if line.covers(key):
            return line
    covered = ", ".join(f"{line.name} ({line.span})" for line in RELEASE_LINES)
    raise UnsupportedReleaseError(
        f"vLLM {version} is not covered; covered release lines: {covered}"
    )


# --------------------------------------------------------------------------------------------
# The compiled probe, as data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    """The C++ rule of ``cutlass_scaled_mm_supports_fp4(cuda_device_capability)``.

    True when the CUDA runtime is at least ``min_cuda_runtime`` (``cudaRuntimeGetVersion``
    encoding, 12080 = 12.8) and the capability integer (``major * 10 + minor``) lies in one of
    ``ranges``: half-open ``[low, high)`` intervals, each compiled in under the named macro.
    """

    source: str
    tag: str
    min_cuda_runtime: int
    ranges: tuple[tuple[int, int, str], ...]
    evidence: str

    def supports(self, capability: int, cuda_runtime: int) -> bool:
        if cuda_runtime < self.min_cuda_runtime:
            return False
        return any(low <= capability < high for low, high, _macro in self.ranges)


_FP4_ENTRY = "csrc/libtorch_stable/quantization/fp4/nvfp4_scaled_mm_entry.cu"
_FP4_RANGES = ((100, 120, "ENABLE_NVFP4_SM100"), (120, 130, "ENABLE_NVFP4_SM120"))
_FP4_EVIDENCE = (
    "source: the function in vllm-project/vllm {file} (guarded form of vLLM PR #38423: "
    "report support only for the SM families compiled in); the PyPI x86_64 wheel of {tag} "
    "compiles both macros: its _C_stable_libtorch.abi3.so implements the op as "
    "'runtime > 12079 and 0 <= cc - 100 <= 29', i.e. runtime >= 12.8 and 100 <= cc < 130"
)

CUTLASS_FP4_RULES: dict[str, CompiledRule] = {
    line: CompiledRule(
        source=_FP4_ENTRY,
        tag=tag,
        min_cuda_runtime=12080,
        ranges=_FP4_RANGES,
        evidence=_FP4_EVIDENCE.format(file=_FP4_ENTRY, tag=tag),
    )
    for line, tag in (("0.20", "v0.20.2"), ("0.22", "v0.22.1"), ("0.33", "v0.33.0"))
}
"""The compiled CUTLASS FP4 probe per release line (same rule in every covered release:
checked in the machine code of v0.20.2, v0.21.0, v0.22.0, v0.22.1, v0.23.0, v0.24.0, v0.32.0
and v0.33.0)."""


# --------------------------------------------------------------------------------------------
# Package probes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageProbe:
    """A vLLM function that reports whether an optional package (or a feature of it) is there.

    ``returns`` is ``"bool"`` for ``has_*`` functions and ``"module"`` for accessors that return
    the package's submodule or ``None``.
    """

    module: str
    name: str
    package: str
    returns: str = "bool"


PACKAGE_PROBES = (
    PackageProbe("vllm.utils.flashinfer", "has_flashinfer", "flashinfer"),
    # Feature probes of the FlashInfer a release pins (0.24+): CuTe-DSL, the CuTe-DSL W4A16
    # GEMM and the SM12x "b12x" GEMM. "flashinfer" stands for the pinned FlashInfer, which has
    # them all (flashinfer-python 0.7.2.post1 for vLLM 0.33.0).
    PackageProbe("vllm.utils.flashinfer", "has_flashinfer_cutedsl", "flashinfer"),
    PackageProbe("vllm.utils.flashinfer", "has_flashinfer_bf16_fp4", "flashinfer"),
    PackageProbe("vllm.utils.flashinfer", "has_flashinfer_b12x_gemm", "flashinfer"),
    PackageProbe("vllm.utils.import_utils", "has_fbgemm_gpu", "fbgemm_gpu"),
    PackageProbe("vllm.utils.import_utils", "has_humming", "humming"),
    PackageProbe("vllm.utils.b12x", "get_b12x_blockscaled", "b12x", returns="module"),
    PackageProbe("vllm.utils.b12x", "get_b12x_intrinsics", "b12x", returns="module"),
)
"""Leaf probes :meth:`VllmRuntime.real_support` fakes, wherever vLLM bound them. Probes a
release lacks are skipped. A faked ``b12x`` submodule's own ``is_supported()`` answers True:
vLLM's gate has already required a 12.x device before it asks."""

_COMPILED_PROBE = ("vllm._custom_ops", "cutlass_scaled_mm_supports_fp4")
#: torch's packed FP4 dtype, which a fake machine's torch may lack.
_FP4_DTYPE = "float4_e2m1fn_x2"


# --------------------------------------------------------------------------------------------
# Outcome
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one call of vLLM's selection did.

    ``kernel`` is the class name of the returned kernel instance, or ``None`` when the call
    raised; then ``error_type`` and ``error`` hold the exception's type name and message.
    ``logs`` holds ``(level, message)`` for every record at INFO or above that vLLM's loggers
    emitted during the call; ``warnings`` the Python warnings emitted during the call when one
    of vLLM's deprecated selection variables is set (vLLM warns about those through
    ``warnings.warn``), as ``(category, message)``.
    """

    kernel: str | None
    error_type: str | None = None
    error: str | None = None
    logs: tuple[tuple[str, str], ...] = ()
    warnings: tuple[tuple[str, str], ...] = ()
    #: the module of the innermost vLLM frame the exception was raised in
    #: (``vllm.envs``: an environment value was refused while it was read)
    raised_in: str | None = None

    @property
    def ok(self) -> bool:
        return self.kernel is not None

    def same_choice(self, other: Outcome) -> bool:
        """Whether both picked the same kernel or failed with the same error."""
        return (self.kernel, self.error_type, self.error) == (
            other.kernel,
            other.error_type,
            other.error,
        )

    def summary(self) -> str:
        if self.kernel is not None:
            return self.kernel
        first = (self.error or "").splitlines()[0] if self.error else ""
        return f"{self.error_type}: {first}"


# --------------------------------------------------------------------------------------------
# Mutants
# --------------------------------------------------------------------------------------------


class MutantShapeError(ValueError):
    """The installed selection function does not have the shape a mutant rewrites."""


MUTANTS = {
    "vllm-39129": (
        "vLLM PR #39129's regression: init_nvfp4_linear_kernel with the hunk of PR #39820 "
        "reversed (the VLLM_BATCH_INVARIANT branch removed, the next elif made an if)"
    ),
}


def _is_batch_invariant_test(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "VLLM_BATCH_INVARIANT"
        and isinstance(node.value, ast.Name)
        and node.value.id == "envs"
    )


def reverse_39820(func: types.FunctionType) -> types.FunctionType:
    """Rebuild ``func`` from its source without its ``if envs.VLLM_BATCH_INVARIANT:`` branch.

    The function body must hold exactly one top-level ``if envs.VLLM_BATCH_INVARIANT:``
    statement, followed by an ``elif``; that ``elif`` becomes the statement. The result is
    compiled against the source file's name and line numbers and bound to the original module's
    globals (the module itself is not modified). Raises :class:`MutantShapeError` otherwise.
    """
    filename = inspect.getsourcefile(func) or "<unknown>"
    try:
        source = inspect.getsource(func)
    except OSError as exc:
        raise MutantShapeError(f"cannot read the source of {func.__qualname__}: {exc}") from exc
    tree = ast.parse(source)
    fdef = tree.body[0]
    if not isinstance(fdef, ast.FunctionDef) or fdef.name != func.__name__:
        raise MutantShapeError(f"{filename}: the source of {func.__name__} is not a plain def")
    hits = [
        index
        for index, stmt in enumerate(fdef.body)
        if isinstance(stmt, ast.If) and _is_batch_invariant_test(stmt.test)
    ]
    where = f"{filename}:{func.__code__.co_firstlineno}"
    if len(hits) != 1:
        raise MutantShapeError(
            f"{where}: {func.__name__} has {len(hits)} top-level "
            "'if envs.VLLM_BATCH_INVARIANT:' statements; the vllm-39129 mutant needs exactly one "
            "(a release without the batch-invariant branch has nothing to remove)"
        )
    branch = fdef.body[hits[0]]
    assert isinstance(branch, ast.If)
    if len(branch.orelse) != 1 or not isinstance(branch.orelse[0], ast.If):
        raise MutantShapeError(
            f"{where}: the VLLM_BATCH_INVARIANT branch of {func.__name__} at line "
            f"{func.__code__.co_firstlineno + branch.lineno - 1} is not followed by an elif"
        )
    fdef.body[hits[0]] = branch.orelse[0]
    ast.increment_lineno(tree, func.__code__.co_firstlineno - 1)
    module_code = compile(tree, filename, "exec")
    code = next(
        const
        for const in module_code.co_consts
        if isinstance(const, types.CodeType) and const.co_name == func.__name__
    )
    mutant = types.FunctionType(
        code, func.__globals__, func.__name__, func.__defaults__, func.__closure__
    )
    mutant.__kwdefaults__ = func.__kwdefaults__
    mutant.__qualname__ = func.__qualname__
    mutant.__module__ = func.__module__
    mutant.__doc__ = func.__doc__
    return mutant


# --------------------------------------------------------------------------------------------
# Log capture
# --------------------------------------------------------------------------------------------


class _LogCapture(logging.Handler):
    """Collects records from the ``vllm`` logger while a selection runs; idle otherwise."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[str, str]] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.lines is not None:
            self.lines.append((record.levelname, record.getMessage()))


# --------------------------------------------------------------------------------------------
# The runtime
# --------------------------------------------------------------------------------------------

_PLATFORM: typing.Any = None
"""The fake platform installed into this process's vLLM (one per process)."""


def _make_platform(platform_mod: types.ModuleType) -> typing.Any:
    """An instance of a fresh subclass of vLLM's ``Platform`` whose device kind and capability
    are class attributes (vLLM's capability helpers are classmethods that read them)."""
    from vllm.platforms.interface import DeviceCapability, Platform, PlatformEnum

    class FakeGpuPlatform(Platform):
        """vLLM platform for selection checks: kind and capability set per cell."""

        _enum = PlatformEnum.UNSPECIFIED
        device_name = "fake"
        device_type = "cpu"
        dispatch_key = "CPU"
        _capability: DeviceCapability | None = None

        @classmethod
        def get_device_capability(cls, device_id: int = 0) -> DeviceCapability | None:
            return cls._capability

        @classmethod
        def get_device_name(cls, device_id: int = 0) -> str:
            return cls.device_name

    FakeGpuPlatform.__module__ = __name__
    return FakeGpuPlatform()


class VllmRuntime:
    """The installed vLLM's NVFP4 selection, ready to be called under fake hardware.

    Build it with :meth:`load`. Attributes: ``version`` (``vllm.__version__``), ``line`` (the
    :class:`ReleaseLine` name: ``"0.20"``, ``"0.22"`` or ``"0.33"``), ``kernel_classes`` (class
    name -> class, every concrete NVFP4 linear kernel the release defines), ``selection_signature``
    (``"()"`` or ``"(use_a16: bool = False)"``), ``accepts_use_a16``, ``selection_variables``
    (the ``envs.VLLM_*`` names the function reads), ``deprecated_variables`` (those of them
    vLLM's ``envs`` reads through its ``deprecated_env`` wrapper), ``has_linear_backend`` and
    ``linear_backends`` (the values vLLM's ``KernelConfig.linear_backend`` accepts),
    ``linear_backend_kernels`` (value -> NVFP4 class names it keeps), ``gemm_backend_kernels``
    (``VLLM_NVFP4_GEMM_BACKEND`` value -> class name, 0.20-0.23), ``mutant`` and ``rule`` (the
    :class:`CompiledRule` of this line).
    """

    def __init__(
        self,
        *,
        vllm_module: types.ModuleType,
        kernels_module: types.ModuleType,
        envs_module: types.ModuleType,
        platform: typing.Any,
        mutant: str | None,
    ) -> None:
        from vllm.platforms.interface import DeviceCapability, PlatformEnum

        self._vllm = vllm_module
        self._kernels = kernels_module
        self._envs = envs_module
        self._platform = platform
        self._platform_cls = type(platform)
        self._capability_cls = DeviceCapability
        self._device_enums = {
            "cuda": PlatformEnum.CUDA,
            "rocm": PlatformEnum.ROCM,
            "cpu": PlatformEnum.CPU,
        }
        self.version: str = str(vllm_module.__version__)
        self.line: str = release_line(self.version).name
        self.rule: CompiledRule = CUTLASS_FP4_RULES[self.line]

        real = getattr(kernels_module, SELECTION_FUNCTION)
        self._real_select: Callable[..., typing.Any] = real
        self.mutant = mutant
        self._select_fn = reverse_39820(real) if mutant == "vllm-39129" else real

        params = inspect.signature(real).parameters
        self.selection_signature: str = str(inspect.signature(real)).split(" ->")[0]
        self.accepts_use_a16: bool = "use_a16" in params
        source = inspect.getsource(real)
        self.selection_variables: tuple[str, ...] = tuple(
            dict.fromkeys(re.findall(r"\benvs\.(VLLM_[A-Z0-9_]+)", source))
        )
        self._clear_variables = tuple(
            dict.fromkeys(self.selection_variables + HISTORICAL_SELECTION_VARIABLES)
        )
        getters = getattr(envs_module, "environment_variables", {})
        self.deprecated_variables: tuple[str, ...] = tuple(
            name
            for name in self.selection_variables
            if getattr(getters.get(name), "__qualname__", "").startswith("deprecated_env")
        )

        self.kernel_classes: dict[str, type] = self._find_kernel_classes()
        self.has_linear_backend: bool = hasattr(kernels_module, "_get_linear_backend")
        self.linear_backends: tuple[str, ...] = self._read_linear_backends()
        self.linear_backend_kernels: dict[str, tuple[str, ...]] = self._read_backend_map()
        gemm_map = getattr(kernels_module, "_NVFP4_BACKEND_TO_KERNEL", None) or {}
        self.gemm_backend_kernels: dict[str, str] = {
            name: cls.__name__ for name, cls in gemm_map.items()
        }

        #: the optional packages whose probes :meth:`real_support` fakes
        self.probe_packages: frozenset[str] = frozenset(p.package for p in PACKAGE_PROBES)
        self._once_caches = [
            fn
            for name in ("_print_debug_once", "_print_info_once", "_print_warning_once",
                         "_print_error_once")
            if (fn := getattr(sys.modules.get("vllm.logger"), name, None)) is not None
            and hasattr(fn, "cache_clear")
        ]
        self._capture = _install_log_capture()
        self._probe_sites: list[tuple[types.ModuleType, str, PackageProbe | None]] = []
        self._probe_originals: dict[int, tuple[object, PackageProbe | None]] = {}
        self._scanned_modules = -1
        self._find_probe_originals()

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def load(cls, mutant: str | None = None) -> VllmRuntime:
        """Install the fake platform, import vLLM's kernels package and read what it holds.

        ``mutant``: ``None`` for the release's own function, or a key of :data:`MUTANTS`.
        Raises :class:`UnsupportedReleaseError` for a vLLM outside :data:`RELEASE_LINES`,
        :class:`MutantShapeError` when the mutant cannot be built from this release's source,
        and ``RuntimeError`` when vLLM's platform was resolved before the fake could be put in
        place (load the runtime before anything else imports vLLM's kernels).
        """
        global _PLATFORM
        if mutant is not None and mutant not in MUTANTS:
            raise ValueError(f"unknown mutant {mutant!r}; known: {', '.join(MUTANTS)}")
        import vllm
        import vllm.envs as envs
        import vllm.platforms as platforms

        release_line(str(vllm.__version__))  # refuse an uncovered release before importing
        if _PLATFORM is None:
            resolved = platforms._current_platform
            if resolved is not None or KERNELS_MODULE in sys.modules:
                raise RuntimeError(
                    f"vLLM's platform was resolved ({type(resolved).__name__}) or {KERNELS_MODULE} "
                    "was imported before VllmRuntime.load(); modules that bound the real "
                    "platform would not see the fake one. Load the runtime first in the process."
                )
            _PLATFORM = _make_platform(platforms)
            platforms._current_platform = _PLATFORM
        elif platforms._current_platform is not _PLATFORM:
            raise RuntimeError("vLLM's current platform was replaced after VllmRuntime.load()")
        import importlib

        kernels = importlib.import_module(KERNELS_MODULE)
        if getattr(kernels, "current_platform", None) is not _PLATFORM:
            raise RuntimeError(f"{KERNELS_MODULE} did not bind the fake platform")
        return cls(
            vllm_module=vllm,
            kernels_module=kernels,
            envs_module=envs,
            platform=_PLATFORM,
            mutant=mutant,
        )

    def _find_kernel_classes(self) -> dict[str, type]:
        base = self._kernels.NvFp4LinearKernel
        found: dict[str, type] = {}

        def consider(obj: object) -> None:
            if (
                isinstance(obj, type)
                and issubclass(obj, base)
                and obj is not base
                and not inspect.isabstract(obj)
            ):
                found.setdefault(obj.__name__, obj)

        for obj in vars(self._kernels).values():
            consider(obj)
        for kernels in getattr(self._kernels, "_POSSIBLE_NVFP4_KERNELS", {}).values():
            for obj in kernels:
                consider(obj)
        prefix = KERNELS_MODULE + "."
        for name, module in list(sys.modules.items()):
            if name.startswith(prefix) and module is not None:
                for obj in vars(module).values():
                    consider(obj)
        return found

    def _read_linear_backends(self) -> tuple[str, ...]:
        if not self.has_linear_backend:
            return ()
        import importlib

        kernel_config = importlib.import_module("vllm.config.kernel")
        alias = getattr(kernel_config, "LinearBackend", None)
        values = typing.get_args(alias) if alias is not None else ()
        if not values:
            raise RuntimeError("cannot read the --linear-backend values from vllm.config.kernel")
        return tuple(str(v) for v in values)

    def _read_backend_map(self) -> dict[str, tuple[str, ...]]:
        table = getattr(self._kernels, "_LINEAR_BACKEND_KERNEL_MAP", None) or {}
        nvfp4 = set(self.kernel_classes.values())
        return {
            backend: tuple(sorted(cls.__name__ for cls in classes if cls in nvfp4))
            for backend, classes in table.items()
        }

    # -- facts --------------------------------------------------------------------------------

    def auto_order(self, device: str, capability: tuple[int, int] | None = None) -> tuple[str, ...]:
        """The release's automatic candidate list for ``device``, as class names.

        Read from vLLM's ``_POSSIBLE_NVFP4_KERNELS`` (no entry: an empty list, as vLLM's own
        lookup gives). With ``capability`` and a release that reorders by device (0.32+:
        ``prioritize_humming``), vLLM's reordering for that capability is applied.
        """
        self._check_device(device)
        table = self._kernels._POSSIBLE_NVFP4_KERNELS
        kernels = list(table.get(self._device_enums[device], []))
        reorder = getattr(self._kernels, "prioritize_humming", None)
        if capability is not None and reorder is not None:
            major, minor = self._check_capability(capability)
            kernels = list(reorder(kernels, major * 10 + minor))
        return tuple(cls.__name__ for cls in kernels)

    def describe(self) -> dict[str, typing.Any]:
        """Everything read from the installed release, as plain data."""
        return {
            "version": self.version,
            "line": self.line,
            "mutant": self.mutant,
            "selection_signature": self.selection_signature,
            "selection_variables": list(self.selection_variables),
            "kernel_classes": {
                name: f"{cls.__module__}.{cls.__qualname__}"
                for name, cls in self.kernel_classes.items()
            },
            "auto_order": {device: list(self.auto_order(device)) for device in DEVICE_TYPES},
            "has_linear_backend": self.has_linear_backend,
            "linear_backends": list(self.linear_backends),
            "linear_backend_kernels": {
                k: list(v) for k, v in self.linear_backend_kernels.items() if v
            },
            "gemm_backend_kernels": dict(self.gemm_backend_kernels),
            "package_probes": sorted(
                {f"{p.package}:{p.name}" for _site, _name, p in self._sites() if p is not None}
            ),
            "cutlass_fp4_rule": {
                "source": self.rule.source,
                "tag": self.rule.tag,
                "min_cuda_runtime": self.rule.min_cuda_runtime,
                "ranges": [list(r) for r in self.rule.ranges],
            },
        }

    # -- per-cell controls ----------------------------------------------------------------------

    @property
    def selection_function(self) -> Callable[..., typing.Any]:
        """The release's own ``init_nvfp4_linear_kernel``, as imported (never the mutant)."""
        return self._real_select

    @contextlib.contextmanager
    def selection_replaced(self, func: Callable[..., typing.Any]) -> Iterator[None]:
        """Inside the block :meth:`select` calls ``func`` instead of the selection function.

        ``func`` takes the selection function's arguments: a changed copy of it, such as the
        vLLM mutation lane's mutants (``mutation/vllm_lane.py``), compiled against the
        imported module's globals. The module itself is not modified.
        """
        saved = self._select_fn
        self._select_fn = func
        try:
            yield
        finally:
            self._select_fn = saved

    def set_platform(self, device_type: str, capability: tuple[int, int] | None) -> None:
        """Make the fake platform a ``device_type`` device with ``capability`` (``(major,
        minor)``; ``None`` for none, required for ``"cpu"``)."""
        self._check_device(device_type)
        cls = self._platform_cls
        if capability is None:
            cls._capability = None
        else:
            if device_type == "cpu":
                raise ValueError("a cpu platform has no compute capability; pass None")
            cls._capability = self._capability_cls(*self._check_capability(capability))
        cls._enum = self._device_enums[device_type]
        cls.device_type = "cpu" if device_type == "cpu" else "cuda"
        cls.device_name = device_type
        cls.dispatch_key = "CPU" if device_type == "cpu" else "CUDA"

    @contextlib.contextmanager
    def env(self, mapping: Mapping[str, str | None]) -> Iterator[None]:
        """Run the block with exactly ``mapping``'s vLLM variables set.

        Every NVFP4 selection variable not in ``mapping`` is removed from ``os.environ``
        (a value of ``None`` also means unset); vLLM's envs cache is disabled so each read goes
        to ``os.environ``. Everything is restored afterwards, the cache state included.
        """
        for key, value in mapping.items():
            if not key.startswith("VLLM_"):
                raise ValueError(f"env: {key!r} is not a vLLM variable (VLLM_*)")
            if value is not None and not isinstance(value, str):
                raise ValueError(f"env: {key}={value!r}: values are strings (or None for unset)")
        keys = tuple(dict.fromkeys(self._clear_variables + tuple(mapping)))
        environ = os.environ
        saved = {key: environ.get(key) for key in keys}
        cache_was_on = self._envs_cache_enabled()
        try:
            for key in keys:
                value = mapping.get(key)
                if value is None:
                    environ.pop(key, None)
                else:
                    environ[key] = value
            if cache_was_on:
                self._envs.disable_envs_cache()
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    environ.pop(key, None)
                else:
                    environ[key] = old
            if cache_was_on and not self._envs_cache_enabled():
                self._envs.enable_envs_cache()

    @contextlib.contextmanager
    def mock_support(self, verdicts: Mapping[str, tuple[bool, str | None]]) -> Iterator[None]:
        """Replace ``is_supported`` on the named kernel classes with a fixed ``(ok, reason)``.

        A subclass that does not define its own ``is_supported`` inherits the replacement, as
        it inherits the real one in vLLM. Restored afterwards.
        """
        patches = []
        for name, verdict in verdicts.items():
            cls = self._kernel_class(name)
            if (
                not isinstance(verdict, tuple)
                or len(verdict) != 2
                or not isinstance(verdict[0], bool)
                or not (verdict[1] is None or isinstance(verdict[1], str))
            ):
                raise ValueError(
                    f"mock_support: {name}: expected (bool, str | None), got {verdict!r}"
                )
            patches.append((cls, cls.__dict__.get("is_supported"), verdict))
        try:
            for cls, _old, verdict in patches:
                cls.is_supported = classmethod(_fixed_verdict(verdict))
            yield
        finally:
            for cls, old, _verdict in reversed(patches):
                if old is None:
                    delattr(cls, "is_supported")
                else:
                    cls.is_supported = old

    @contextlib.contextmanager
    def real_support(
        self,
        packages: set[str] | frozenset[str],
        capability: tuple[int, int] | None = None,
        *,
        cuda_runtime: tuple[int, int] = (12, 8),
        torch_fp4_dtype: bool = True,
    ) -> Iterator[None]:
        """Keep vLLM's real ``is_supported`` code; fake only its leaf probes.

        ``packages``: the optional packages the fake machine has (names of
        :data:`PACKAGE_PROBES`: ``flashinfer``, ``fbgemm_gpu``, ``humming``, ``b12x``); each
        probe of this release answers from that set. The compiled
        ``cutlass_scaled_mm_supports_fp4`` answers from :attr:`rule` with ``cuda_runtime`` as the
        CUDA runtime version (``(12, 8)``: the oldest the PyPI wheels' rule accepts).
        ``capability``, when given, is the platform's capability for the block (the device kind
        stays), restored afterwards. ``torch_fp4_dtype=False`` hides ``torch.float4_e2m1fn_x2``
        for a machine whose torch predates it (0.24+'s TorchNvFp4LinearKernel asks ``hasattr``).
        Everything is restored afterwards.
        """
        known = {probe.package for probe in PACKAGE_PROBES}
        unknown = set(packages) - known
        if unknown:
            raise ValueError(
                f"real_support: unknown package(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        runtime = cuda_runtime[0] * 1000 + cuda_runtime[1] * 10
        rule = self.rule

        def compiled_probe(cuda_device_capability: int) -> bool:
            return rule.supports(int(cuda_device_capability), runtime)

        fakes: dict[str, object] = {}
        for probe in PACKAGE_PROBES:
            present = probe.package in packages
            if probe.returns == "module":
                stand_in = _package_stand_in(probe) if present else None
                fakes[probe.name] = _constant(stand_in)
            else:
                fakes[probe.name] = _constant(present)
        import torch  # already imported by vLLM

        patched = []
        saved_capability = self._platform_cls._capability
        try:
            if not torch_fp4_dtype and hasattr(torch, _FP4_DTYPE):
                patched.append((torch, _FP4_DTYPE, getattr(torch, _FP4_DTYPE)))
                delattr(torch, _FP4_DTYPE)
            if capability is not None:
                if self._platform_cls._enum == self._device_enums["cpu"]:
                    raise ValueError("real_support: a cpu platform has no compute capability")
                self._platform_cls._capability = self._capability_cls(
                    *self._check_capability(capability)
                )
            for module, attr, probe in self._sites():
                replacement = compiled_probe if probe is None else fakes[probe.name]
                patched.append((module, attr, getattr(module, attr)))
                setattr(module, attr, replacement)
            yield
        finally:
            for module, attr, old in reversed(patched):
                setattr(module, attr, old)
            self._platform_cls._capability = saved_capability

    # -- the call -----------------------------------------------------------------------------

    def select(
        self, use_a16: bool = False, linear_backend: str | None = None, *, logs: bool = True
    ) -> Outcome:
        """Call the release's ``init_nvfp4_linear_kernel`` (or the mutant) once.

        ``use_a16=True`` is passed as such (0.23+; on an older release it is a
        ``ValueError``); for ``False`` the function is called without arguments, as vLLM's
        Quark W4A4 scheme calls it, so the parameter's default is what decides. ``linear_backend`` is what ``--linear-backend`` would be
        (0.22+; one of :attr:`linear_backends`); ``None`` leaves vLLM's own
        ``_get_linear_backend`` in place, which answers ``"auto"`` outside an engine.
        ``logs=False`` skips clearing vLLM's once-only log caches and capturing the records
        (``Outcome.logs`` is then empty): the choice is the same, the call about three times
        cheaper, since creating log records is most of its cost.
        """
        if use_a16 and not self.accepts_use_a16:
            raise ValueError(
                f"vLLM {self.version}: {SELECTION_FUNCTION}{self.selection_signature} has no "
                "use_a16 parameter"
            )
        kernels = self._kernels
        old_backend = None
        if linear_backend is not None:
            if not self.has_linear_backend:
                raise ValueError(f"vLLM {self.version} has no --linear-backend")
            if linear_backend not in self.linear_backends:
                raise ValueError(
                    f"--linear-backend={linear_backend!r} is not valid in vLLM {self.version}; "
                    f"valid: {', '.join(self.linear_backends)}"
                )
            old_backend = kernels._get_linear_backend
            kernels._get_linear_backend = _constant(linear_backend)
        lines: list[tuple[str, str]] = []
        capture = self._capture
        if logs:
            for cache in self._once_caches:
                cache.cache_clear()
            capture.lines = lines
        # vLLM's deprecated variables warn through warnings.warn when they are set; recording
        # costs several microseconds, so it is armed only when one of them is in the
        # environment (other warnings take Python's normal route).
        environ = os.environ
        record = any(name in environ for name in self.deprecated_variables)
        caught: list[warnings.WarningMessage] = []
        outcome_error: Exception | None = None
        kernel = None
        try:
            with warnings.catch_warnings(record=True) if record else _NO_RECORDING as recorded:
                if record:
                    warnings.simplefilter("always")
                try:
                    if use_a16:
                        kernel = self._select_fn(use_a16=True)
                    else:  # as vLLM's Quark W4A4 scheme calls it: the default counts
                        kernel = self._select_fn()
                except Exception as exc:  # the outcome of the cell, not a failure here
                    outcome_error = exc
                if recorded is not None:
                    caught = recorded
        finally:
            capture.lines = None
            if old_backend is not None:
                kernels._get_linear_backend = old_backend
        caught_pairs = tuple((w.category.__name__, str(w.message)) for w in caught)
        if outcome_error is not None:
            return Outcome(
                kernel=None,
                error_type=type(outcome_error).__name__,
                error=str(outcome_error),
                raised_in=_raising_module(outcome_error),
                logs=tuple(lines),
                warnings=caught_pairs,
            )
        return Outcome(kernel=type(kernel).__name__, logs=tuple(lines), warnings=caught_pairs)

    # -- helpers ------------------------------------------------------------------------------

    def _kernel_class(self, name: str) -> type:
        try:
            return self.kernel_classes[name]
        except KeyError:
            raise ValueError(
                f"vLLM {self.version} has no NVFP4 kernel class {name!r}; "
                f"known: {', '.join(sorted(self.kernel_classes))}"
            ) from None

    def _check_device(self, device: str) -> None:
        if device not in DEVICE_TYPES:
            raise ValueError(f"unknown device type {device!r}; expected one of {DEVICE_TYPES}")

    @staticmethod
    def _check_capability(capability: tuple[int, int]) -> tuple[int, int]:
        if (
            not isinstance(capability, tuple)
            or len(capability) != 2
            or not all(isinstance(part, int) for part in capability)
            or not 0 <= capability[1] < 10
            or capability[0] < 0
        ):
            raise ValueError(
                f"capability must be (major, minor) with 0 <= minor < 10, got {capability!r}"
            )
        return capability

    def _envs_cache_enabled(self) -> bool:
        check = getattr(self._envs, "_is_envs_cache_enabled", None)
        return bool(check()) if check is not None else False

    def _find_probe_originals(self) -> None:
        import importlib

        module_name, attr = _COMPILED_PROBE
        originals: dict[int, tuple[object, PackageProbe | None]] = {}
        compiled = getattr(importlib.import_module(module_name), attr)
        originals[id(compiled)] = (compiled, None)
        for probe in PACKAGE_PROBES:
            module = sys.modules.get(probe.module)
            if module is None:
                try:
                    module = importlib.import_module(probe.module)
                except ImportError:
                    continue
            fn = getattr(module, probe.name, None)
            if fn is not None:
                originals[id(fn)] = (fn, probe)
        self._probe_originals = originals

    def _sites(self) -> list[tuple[types.ModuleType, str, PackageProbe | None]]:
        """Every ``(module, attribute)`` of a loaded ``vllm`` module bound to a probe; rescanned
        only when modules were imported since the last scan."""
        if len(sys.modules) == self._scanned_modules:
            return self._probe_sites
        originals = self._probe_originals
        sites = []
        for name, module in list(sys.modules.items()):
            if module is None or not (name == "vllm" or name.startswith("vllm.")):
                continue
            try:
                items = list(vars(module).items())
            except TypeError:
                continue
            for attr, value in items:
                entry = originals.get(id(value))
                if entry is not None and entry[0] is value:
                    sites.append((module, attr, entry[1]))
        self._probe_sites = sites
        self._scanned_modules = len(sys.modules)
        return sites


_NO_RECORDING = contextlib.nullcontext(None)


def _raising_module(exc: BaseException) -> str | None:
    """The module of the innermost ``vllm`` frame in ``exc``'s traceback."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        if name == "vllm" or name.startswith("vllm."):
            found = name
        tb = tb.tb_next
    return found


def _fixed_verdict(verdict: tuple[bool, str | None]) -> Callable[..., tuple[bool, str | None]]:
    def is_supported(cls: type, compute_capability: int | None = None) -> tuple[bool, str | None]:
        return verdict

    return is_supported


def _constant(value: object) -> Callable[..., object]:
    def probe(*_args: object, **_kwargs: object) -> object:
        return value

    return probe


def _package_stand_in(probe: PackageProbe) -> types.SimpleNamespace:
    """What a module accessor returns when the fake machine has the package."""
    return types.SimpleNamespace(
        __name__=f"{probe.package} (faked by {__name__})", is_supported=lambda: True
    )


def _install_log_capture() -> _LogCapture:
    """Attach one capture handler to the ``vllm`` logger (once per process).

    The logger's level is lowered to INFO so that info records reach the capture handler;
    vLLM's own handler keeps its level (``VLLM_LOGGING_LEVEL``), so nothing more is printed.
    """
    logger = logging.getLogger("vllm")
    for handler in logger.handlers:
        if isinstance(handler, _LogCapture):
            return handler
    capture = _LogCapture()
    logger.addHandler(capture)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        for handler in logger.handlers:
            if handler is not capture and handler.level == logging.NOTSET:
                handler.setLevel(logger.getEffectiveLevel())
        logger.setLevel(logging.INFO)
    return capture


# --------------------------------------------------------------------------------------------
# Self-test
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Machine:
    name: str
    device: str
    capability: tuple[int, int] | None
    packages: frozenset[str] = field(default_factory=frozenset)


_SELFTEST_MACHINES = (
    _Machine("b200", "cuda", (10, 0), frozenset({"flashinfer"})),
    _Machine("h100", "cuda", (9, 0), frozenset({"flashinfer"})),
    _Machine("rtx5090", "cuda", (12, 0), frozenset({"flashinfer"})),
    _Machine("v100", "cuda", (7, 0), frozenset({"flashinfer"})),
)


def _timed_select(
    runtime: VllmRuntime, machine: _Machine, env: Mapping[str, str], repeat: int
) -> tuple[Outcome, float, float]:
    """The outcome of one cell and the median time of a call, with and without log capture."""
    runtime.set_platform(machine.device, machine.capability)
    with runtime.env(env), runtime.real_support(machine.packages):
        outcome = runtime.select()
        medians = []
        for logs in (True, False):
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                again = runtime.select(logs=logs)
                times.append(time.perf_counter() - start)
            if not again.same_choice(outcome):
                raise AssertionError(f"{machine.name} {env}: a repeated call chose differently")
            medians.append(statistics.median(times) * 1e6)
    return outcome, medians[0], medians[1]


def selftest(repeat: int = 200, out: typing.TextIO = sys.stdout) -> int:
    """Load the installed vLLM, print what it holds and run a few real cells with and without
    the vllm-39129 mutant. Returns 0 when every check holds, 1 otherwise."""

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    failures: list[str] = []
    start = time.perf_counter()
    runtime = VllmRuntime.load()
    load_s = time.perf_counter() - start
    mutant = VllmRuntime.load(mutant="vllm-39129")
    say(f"vLLM {runtime.version}  (release line {runtime.line}; import {load_s:.1f} s)")
    say(f"  {SELECTION_FUNCTION}{runtime.selection_signature}")
    say(f"  reads: {', '.join(runtime.selection_variables)}")
    if runtime.has_linear_backend:
        say(f"  --linear-backend: {', '.join(runtime.linear_backends)}")
    else:
        say("  --linear-backend: absent")
    if runtime.gemm_backend_kernels:
        pairs = ", ".join(f"{k}={v}" for k, v in runtime.gemm_backend_kernels.items())
        say(f"  VLLM_NVFP4_GEMM_BACKEND: {pairs}")
    say(f"  NVFP4 kernel classes ({len(runtime.kernel_classes)}): "
        f"{', '.join(runtime.kernel_classes)}")
    for device in DEVICE_TYPES:
        order = runtime.auto_order(device)
        say(f"  auto order {device}: {', '.join(order) if order else '(none)'}")
    say(f"  cutlass_scaled_mm_supports_fp4: CUDA runtime >= {runtime.rule.min_cuda_runtime}, "
        f"capability in {[(lo, hi) for lo, hi, _m in runtime.rule.ranges]} "
        f"({runtime.rule.source} @ {runtime.rule.tag})")

    if "EmulationNvFp4LinearKernel" not in runtime.kernel_classes:
        failures.append("no EmulationNvFp4LinearKernel among the kernel classes")
    try:  # a function without the batch-invariant branch must be refused, not mutated
        reverse_39820(runtime._kernels.register_linear_kernel)
    except MutantShapeError as exc:
        say(f"  mutant refuses a function without the branch: {str(exc).split(': ', 1)[1]}")
    else:
        failures.append("reverse_39820 accepted register_linear_kernel (no BI branch)")

    envs: list[dict[str, str]] = [{}, {"VLLM_BATCH_INVARIANT": "1"}]
    if "VLLM_USE_FBGEMM" in runtime.selection_variables:
        envs.append({"VLLM_USE_FBGEMM": "1"})
    before = dict(os.environ)
    say()
    say("us/call: median of one selection call, with the log capture / without (logs=False)")
    say(f"{'machine':9} {'env':24} {'vLLM':34} {'vllm-39129 mutant':34} {'us/call':>13}")
    for machine in _SELFTEST_MACHINES:
        for env in envs:
            real, real_us, real_quiet_us = _timed_select(runtime, machine, env, repeat)
            mut, _mut_us, _mut_quiet_us = _timed_select(mutant, machine, env, repeat)
            label = ",".join(f"{k}={v}" for k, v in env.items()) or "(default)"
            say(f"{machine.name:9} {label:24} {real.summary()[:34]:34} "
                f"{mut.summary()[:34]:34} {real_us:6.1f} /{real_quiet_us:5.1f}")
            bi = env.get("VLLM_BATCH_INVARIANT") == "1"
            cell = f"{machine.name} {label}"
            if bi and real.same_choice(mut):
                failures.append(f"{cell}: the mutant picks the same as vLLM ({real.summary()})")
            if not bi and not real.same_choice(mut):
                failures.append(
                    f"{cell}: the mutant differs without VLLM_BATCH_INVARIANT "
                    f"({real.summary()} vs {mut.summary()})"
                )
            mentions = any("VLLM_BATCH_INVARIANT" in msg for _lvl, msg in real.logs)
            if bi and not mentions:
                failures.append(f"{cell}: vLLM logged nothing about VLLM_BATCH_INVARIANT")
            if any("VLLM_BATCH_INVARIANT" in msg for _lvl, msg in mut.logs):
                failures.append(f"{cell}: the mutant still logs about VLLM_BATCH_INVARIANT")
    if dict(os.environ) != before:
        failures.append("os.environ changed across the cells")

    b200 = _SELFTEST_MACHINES[0]
    runtime.set_platform(b200.device, b200.capability)
    with runtime.env({"VLLM_BATCH_INVARIANT": "1"}), runtime.real_support(b200.packages):
        shown = runtime.select()
        bare = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            runtime._real_select()
            bare.append(time.perf_counter() - t0)
    say(f"\nlog lines of b200 VLLM_BATCH_INVARIANT=1 (vLLM {runtime.version}):")
    for level, message in shown.logs:
        say(f"  {level}: {message}")
    say(f"vLLM's function called directly (no runtime, once-only caches warm): "
        f"{statistics.median(bare) * 1e6:.1f} us/call")
    for name in runtime.deprecated_variables:
        value = "emulation" if name == "VLLM_NVFP4_GEMM_BACKEND" else "1"
        with runtime.env({name: value}), runtime.real_support(b200.packages):
            warned = runtime.select()
        say(f"b200 {name}={value} -> {warned.summary()}; warnings: "
            f"{'; '.join(f'{c}: {m}' for c, m in warned.warnings) or '(none)'}")
        if not warned.warnings:
            failures.append(f"{name} is deprecated in envs.py but no warning was captured")

    # Mocked support: only Emulation supported -> the selection can only pick Emulation.
    runtime.set_platform("cuda", (10, 0))
    verdicts: dict[str, tuple[bool, str | None]] = {
        name: (name == "EmulationNvFp4LinearKernel", None if name.startswith("Emul") else "mocked")
        for name in runtime.kernel_classes
    }
    originals = {
        name: vars(cls).get("is_supported") for name, cls in runtime.kernel_classes.items()
    }
    with runtime.env({}), runtime.mock_support(verdicts):
        mocked = runtime.select()
    say(f"\nmocked: every class unsupported but Emulation, sm100 -> {mocked.summary()}")
    if mocked.kernel != "EmulationNvFp4LinearKernel":
        failures.append(f"mocked support: expected Emulation, the only supported class, got "
                        f"{mocked.summary()}")
    for name, cls in runtime.kernel_classes.items():
        if vars(cls).get("is_supported") is not originals[name]:
            failures.append(f"mock_support did not restore {name}.is_supported")

    if "emulation" in runtime.linear_backends:
        runtime.set_platform("cuda", (10, 0))
        with runtime.env({}), runtime.real_support({"flashinfer"}):
            forced = runtime.select(linear_backend="emulation")
        allowed = runtime.linear_backend_kernels.get("emulation", ())
        say(f"--linear-backend=emulation, sm100 -> {forced.summary()} (map: {', '.join(allowed)})")
        if forced.kernel not in allowed:
            failures.append(f"--linear-backend=emulation picked {forced.summary()}")

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
        prog="python -m harness.targets.vllm_runtime",
        description="Drive the installed vLLM's NVFP4 kernel selection on a CPU.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--selftest", action="store_true", help="run a few real cells")
    group.add_argument("--describe", action="store_true", help="print the release's facts (JSON)")
    parser.add_argument("--repeat", type=int, default=200, help="timed calls per cell")
    args = parser.parse_args(argv)
    try:
        if args.describe:
            print(json.dumps(VllmRuntime.load().describe(), indent=2))
            return 0
        return selftest(repeat=args.repeat)
    except ModuleNotFoundError as exc:
        if exc.name != "vllm":
            raise
        print("error: vLLM is not installed in this environment (try tox -e vllm-0.20)",
              file=sys.stderr)
        return 2
    except (UnsupportedReleaseError, MutantShapeError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
