"""landforge.datasets: chip stores (GeoParquet index + npz chips) and their torch Dataset.

Names are imported lazily so modules of this package that do not need torch stay light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ChipDataset", "build_chips", "load_chip", "plot_chip", "read_index"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from landforge.datasets import chips

        return getattr(chips, name)
    raise AttributeError(name)
