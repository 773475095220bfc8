"""Where chips are cut: the window samplers and the straddling-chip rule of splits.

A window is the ``(row, col)`` of its top-left pixel; every window is ``size`` x
``size`` and lies inside the raster. The sampler is one of the models of
:mod:`landforge.datasets.options`:

- ``grid``: regular windows every ``stride`` pixels, in raster order;
- ``random``: seeded uniformly random windows (``n_chips`` drawn, default as many as
  the grid gives; duplicates dropped), sorted in raster order;
- ``poisson``: chips centred on Poisson-disk points inside parcels
  (:func:`landforge.parcels.poisson.poisson_patches`), at least ``radius_m`` apart in a
  parcel (default one chip side), windows near the edge shifted inwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from landforge.datasets.options import GridSampler, PoissonSampler, RandomSampler
from landforge.errors import InputError
from landforge.io.raster import RasterGrid

__all__ = [
    "block_splits",
    "drop_straddling",
    "grid_windows",
    "poisson_windows",
    "random_windows",
    "sample_windows",
]


def sample_windows(
    grid: RasterGrid,
    size: int,
    stride: int,
    sampler: GridSampler | RandomSampler | PoissonSampler,
    seed: int,
    parcels: str | os.PathLike[str] | None = None,
) -> list[tuple[int, int]]:
    """The windows of ``sampler`` on ``grid`` (``parcels``: the poisson sampler's layer)."""
    if isinstance(sampler, RandomSampler):
        return random_windows(grid, size, stride, sampler.n_chips, seed)
    if isinstance(sampler, PoissonSampler):
        assert parcels is not None  # checked with the options
        return poisson_windows(grid, size, Path(parcels), sampler, seed)
    return list(grid_windows(grid, size, stride))


def grid_windows(grid: RasterGrid, size: int, stride: int) -> Iterator[tuple[int, int]]:
    """Top-left corners every ``stride`` pixels, in raster order."""
    for row in range(0, grid.height - size + 1, stride):
        for col in range(0, grid.width - size + 1, stride):
            yield row, col


def random_windows(
    grid: RasterGrid, size: int, stride: int, n_chips: int | None, seed: int
) -> list[tuple[int, int]]:
    """Seeded uniformly random top-left corners (distinct, in raster order)."""
    if n_chips is None:
        n_chips = ((grid.height - size) // stride + 1) * ((grid.width - size) // stride + 1)
    rng = np.random.default_rng([seed, 1])
    rows = rng.integers(0, grid.height - size + 1, n_chips)
    cols = rng.integers(0, grid.width - size + 1, n_chips)
    return sorted({(int(r), int(c)) for r, c in zip(rows, cols, strict=True)})


def poisson_windows(
    grid: RasterGrid, size: int, parcels: Path, sampler: PoissonSampler, seed: int
) -> list[tuple[int, int]]:
    """Windows centred on Poisson-disk points inside ``parcels`` (clipped to the raster).

    The parcels (any vector format with a CRS) are reprojected to the raster's CRS,
    which must be projected (metric; the caller checks it and names the raster).
    """
    import shapely

    from landforge.io.vector import read_vector
    from landforge.parcels.poisson import poisson_patches

    if grid.crs is None or not grid.crs.is_projected:
        raise ValueError("poisson windows need a grid in a projected (metric) CRS")
    layer = read_vector(parcels).to_crs(grid.crs)
    if not shapely.box(*grid.bounds).intersects(shapely.box(*layer.total_bounds)):
        raise InputError(parcels, "the parcels do not overlap the image")
    size_m = size * float(abs(grid.res[0]))
    # centres inside the parcels, their chips as much inside as the parcel allows
    points = poisson_patches(
        layer,
        patch_size_m=size_m,
        radius_m=sampler.radius_m if sampler.radius_m is not None else size_m,
        min_inside=sampler.min_inside,
        max_per_parcel=sampler.max_per_parcel,
        seed=seed,
    )
    if len(points) == 0:
        return []
    xy = shapely.get_coordinates(np.asarray(points.geometry.values))
    inv = ~grid.transform
    cols, rows = inv @ (xy[:, 0], xy[:, 1])
    rows = np.clip(np.round(np.asarray(rows) - size / 2), 0, grid.height - size).astype(int)
    cols = np.clip(np.round(np.asarray(cols) - size / 2), 0, grid.width - size).astype(int)
    # a centre outside the raster would clip onto the edge: keep only centres inside it
    inside = (
        (np.asarray(xy[:, 0]) >= grid.bounds[0])
        & (np.asarray(xy[:, 0]) <= grid.bounds[2])
        & (np.asarray(xy[:, 1]) >= grid.bounds[1])
        & (np.asarray(xy[:, 1]) <= grid.bounds[3])
    )
    return sorted({(int(r), int(c)) for r, c in zip(rows[inside], cols[inside], strict=True)})


def block_splits(
    records: list[dict[str, Any]], block_px: int, size: int
) -> dict[tuple[int, int], str]:
    """The split of every block holding a chip centre or reached into by a chip.

    ``records`` carry ``row``, ``col``, ``block_row``, ``block_col`` and ``split``;
    blocks are ``block_px`` pixels square. A block holding chip centres has their
    split; a block without one takes the split of the first chip (raster order)
    reaching into it.
    """
    split_of: dict[tuple[int, int], str] = {
        (r["block_row"], r["block_col"]): r["split"] for r in records
    }
    for r in sorted(records, key=lambda r: (r["row"], r["col"])):
        for b in _touched(r, block_px, size):
            split_of.setdefault(b, r["split"])
    return split_of


def _touched(r: dict[str, Any], block_px: int, size: int) -> list[tuple[int, int]]:
    """The blocks the chip window of record ``r`` reaches into."""
    b_rows = range(r["row"] // block_px, (r["row"] + size - 1) // block_px + 1)
    b_cols = range(r["col"] // block_px, (r["col"] + size - 1) // block_px + 1)
    return [(i, j) for i in b_rows for j in b_cols]


def drop_straddling(
    records: list[dict[str, Any]], block_px: int, size: int
) -> list[dict[str, Any]]:
    """Keep the chips whose window touches only split blocks of their own split.

    ``records`` carry ``row``, ``col``, ``block_row``, ``block_col`` and ``split``;
    blocks are ``block_px`` pixels square. Blocks without a chip centre take the split
    of the first chip (raster order) reaching into them (:func:`block_splits`), so kept
    chips of different splits never share a block.
    """
    split_of = block_splits(records, block_px, size)
    return [
        r for r in records if all(split_of[b] == r["split"] for b in _touched(r, block_px, size))
    ]
