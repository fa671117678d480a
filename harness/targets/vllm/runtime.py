"""Drive the installed vLLM's own NVFP4 linear-kernel selection on a CPU with a fake GPU.

vLLM chooses its NVFP4 GEMM backend in the selection function a release
line's facts name (``init_nvfp4_linear_kernel``). :meth:`VllmRuntime.load`
imports it unmodified from the installed ``vllm`` package (or a source tree
put first on the path) on a fake platform (:mod:`harness.targets.vllm.platform`),
and :meth:`VllmRuntime.select` calls it under a clean environment and faked
support probes, one cell at a time:

    rt = VllmRuntime.load(facts)               # once per process (seconds)
    rt.set_platform("cuda", (10, 0))           # a B200
    with rt.env({"VLLM_BATCH_INVARIANT": "1"}), rt.real_support({"flashinfer"}):
        outcome = rt.select()                  # tens of microseconds
    outcome.kernel                             # 'EmulationNvFp4LinearKernel' on 0.20.x

* **Inputs of the selection.** The function takes no layer description: it
  builds vLLM's ``NvFp4LinearLayerConfig()`` itself (an empty dataclass: all
  NVFP4 layers share one layout) and *returns an instance* of the chosen kernel
  class, whose ``__init__`` only re-asserts ``can_implement`` and
  ``is_supported``; no GPU and no weights are needed. The only argument is
  ``use_a16`` (weight-only checkpoints), where the signature has it. The engine
  option ``--linear-backend`` is read through a module-level reader, replaced
  for a cell that sets it.
* **Environment.** ``vllm.envs`` reads ``os.environ`` lazily unless its cache
  was enabled; :meth:`VllmRuntime.env` sets exactly the given variables,
  removes every other variable of the engine's vocabulary and disables the
  cache, so vLLM's own parsers and validators see each cell.
* **Support.** Either :meth:`VllmRuntime.mock_support` replaces ``is_supported``
  on named kernel classes (the precedence alone), or
  :meth:`VllmRuntime.real_support` keeps vLLM's real ``is_supported`` code and
  fakes only its leaf probes (:mod:`harness.targets.vllm.probes`).
* **Outcome.** :meth:`VllmRuntime.select` returns an
  :class:`~harness.targets.protocol.Outcome` (the backend id is the target's to
  fill in): the class name or the error, the log records vLLM emitted during
  the call (its once-only caches are cleared first; the records are kept from
  vLLM's own handlers, so nothing is printed) and the Python warnings it issued.

One vLLM per process: the kernels package can be imported once.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import os
import re
import sys
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping

from harness.targets.protocol import Outcome
from harness.targets.vllm import controls
from harness.targets.vllm import platform as fake_platform
from harness.targets.vllm.facts import EngineFacts, ReleaseFacts, engine_facts
from harness.targets.vllm.logs import install_log_capture
from harness.targets.vllm.probes import ProbeFaker

__all__ = ["ReleaseMismatch", "VllmRuntime"]


class ReleaseMismatch(Exception):
    """A release line's fact names something the installed release does not have.

    ``field`` is the fact's path under the matrix's ``target:`` section
    (``("release", "entry", "function")``), for a problem that names file, line and field.
    """

    def __init__(self, field: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.field = field


def _required(owner: typing.Any, name: str, field: tuple[str | int, ...]) -> typing.Any:
    try:
        return getattr(owner, name)
    except AttributeError:
        raise ReleaseMismatch(
            field, f"{getattr(owner, '__name__', owner)} has no {name}"
        ) from None


class VllmRuntime:
    """The installed vLLM's NVFP4 selection, ready to be called under fake hardware.

    Build it with :meth:`load`. Attributes: ``version`` (``vllm.__version__``),
    ``facts`` (the release line's), ``kernel_classes`` (class name -> class, every
    concrete NVFP4 kernel the release defines), ``selection_signature``,
    ``accepts_use_a16``, ``selection_variables`` (the ``envs.VLLM_*`` names the
    function reads), ``deprecated_variables`` (those vLLM's ``envs`` reads through
    its ``deprecated_env`` wrapper), ``has_linear_backend`` and ``linear_backends``
    (the values ``--linear-backend`` accepts), ``linear_backend_kernels`` (value ->
    NVFP4 class names it keeps), ``gemm_backend_kernels``
    (``VLLM_NVFP4_GEMM_BACKEND`` value -> class name, where the release has the map).
    """

    def __init__(self, facts: ReleaseFacts, engine: EngineFacts, platform: typing.Any,
                 kernels: typing.Any) -> None:
        import vllm
        import vllm.envs as envs

        self.facts = facts
        self.engine = engine
        self._kernels = kernels
        self._envs = envs
        self._platform = platform
        self.version: str = str(vllm.__version__)
        entry = facts.entry
        real = _required(kernels, entry.function, ("release", "entry", "function"))
        self._real_select: Callable[..., typing.Any] = real
        self._select_fn: Callable[..., typing.Any] = real
        self.selection_signature: str = str(inspect.signature(real)).split(" ->")[0]
        self.accepts_use_a16: bool = "use_a16" in inspect.signature(real).parameters
        source = inspect.getsource(real)
        self.selection_variables: tuple[str, ...] = tuple(
            dict.fromkeys(re.findall(r"\benvs\.(VLLM_[A-Z0-9_]+)", source))
        )
        vocabulary = engine.vocabulary.inputs
        self._clear = tuple(
            dict.fromkeys(
                self.selection_variables + tuple(v for v in vocabulary if not v.startswith("-"))
            )
        )
        getters = getattr(envs, "environment_variables", {})
        self.deprecated_variables: tuple[str, ...] = tuple(
            name
            for name in self.selection_variables
            if getattr(getters.get(name), "__qualname__", "").startswith("deprecated_env")
        )
        self.kernel_classes: dict[str, type] = self._find_kernel_classes()
        _required(kernels, entry.candidates, ("release", "entry", "candidates"))
        option = engine.linear_backend
        self.has_linear_backend: bool = hasattr(kernels, option.reader)
        self.linear_backends: tuple[str, ...] = self._read_linear_backends()
        table = getattr(kernels, "_LINEAR_BACKEND_KERNEL_MAP", None) or {}
        nvfp4 = set(self.kernel_classes.values())
        self.linear_backend_kernels: dict[str, tuple[str, ...]] = {
            backend: tuple(sorted(cls.__name__ for cls in classes if cls in nvfp4))
            for backend, classes in table.items()
        }
        gemm_map = getattr(kernels, "_NVFP4_BACKEND_TO_KERNEL", None) or {}
        self.gemm_backend_kernels: dict[str, str] = {
            name: cls.__name__ for name, cls in gemm_map.items()
        }
        self.probes = ProbeFaker(facts)
        logs = sys.modules.get(engine.once_caches.module)
        self._once_caches = [
            fn
            for name in engine.once_caches.names
            if (fn := getattr(logs, name, None)) is not None and hasattr(fn, "cache_clear")
        ]
        self._capture, self._silence = install_log_capture(engine.logger)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def load(cls, facts: ReleaseFacts) -> VllmRuntime:
        """Install the fake platform, import vLLM's kernels package and read what it holds.

        Raises ``RuntimeError`` when vLLM's platform was resolved before the fake could be
        put in place (load the runtime before anything else imports vLLM's kernels).
        """
        try:
            platform, kernels = fake_platform.install(facts.entry.module)
        except ModuleNotFoundError as exc:
            raise ReleaseMismatch(
                ("release", "entry", "module"), f"no module {facts.entry.module} ({exc})"
            ) from None
        return cls(facts, engine_facts(), platform, kernels)

    def _find_kernel_classes(self) -> dict[str, type]:
        base = _required(self._kernels, self.facts.entry.kernel_base,
                         ("release", "entry", "kernel_base"))
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
        for kernels in getattr(self._kernels, self.facts.entry.candidates, {}).values():
            for obj in kernels:
                consider(obj)
        prefix = self.facts.entry.module + "."
        for name, module in list(sys.modules.items()):
            if name.startswith(prefix) and module is not None:
                for obj in vars(module).values():
                    consider(obj)
        return found

    def _read_linear_backends(self) -> tuple[str, ...]:
        if not self.has_linear_backend:
            return ()
        option = self.engine.linear_backend
        alias = getattr(importlib.import_module(option.choices_module), option.choices_alias, None)
        values = typing.get_args(alias) if alias is not None else ()
        if not values:
            raise RuntimeError(
                f"cannot read the {option.option} values from "
                f"{option.choices_module}.{option.choices_alias}"
            )
        return tuple(str(v) for v in values)

    # -- facts --------------------------------------------------------------------------------

    @property
    def selection_function(self) -> Callable[..., typing.Any]:
        """The release's own selection function, as imported."""
        return self._real_select

    @property
    def kernels_module(self) -> typing.Any:
        return self._kernels

    def auto_order(self, device: str, capability: tuple[int, int] | None = None) -> tuple[str, ...]:
        """The release's automatic candidate list for ``device``, as class names.

        With ``capability`` and a release that reorders by device (``prioritize_humming``),
        vLLM's reordering for that capability is applied.
        """
        table = _required(self._kernels, self.facts.entry.candidates,
                          ("release", "entry", "candidates"))
        kernels = list(table.get(fake_platform.device_enum(device), []))
        reorder = getattr(self._kernels, "prioritize_humming", None)
        if capability is not None and reorder is not None:
            major, minor = fake_platform.check_capability(capability)
            kernels = list(reorder(kernels, major * 10 + minor))
        return tuple(cls.__name__ for cls in kernels)

    def unreachable(self) -> tuple[str, ...]:
        """The NVFP4 classes the release defines that its selection can never return: in no
        automatic list, no ``--linear-backend`` or ``VLLM_NVFP4_GEMM_BACKEND`` map, and not
        named in the selection function (another code path builds them)."""
        table = getattr(self._kernels, self.facts.entry.candidates, {}) or {}
        listed = {cls.__name__ for kernels in table.values() for cls in kernels}
        listed |= {c for names in self.linear_backend_kernels.values() for c in names}
        listed |= set(self.gemm_backend_kernels.values())
        source = inspect.getsource(self._real_select)
        return tuple(
            name for name in self.kernel_classes
            if name not in listed and not re.search(rf"\b{name}\b", source)
        )

    def describe(self) -> dict[str, typing.Any]:
        """Everything read from the installed release, as plain data."""
        return {
            "version": self.version,
            "selection": f"{self.facts.entry.module}.{self.facts.entry.function}",
            "selection_signature": self.selection_signature,
            "selection_variables": list(self.selection_variables),
            "kernel_classes": {
                name: f"{cls.__module__}.{cls.__qualname__}"
                for name, cls in self.kernel_classes.items()
            },
            "auto_order": {d: list(self.auto_order(d)) for d in fake_platform.DEVICE_TYPES},
            "has_linear_backend": self.has_linear_backend,
            "linear_backends": list(self.linear_backends),
            "linear_backend_kernels": {
                k: list(v) for k, v in self.linear_backend_kernels.items() if v
            },
            "gemm_backend_kernels": dict(self.gemm_backend_kernels),
            "package_probes": self.probes.bound(),
            "compiled_probes": [p.model_dump() for p in self.facts.compiled_probes],
        }

    # -- per-cell controls ----------------------------------------------------------------------

    @contextlib.contextmanager
    def selection_replaced(self, func: Callable[..., typing.Any]) -> Iterator[None]:
        """Inside the block :meth:`select` calls ``func`` (a changed copy of the selection
        function, compiled against the imported module's globals) instead."""
        saved = self._select_fn
        self._select_fn = func
        try:
            yield
        finally:
            self._select_fn = saved

    def set_platform(self, device_type: str, capability: tuple[int, int] | None) -> None:
        """Make the fake platform a ``device_type`` device with ``capability``."""
        fake_platform.set_device(self._platform, device_type, capability)

    def env(self, mapping: Mapping[str, str | None]) -> contextlib.AbstractContextManager[None]:
        """Run the block with exactly ``mapping``'s vLLM variables set (every other selection
        variable removed, vLLM's envs cache off; restored afterwards)."""
        return controls.exact_environment(self._envs, self._clear, mapping)

    def mock_support(
        self, verdicts: Mapping[str, tuple[bool, str | None]]
    ) -> contextlib.AbstractContextManager[None]:
        """Replace ``is_supported`` on the named kernel classes with a fixed ``(ok, reason)``."""
        return controls.fixed_support({self._kernel_class(n): v for n, v in verdicts.items()})

    def real_support(
        self,
        packages: set[str] | frozenset[str],
        *,
        cuda_runtime: tuple[int, int] = (12, 8),
        torch_fp4_dtype: bool = True,
    ) -> contextlib.AbstractContextManager[None]:
        """Keep vLLM's real ``is_supported`` code; fake only its leaf probes (the machine has
        ``packages``, a CUDA runtime of ``cuda_runtime``, torch's FP4 dtype or not)."""
        return self.probes.faked(
            packages, cuda_runtime=cuda_runtime, torch_fp4_dtype=torch_fp4_dtype
        )

    # -- the call -----------------------------------------------------------------------------

    def select(
        self, use_a16: bool = False, linear_backend: str | None = None, *, logs: bool = True
    ) -> Outcome:
        """Call the selection function (or its replacement) once.

        ``use_a16=True`` is passed as such (a release without the parameter refuses it);
        for ``False`` the function is called without arguments, as vLLM's Quark W4A4 scheme
        calls it, so the parameter's default is what decides. ``linear_backend`` is what
        ``--linear-backend`` would be; ``None`` leaves vLLM's own reader in place, which
        answers ``"auto"`` outside an engine. ``logs=False`` skips clearing vLLM's once-only
        caches and keeping the records (the choice is the same, the call about three times
        cheaper, since creating log records is most of its cost).
        """
        if use_a16 and not self.accepts_use_a16:
            raise ValueError(
                f"vLLM {self.version}: {self.facts.entry.function}{self.selection_signature} "
                "has no use_a16 parameter"
            )
        kernels = self._kernels
        reader = self.engine.linear_backend.reader
        old_reader = None
        if linear_backend is not None:
            if not self.has_linear_backend:
                raise ValueError(f"vLLM {self.version} has no {self.engine.linear_backend.option}")
            if linear_backend not in self.linear_backends:
                raise ValueError(
                    f"{self.engine.linear_backend.option}={linear_backend!r} is not valid in "
                    f"vLLM {self.version}; valid: {', '.join(self.linear_backends)}"
                )
            old_reader = getattr(kernels, reader)
            setattr(kernels, reader, _constant(linear_backend))
        lines: list[tuple[int, str]] = []
        if logs:
            for cache in self._once_caches:
                cache.cache_clear()
            self._capture.lines = lines
        self._silence.on = True
        # vLLM's deprecated variables warn through warnings.warn when they are set; recording
        # costs several microseconds, so it is armed only when one of them is in the
        # environment (other warnings take Python's normal route).
        record = any(name in os.environ for name in self.deprecated_variables)
        caught: list[warnings.WarningMessage] = []
        raised: Exception | None = None
        kernel = None
        try:
            with warnings.catch_warnings(record=True) if record else _NO_RECORDING as recorded:
                if record:
                    warnings.simplefilter("always")
                try:
                    kernel = self._select_fn(use_a16=True) if use_a16 else self._select_fn()
                except Exception as exc:  # the outcome of the cell, not a failure here
                    raised = exc
                if recorded is not None:
                    caught = recorded
        finally:
            self._capture.lines = None
            self._silence.on = False
            if old_reader is not None:
                setattr(kernels, reader, old_reader)
        warned = tuple((w.category.__name__, str(w.message)) for w in caught)
        messages = tuple(f"{logging.getLevelName(level)}: {text}" for level, text in lines)
        common: dict[str, typing.Any] = dict(messages=messages, logged=tuple(lines), warned=warned)
        if raised is None:
            return Outcome("backend", kernel=type(kernel).__name__, **common)
        if _raising_module(raised) == self.engine.envs_module:
            kind = "invalid-env"  # vLLM's envs refused a value while the selection read it
        elif isinstance(raised, ValueError):
            kind = "error"  # the selection's own refusal: forced unsupported, nothing fits
        else:
            kind = "crash"
        return Outcome(
            kind,  # type: ignore[arg-type]
            error=str(raised), error_type=type(raised).__name__, **common
        )

    # -- helpers ------------------------------------------------------------------------------

    def _kernel_class(self, name: str) -> type:
        try:
            return self.kernel_classes[name]
        except KeyError:
            raise ValueError(
                f"vLLM {self.version} has no NVFP4 kernel class {name!r}; "
                f"known: {', '.join(sorted(self.kernel_classes))}"
            ) from None


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


def _constant(value: object) -> Callable[..., object]:
    def reader(*_args: object, **_kwargs: object) -> object:
        return value

    return reader
