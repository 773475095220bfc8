"""Tiny class rasters for the evaluation tests: generated in code, a few KB each."""

from __future__ import annotations

import numpy as np

from landforge.io.raster import RasterGrid

COLOURS = {0: (0, 0, 0), 1: (230, 80, 60), 2: (60, 120, 230), 3: (150, 150, 150)}


def tiny_grid() -> RasterGrid:
    """48 x 40 pixels of 1 m in UTM 50N."""
    return RasterGrid.from_bounds(500000, 3500000, 500048, 3500040, 1.0, "EPSG:32650")


def truth_array(grid: RasterGrid) -> np.ndarray:
    """Three land uses in bands, with a nodata (0) strip along the top."""
    h, w = grid.shape
    arr = np.ones((h, w), np.uint8)
    arr[:, w // 3 :] = 2
    arr[h // 2 :, 2 * w // 3 :] = 3
    arr[:4] = 0
    return arr
