"""Helpers: a tiny two-scene frame: a smooth left half (class 1) and a textured right half (class 2)."""

from __future__ import annotations

import numpy as np

from landforge.io.raster import RasterGrid, write_cog


def write_frame(folder, name="frame", size=128, seed=0):
    """4-band uint16 image and uint8 labels on one grid; left smooth, right noisy."""
    rng = np.random.default_rng(seed)
    grid = RasterGrid.from_bounds(
        400_000, 5_800_000, 400_000 + size * 10, 5_800_000 + size * 10, 10.0, "EPSG:32633"
    )
    yy, xx = np.mgrid[0:size, 0:size]
    smooth = 1000 + 2 * xx + yy
    noisy = 1000 + rng.integers(0, 400, (size, size))
    band = np.where(xx < size // 2, smooth, noisy).astype(np.uint16)
    image = np.stack([band, band + 10, band + 20, band + 30])
    labels = np.where(xx < size // 2, 1, 2).astype(np.uint8)
    labels[:8, :] = 0  # an unlabelled strip
    img_path, lab_path = folder / f"{name}.tif", folder / f"{name}_labels.tif"
    write_cog(img_path, image, grid)
    write_cog(lab_path, labels, grid, nodata=0)
    return img_path, lab_path
