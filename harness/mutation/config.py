"""The lanes' configuration: where the checkout is, ``mutation/cosmic-ray.toml``, one error type.

The lanes mutate and run a source checkout (they copy its ``kernels``,
``harness``, ``matrix`` and ``tests``), so they run from one: the checkout is
the working directory or the nearest folder above it that holds
``mutation/cosmic-ray.toml``. Anywhere else, and without cosmic-ray, they stop
with one line.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

__all__ = ["LaneError", "Checkout", "checkout", "load_config", "need_cosmic_ray"]

#: The lanes' configuration file, relative to the checkout.
CONFIG = Path("mutation") / "cosmic-ray.toml"


class LaneError(Exception):
    """Bad configuration or usage: one line, exit code 2."""


@dataclasses.dataclass(frozen=True)
class Checkout:
    """The source checkout a lane runs on, and the lane's files in it."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def mutation(self) -> Path:
        return self.root / "mutation"

    def reports(self, name: str) -> Path:
        return self.root / "reports" / name

    @property
    def records(self) -> Path:
        """The committed figures of each lane's last complete run (``tools/readme.py``)."""
        return self.root / "docs" / "records"


def checkout(start: Path | None = None) -> Checkout:
    """The checkout holding ``start`` (default: the working directory)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG).is_file():
            return Checkout(folder)
    raise LaneError(
        f"no {CONFIG} in {here} or above: the mutation lanes run from the project's source "
        "checkout (tox -e mutation, tox -e mutation-vllm-<line>)"
    )


def need_cosmic_ray() -> None:
    """Stop with one line where cosmic-ray is not installed."""
    if importlib.util.find_spec("cosmic_ray") is None:
        raise LaneError(
            "cosmic-ray is not installed here: the mutation lanes run in their tox environments "
            "(tox -e mutation, tox -e mutation-vllm-<line>)"
        )


def load_config(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: cosmic-ray depends on toml
        import toml

        return dict(toml.loads(path.read_text()))
    return tomllib.loads(path.read_text())
