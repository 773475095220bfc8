"""Per-parcel aggregation of a predicted class map (majority class and fractions).

Parcels are burned into the map grid with their row number
(``rasterio.features.rasterize``, pixel-centre rule unless ``all_touched``) block by
block, and class counts per parcel come from one ``np.bincount`` over
``parcel * n_classes + class`` per block: no per-parcel loop over pixels, so a city of
hundreds of thousands of parcels takes seconds. Where parcels overlap, the later row
wins the shared pixels. A parcel too small to contain a pixel centre gets no class
(``class_value`` NA) unless ``all_touched=True``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
from affine import Affine
from rasterio.windows import Window

from landforge.errors import InputError, OptionError
from landforge.inference.constants import tagged_class_names
from landforge.inference.options import AssignParcelsOptions
from landforge.io.raster import RasterGrid, check_same_grid, iter_blocks, open_raster
from landforge.taxonomy import load_classes

__all__ = ["assign_parcels"]


def assign_parcels(
    parcels: gpd.GeoDataFrame,
    map_path: str | os.PathLike[str],
    opts: AssignParcelsOptions | None = None,
    *,
    class_names: Mapping[int, str] | None = None,
    probs_path: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> gpd.GeoDataFrame:
    """Give each parcel the majority class of the map pixels inside it.

    Args:
        parcels: polygons in any CRS (reprojected to the map's CRS for counting).
        map_path: integer class map.
        opts: :class:`~landforge.inference.options.AssignParcelsOptions`: ``ignore``
            (class values not counted, background 0 by default; nodata is never
            counted), ``all_touched`` (burn every pixel a parcel touches, not only
            pixel centres), ``taxonomy`` (names of an untagged map's values), ``block``.
        class_names: class value -> name. Default: the map's ``LANDFORGE_CLASSES`` tag,
            else the classes of ``taxonomy`` and any other value found in the map
            (named ``class_<value>``).
        probs_path: optional class-probability raster on the same grid (float, or uint8
            with a GDAL scale); ``confidence`` is then the mean over the parcel of the
            per-pixel maximum probability.
        **overrides: fields of ``opts`` to replace.

    Returns:
        A copy of ``parcels`` with ``class_value`` (nullable int), ``class_name``,
        ``frac_<name>`` per class (share of the counted pixels), ``n_pixels`` (counted
        pixels) and ``confidence`` (majority fraction, or mean max-probability).

    Raises:
        InputError: parcels without CRS, unreadable rasters, probabilities on another grid,
            a map that overlaps no parcel.
    """
    o = AssignParcelsOptions.build(opts, **overrides)
    all_touched, block = o.all_touched, o.block
    if parcels.crs is None:
        raise InputError("parcels", "parcels have no CRS")
    ignore_set = {int(v) for v in o.ignore}
    with open_raster(map_path) as src:
        if src.crs is None:
            raise InputError(map_path, "class map has no CRS")
        grid = RasterGrid(src.crs, src.transform, src.width, src.height)
        nodata = src.nodata
        names = _class_names(src, class_names, o.taxonomy, grid, block, ignore_set, nodata)
        values = np.array(
            sorted(v for v in names if v not in ignore_set and v != nodata), dtype=np.int64
        )
        if probs_path is not None:
            check_same_grid(grid, probs_path)
        geoms = parcels.geometry.to_crs(grid.crs) if parcels.crs != grid.crs else parcels.geometry
        if len(geoms) and not shapely.intersects(geoms.to_numpy(), shapely.box(*grid.bounds)).any():
            raise InputError(
                map_path,
                "the class map does not overlap any parcel; check that both cover the same area",
            )
        counts, conf_sum, conf_n = _count(
            src, probs_path, geoms, grid, values, nodata, all_touched, block
        )
    return _table(parcels, names, values, counts, conf_sum, conf_n, probs_path is not None)


def _class_names(
    src: Any,
    class_names: Mapping[int, str] | None,
    taxonomy: str | None,
    grid: RasterGrid,
    block: int,
    ignore: set[int],
    nodata: float | None,
) -> dict[int, str]:
    if class_names:
        return {int(k): str(v) for k, v in class_names.items()}
    tagged = tagged_class_names(src)
    if tagged:
        return tagged
    found: set[int] = set()
    for win in iter_blocks(grid, block):
        found.update(int(v) for v in np.unique(src.read(1, window=win)))
    # the class system's classes (all of them, like a tagged map's) + other values found
    names = _taxonomy_names(taxonomy) if taxonomy else {}
    names |= {v: f"class_{v}" for v in found if v not in names}
    return {v: names[v] for v in sorted(names) if v not in ignore and v != nodata}


def _taxonomy_names(taxonomy: str) -> dict[int, str]:
    try:
        return dict(load_classes(taxonomy).label_values())
    except InputError as exc:
        if exc.source == "taxonomy":  # an unknown name: the option is wrong
            raise OptionError("taxonomy", exc.problem) from None
        raise


def _count(
    src: Any,
    probs_path: str | os.PathLike[str] | None,
    geoms: gpd.GeoSeries,
    grid: RasterGrid,
    values: np.ndarray,
    nodata: float | None,
    all_touched: bool,
    block: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, k = len(geoms), len(values)
    counts = np.zeros((n + 1) * max(k, 1), dtype=np.int64)
    conf_sum = np.zeros(n + 1, dtype=np.float64)
    conf_n = np.zeros(n + 1, dtype=np.int64)
    geom_array = geoms.to_numpy()
    tree = shapely.STRtree(geom_array)
    with contextlib.ExitStack() as stack:
        probs_src = None if probs_path is None else stack.enter_context(open_raster(probs_path))
        for win in iter_blocks(grid, block):
            transform = grid.transform @ Affine.translation(int(win.col_off), int(win.row_off))
            hits = tree.query(_window_box(transform, int(win.width), int(win.height)))
            if len(hits) == 0 or k == 0:
                continue
            hits.sort()  # later rows win overlaps, as in a whole-raster burn
            burned = rasterio.features.rasterize(
                ((geom_array[i], int(i) + 1) for i in hits),
                out_shape=(int(win.height), int(win.width)),
                transform=transform,
                fill=0,
                dtype="int32",
                all_touched=all_touched,
            )
            cls = src.read(1, window=win).astype(np.int64)
            pos = np.clip(np.searchsorted(values, cls), 0, k - 1)
            ok = (burned > 0) & (values[pos] == cls)
            if nodata is not None:
                ok &= cls != nodata
            idx = burned[ok].astype(np.int64)
            counts += np.bincount(idx * k + pos[ok], minlength=len(counts))
            if probs_src is not None:
                maxp = _max_probability(probs_src, win)
                okp = ok & np.isfinite(maxp)
                conf_sum += np.bincount(burned[okp], weights=maxp[okp], minlength=n + 1)
                conf_n += np.bincount(burned[okp], minlength=n + 1)
    return counts.reshape(n + 1, max(k, 1))[1:, :k], conf_sum[1:], conf_n[1:]


def _window_box(transform: Affine, width: int, height: int) -> shapely.Polygon:
    """The footprint of a window given its transform (any rotation)."""
    corners = [(0, 0), (width, 0), (width, height), (0, height)]
    return shapely.Polygon([transform @ c for c in corners])


def _max_probability(src: Any, win: Window) -> np.ndarray:
    """Per-pixel maximum class probability, NaN where nodata; applies GDAL scales."""
    p = src.read(window=win, out_dtype="float64")
    if src.nodata is not None and not np.isnan(src.nodata):
        p[p == src.nodata] = np.nan
    scales = np.asarray(src.scales, dtype=np.float64)[:, None, None]
    offsets = np.asarray(src.offsets, dtype=np.float64)[:, None, None]
    p = p * scales + offsets
    with np.errstate(invalid="ignore"):
        return np.where(
            np.isnan(p).all(axis=0), np.nan, np.nanmax(np.where(np.isnan(p), -np.inf, p), axis=0)
        )


def _table(
    parcels: gpd.GeoDataFrame,
    names: Mapping[int, str],
    values: np.ndarray,
    counts: np.ndarray,
    conf_sum: np.ndarray,
    conf_n: np.ndarray,
    with_probs: bool,
) -> gpd.GeoDataFrame:
    out = parcels.copy()
    total = counts.sum(axis=1)
    has = total > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        fracs = counts / total[:, None]
    best = values[counts.argmax(axis=1)] if len(values) else np.zeros(len(out), dtype=np.int64)
    out["class_value"] = pd.array(np.where(has, best, 0), dtype="Int64")
    out.loc[~has, "class_value"] = pd.NA
    out["class_name"] = [names.get(int(v)) if h else None for v, h in zip(best, has, strict=True)]
    for j, v in enumerate(values):
        out[f"frac_{names.get(int(v), f'class_{int(v)}')}"] = np.where(has, fracs[:, j], np.nan)
    out["n_pixels"] = total.astype(np.int64)
    if with_probs:
        with np.errstate(invalid="ignore", divide="ignore"):
            out["confidence"] = np.where(conf_n > 0, conf_sum / np.maximum(conf_n, 1), np.nan)
    else:
        out["confidence"] = np.where(has, fracs.max(axis=1) if len(values) else 0.0, np.nan)
    return out
