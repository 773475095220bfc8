"""A tiny learnable footprint + use scene for smoke tests, benchmarks and demos.

Roofs are bright squares on a darker noisy ground; a building's use (rci 1..3) is
readable only from an extra band (a stand-in for a POI probability map) that is raised
over and around the building by an amount set by its use. A model that learns both
heads must therefore use the image for the footprint and the extra band for the use,
which is what the multi-task U-Net on RGB + POI maps does at full scale.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from landforge.io.raster import RasterGrid, write_cog

__all__ = ["make_toy_scene"]


def make_toy_scene(
    out_dir: str | os.PathLike[str],
    size: int = 256,
    n_buildings: int | None = None,
    seed: int = 0,
    nodata_corner: int = 0,
    crs: str = "EPSG:32650",
) -> dict[str, Path]:
    """Write the toy scene's rasters of ``size`` x ``size`` 1 m pixels to ``out_dir``.

    ``image.tif`` (R,G,B uint8, nodata 0), ``poi.tif`` (float32), ``footprint.tif`` (0/1)
    and ``use.tif`` (rci 0..3).

    Args:
        out_dir: directory to write into (created).
        size: raster side in pixels.
        n_buildings: number of roofs (default: one per 30x30 pixels).
        seed: random seed; the same seed gives the same files.
        nodata_corner: side of a nodata square in the top-left corner of the image
            (0 = none), to exercise nodata handling.
        crs: CRS of the (metric) grid.

    Returns:
        ``{"image", "poi", "footprint", "use"}`` -> written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = n_buildings if n_buildings is not None else max(1, size * size // 900)
    footprint = np.zeros((size, size), np.uint8)
    use = np.zeros((size, size), np.uint8)
    poi = rng.normal(0.0, 0.03, (size, size)).astype(np.float32)
    for _ in range(n):
        h, w = rng.integers(6, 18, 2)
        r, c = rng.integers(0, size - h), rng.integers(0, size - w)
        if footprint[max(r - 2, 0) : r + h + 2, max(c - 2, 0) : c + w + 2].any():
            continue  # keep roofs apart so each has one use
        cls = int(rng.integers(1, 4))
        footprint[r : r + h, c : c + w] = 1
        use[r : r + h, c : c + w] = cls
        pad = 3
        poi[max(r - pad, 0) : r + h + pad, max(c - pad, 0) : c + w + pad] += 0.3 * cls
    ground = rng.normal(70, 12, (3, size, size))
    roof = rng.normal(200, 15, (3, size, size))
    image = np.where(footprint[None] == 1, roof, ground)
    image = np.clip(image, 1, 255).astype(np.uint8)  # 0 is reserved for nodata
    if nodata_corner:
        image[:, :nodata_corner, :nodata_corner] = 0
    grid = RasterGrid.from_bounds(500_000, 3_500_000, 500_000 + size, 3_500_000 + size, 1.0, crs)
    paths = {
        "image": out / "image.tif",
        "poi": out / "poi.tif",
        "footprint": out / "footprint.tif",
        "use": out / "use.tif",
    }
    write_cog(paths["image"], image, grid, nodata=0, band_descriptions=["red", "green", "blue"])
    write_cog(paths["poi"], poi, grid, band_descriptions=["poi_use"])
    write_cog(paths["footprint"], footprint, grid, band_descriptions=["footprint"])
    write_cog(paths["use"], use, grid, band_descriptions=["use"])
    return paths
