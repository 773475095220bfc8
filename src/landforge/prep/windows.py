"""Window helpers shared by the prep stages: margins, whole-raster samples, band checks.

A stage that filters (Retinex, kriging) reads each block with a margin and keeps only
the block's core, so its output does not depend on the block size. Statistics that must
be global (stretch percentiles) come from :func:`sample_windows`: a fixed set of tiles
spread over the whole raster, chosen from the grid alone (not from the block size), so a
windowed run and a whole-image run use the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from rasterio.windows import Window

from landforge.errors import OptionError
from landforge.io.raster import RasterGrid, iter_blocks

__all__ = [
    "SAMPLE_TILE",
    "check_bands",
    "padded_window",
    "sample_windows",
    "strips",
]

#: Side of the tiles of the whole-raster sample (pixels).
SAMPLE_TILE = 256


def check_bands(bands: Sequence[int] | None, count: int, field: str = "bands") -> list[int]:
    """1-based band numbers, all of them by default; a band that does not exist is an error.

    Raises:
        OptionError: a band outside ``1..count``, named against ``field``.
    """
    if bands is None:
        return list(range(1, count + 1))
    bad = [b for b in bands if not 1 <= b <= count]
    if bad:
        raise OptionError(
            field,
            f"band {bad[0]} does not exist (the raster has {count} band{'s' if count != 1 else ''})",
        )
    return list(bands)


def padded_window(
    window: Window, margin: int, grid: RasterGrid
) -> tuple[Window, tuple[slice, slice]]:
    """``window`` grown by ``margin`` pixels (clipped to the grid) and the core's slices in it."""
    row0 = max(0, int(window.row_off) - margin)
    col0 = max(0, int(window.col_off) - margin)
    row1 = min(grid.height, int(window.row_off + window.height) + margin)
    col1 = min(grid.width, int(window.col_off + window.width) + margin)
    read = Window(col0, row0, col1 - col0, row1 - row0)
    r = int(window.row_off) - row0
    c = int(window.col_off) - col0
    return read, (slice(r, r + int(window.height)), slice(c, c + int(window.width)))


def strips(grid: RasterGrid, block: int) -> Iterator[list[Window]]:
    """The blocks of :func:`iter_blocks` grouped by strip (one full-width row of blocks)."""
    row: list[Window] = []
    for window in iter_blocks(grid, block):
        if row and int(window.row_off) != int(row[0].row_off):
            yield row
            row = []
        row.append(window)
    if row:
        yield row


def sample_windows(grid: RasterGrid, n_pixels: int) -> list[Window]:
    """Tiles covering about ``n_pixels`` spread evenly over the grid (all when it is small).

    Deterministic: the tiles of :data:`SAMPLE_TILE` x :data:`SAMPLE_TILE` of the grid,
    every k-th in row-major order, k chosen so that about ``n_pixels`` are kept.
    """
    tiles = list(iter_blocks(grid, SAMPLE_TILE))
    total = grid.width * grid.height
    if total <= n_pixels:
        return tiles
    keep = max(1, int(np.ceil(n_pixels / SAMPLE_TILE**2)))
    picks = np.unique(np.linspace(0, len(tiles) - 1, keep).round().astype(int))
    return [tiles[i] for i in picks]


def sample_percentiles(values: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of the finite ``values`` (NaN, NaN if none)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(finite, [low, high])
    return float(lo), float(hi)
