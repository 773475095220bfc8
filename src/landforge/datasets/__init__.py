"""landforge.datasets: chip stores (GeoParquet index + npz chips) and their torch Dataset.

The options (:mod:`landforge.datasets.options`) import nothing heavy; the other names
are imported lazily so that modules which do not need torch or GDAL stay light.
"""

from __future__ import annotations

from typing import Any

from landforge.datasets.options import ChipOptions, GridSampler, PoissonSampler, RandomSampler

__all__ = [
    "ChipDataset",
    "ChipOptions",
    "GridSampler",
    "PoissonSampler",
    "RandomSampler",
    "build_chips",
    "load_chip",
    "plot_chip",
    "read_index",
    "read_meta",
    "read_stats",
]

_LAZY = set(__all__) - {"ChipOptions", "GridSampler", "PoissonSampler", "RandomSampler"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from landforge.datasets import chips

        return getattr(chips, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
