"""The chip store API in one place (each piece lives in a module of its own).

- :mod:`landforge.datasets.options`: :class:`ChipOptions` and the window samplers;
- :mod:`landforge.datasets.chip_writer`: :func:`build_chips` (the store layout);
- :mod:`landforge.datasets.chip_windows`: where chips are cut (grid, random, poisson);
- :mod:`landforge.datasets.chip_store`: :func:`read_index`, :func:`read_stats`,
  :func:`read_meta`, :func:`load_chip`;
- :mod:`landforge.datasets.chip_plots`: :func:`plot_chip`;
- :mod:`landforge.datasets.chip_dataset`: :class:`ChipDataset` (imports torch, so it
  is loaded on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from landforge.datasets.chip_plots import plot_chip
from landforge.datasets.chip_store import load_chip, read_index, read_meta, read_stats
from landforge.datasets.chip_writer import build_chips
from landforge.datasets.options import (
    DEFAULT_SPLIT,
    SAMPLERS,
    ChipOptions,
    GridSampler,
    PoissonSampler,
    RandomSampler,
)

if TYPE_CHECKING:
    from landforge.datasets.chip_dataset import ChipDataset

__all__ = [
    "build_chips",
    "load_chip",
    "read_index",
    "read_stats",
    "read_meta",
    "plot_chip",
    "ChipDataset",
    "ChipOptions",
    "GridSampler",
    "PoissonSampler",
    "RandomSampler",
    "SAMPLERS",
    "DEFAULT_SPLIT",
]


def __getattr__(name: str) -> Any:
    if name == "ChipDataset":  # torch: imported on first use
        from landforge.datasets.chip_dataset import ChipDataset

        return ChipDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
