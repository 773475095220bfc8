"""Reading a chip store: its index, statistics, metadata and chips.

The layout is described in :mod:`landforge.datasets.chip_writer`. Chips are ``.npz``
files read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from landforge.errors import InputError

__all__ = ["load_chip", "read_index", "read_meta", "read_stats", "store_path"]


def store_path(store_dir: str | os.PathLike[str]) -> Path:
    """``store_dir`` as a Path; InputError unless it holds a chip store's index."""
    p = Path(store_dir)
    if not (p / "index.parquet").is_file():
        raise InputError(p, "not a chip store (no index.parquet); build one with `landforge chips`")
    return p


def read_index(store_dir: str | os.PathLike[str]) -> Any:
    """The chip index of a store as a GeoDataFrame."""
    import geopandas as gpd

    return gpd.read_parquet(store_path(store_dir) / "index.parquet")


def read_stats(store_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``stats.json`` of a store: bands, mean, std, p2, p98."""
    return json.loads((store_path(store_dir) / "stats.json").read_text())


def read_meta(store_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``meta.json`` of a store."""
    return json.loads((store_path(store_dir) / "meta.json").read_text())


def load_chip(store_dir: str | os.PathLike[str], chip_id: str) -> dict[str, np.ndarray]:
    """The arrays of one chip (``image``, one per label, ``valid``), never unpickled."""
    path = Path(store_dir) / "chips" / f"{chip_id}.npz"
    if not path.is_file():
        raise InputError(path, "chip file does not exist")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if "valid" not in arrays:
        arrays["valid"] = np.ones(arrays["image"].shape[1:], dtype=np.uint8)
    return arrays
