"""Map clean-up: remove small objects and fill small holes per class.

Used for UBGG (urban blue-green-gray) maps and building maps alike: speckle of a few
pixels is removed and pinholes inside objects are filled. Sizes are areas in m²,
converted to pixels through the pixel size, so the same settings work at 0.5 m and at
10 m. Connectivity is 4-neighbour (``connectivity=1``), as in
``rasterio.features.shapes``.

Removed objects take the class of their surroundings (``replace="nearest"``, for maps
where every pixel has a class, such as UBGG) or become background 0
(``replace="background"``, for building maps).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import ndimage
from skimage.morphology import remove_small_holes, remove_small_objects

from landforge.errors import InputError
from landforge.io.raster import RasterGrid, open_raster, write_cog

__all__ = ["area_to_pixels", "clean_class_map", "clean_class_map_file"]


def area_to_pixels(area_m2: float, pixel_size_m: float | tuple[float, float]) -> int:
    """Number of whole pixels in ``area_m2`` (rounded up; 0 for 0)."""
    if isinstance(pixel_size_m, tuple):
        px = abs(pixel_size_m[0] * pixel_size_m[1])
    else:
        px = pixel_size_m**2
    if px <= 0:
        raise InputError("pixel size", f"pixel size must be positive, got {pixel_size_m}")
    return max(0, math.ceil(area_m2 / px - 1e-9))


def clean_class_map(
    class_map: np.ndarray,
    pixel_size_m: float | tuple[float, float],
    min_object_m2: float = 0.0,
    max_hole_m2: float = 0.0,
    classes: Iterable[int] | None = None,
    nodata: int | None = 255,
    background: int = 0,
    replace: Literal["nearest", "background"] = "background",
) -> np.ndarray:
    """A copy of ``class_map`` without small objects and small holes.

    Args:
        class_map: (rows, cols) integer class map.
        pixel_size_m: pixel size in metres (or (x, y) sizes).
        min_object_m2: objects of a class smaller than this are removed.
        max_hole_m2: holes inside a class up to this size are filled with that class.
        classes: classes to clean; default every value except nodata and background.
        nodata: nodata value, never changed and never filled into.
        background: the background value (for ``replace="background"``).
        replace: what removed objects become, ``"nearest"`` class or ``"background"``.

    Returns:
        The cleaned class map, same dtype.
    """
    out = np.array(class_map, copy=True)
    if out.ndim != 2:
        raise InputError("class map", f"expected a single-band map, got shape {out.shape}")
    valid = out != nodata if nodata is not None else np.ones(out.shape, bool)
    if classes is None:
        values = np.unique(out[valid])
        classes = [int(v) for v in values if v != background]
    classes = list(classes)
    max_obj = area_to_pixels(min_object_m2, pixel_size_m) - 1  # sizes < min are removed
    max_hole = area_to_pixels(max_hole_m2, pixel_size_m)
    if max_hole > 0:
        for k in classes:
            mask = out == k
            filled = remove_small_holes(mask, max_size=max_hole)
            out[filled & ~mask & valid] = k
    if max_obj > 0:
        removed = np.zeros(out.shape, dtype=bool)
        for k in classes:
            mask = out == k
            kept = remove_small_objects(mask, max_size=max_obj)
            removed |= mask & ~kept
        if removed.any():
            if replace == "background":
                out[removed] = background
            elif replace == "nearest":
                # each removed pixel takes the class of the nearest pixel that stays
                source = valid & ~removed
                if source.any():
                    _, (ri, ci) = ndimage.distance_transform_edt(~source, return_indices=True)
                    out[removed] = out[ri[removed], ci[removed]]
            else:
                raise InputError("replace", f"use 'nearest' or 'background', got {replace!r}")
    return out


def clean_class_map_file(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    min_object_m2: float = 0.0,
    max_hole_m2: float = 0.0,
    replace: Literal["nearest", "background"] = "background",
) -> Path:
    """:func:`clean_class_map` on a class-map COG; keeps nodata, colours and tags.

    The map is processed in memory (a uint8 map of 20k x 20k pixels is 400 MB); split
    larger maps first.
    """
    with open_raster(path) as src:
        grid = RasterGrid(src.crs, src.transform, src.width, src.height)
        arr = src.read(1)
        nodata = src.nodata
        try:
            cmap = src.colormap(1)
        except ValueError:
            cmap = None
        tags = src.tags()
    cleaned = clean_class_map(
        arr,
        grid.res,
        min_object_m2,
        max_hole_m2,
        nodata=int(nodata) if nodata is not None else None,
        replace=replace,
    )
    return write_cog(out, cleaned, grid, nodata=nodata, colormap=cmap, tags=tags)
