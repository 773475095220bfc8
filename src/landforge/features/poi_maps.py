"""POI distance-decay probability maps (building-use paper, §2.5).

For each class k, ``p_k = 1 - min(d_k / dmax_k, 1)`` where ``d_k`` is the haversine
distance (mean-radius sphere) from a pixel centre to the nearest POI of class k: 1 on a
POI, falling linearly to 0 at ``dmax_k`` and beyond. POIs outside the grid count as long
as they are within ``dmax_k`` of a pixel.

Distances are exact, not rasterised: see :mod:`landforge.features.poi_distance` for the
definition on geographic and projected grids (1e-6 m and 1e-4 m of the haversine
formula) and the tiled candidate search that makes them fast. The maps are computed by
windows of ``tile`` rows, so working memory is a few float64 windows whatever the grid
size; only the float32 result is held whole.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from landforge.errors import InputError, OptionError
from landforge.features.options import PoiMapOptions, parse_dmax_text
from landforge.features.poi_distance import EARTH_RADIUS_M, nearest_distance_windows
from landforge.io.raster import RasterGrid, StagedCOG, iter_blocks, write_cog
from landforge.progress import track

__all__ = [
    "EARTH_RADIUS_M",
    "PoiClass",
    "PoiMapOptions",
    "load_poi_mapping",
    "parse_dmax",
    "poi_probability_maps",
    "resolve_classes",
    "write_poi_maps",
]


@dataclass(frozen=True)
class PoiClass:
    """One output band: the ``dmax`` key as given, the class code it selects, its name."""

    key: str
    code: str
    name: str
    dmax_m: float


def parse_dmax(text: str) -> dict[str, float]:
    """Parse ``"residential=300,commercial=300,industrial=800"`` into a dict.

    (:class:`PoiMapOptions` parses a ``dmax`` text the same way.)

    Raises:
        OptionError: (field ``dmax``) on empty text, a missing ``=``, a duplicate class
            or a distance that is not a positive number.
    """
    try:
        return parse_dmax_text(text)
    except ValueError as exc:
        raise OptionError("dmax", str(exc)) from None


def load_poi_mapping(taxonomy: str | None) -> Any:
    """The category mapping named by the ``taxonomy`` option; None for no taxonomy.

    Raises:
        OptionError: (field ``taxonomy``) an unknown taxonomy name or a class system.
        InputError: a taxonomy file that cannot be read (named by its path).
    """
    if not taxonomy:
        return None
    from landforge.taxonomy import load_mapping

    try:
        return load_mapping(taxonomy)
    except OptionError:
        raise
    except InputError as exc:
        if exc.source in (None, "taxonomy"):  # a name, not a file
            raise OptionError("taxonomy", exc.problem) from None
        raise


def resolve_classes(dmax: Mapping[Any, float], mapping: Any = None) -> list[PoiClass]:
    """Match each ``dmax`` key to a class of ``mapping`` by code, name, value or alias.

    Without a mapping the keys are the POI categories themselves.

    Raises:
        OptionError: (field ``dmax``) empty ``dmax``, a non-positive distance, or a key
            the mapping's target classes do not have.
    """
    if not dmax:
        raise OptionError("dmax", "no classes given")
    out: list[PoiClass] = []
    lookup: dict[str, Any] = {}
    if mapping is not None:
        for c in mapping.classes():
            for alias in (c.code, c.name, getattr(c, "value", None), *getattr(c, "aliases", ())):
                if alias is not None:
                    lookup.setdefault(str(alias).strip().lower(), c)
    for key, dist in dmax.items():
        try:
            d = float(dist)
        except (TypeError, ValueError):
            raise OptionError("dmax", f"distance of {key!r} is not a number: {dist!r}") from None
        if not math.isfinite(d) or d <= 0:
            raise OptionError("dmax", f"distance of {key!r} must be > 0, got {dist!r}")
        if mapping is None:
            out.append(PoiClass(str(key), str(key), str(key), d))
            continue
        c = lookup.get(str(key).strip().lower())
        if c is None:
            have = ", ".join(f"{c.code} ({c.name})" for c in mapping.classes())
            name = getattr(mapping, "name", "the mapping")
            raise OptionError("dmax", f"{name} has no class {key!r}; its classes: {have}")
        out.append(PoiClass(str(key), str(c.code), str(c.name), d))
    return out


def poi_probability_maps(
    pois: gpd.GeoDataFrame,
    grid: RasterGrid,
    opts: PoiMapOptions | None = None,
    *,
    mapping: Any = None,
    **overrides: Any,
) -> np.ndarray:
    """Distance-decay POI probability per class on ``grid``.

    ``p = 1 - min(d / dmax, 1)``, d = haversine distance (m) from the pixel centre to the
    nearest POI of the class (building-use paper, §2.5, eq. 1-3).

    Args:
        pois: POI points (any CRS) with a category column.
        grid: the output grid (projected or geographic CRS).
        opts: :class:`~landforge.features.options.PoiMapOptions`: ``dmax`` (class ->
            decay distance in metres; keys are class codes or names of the taxonomy's
            target system or, without a taxonomy, category values; the band order
            follows ``dmax``), ``taxonomy``, ``category_col``, and ``workers``, ``tile``,
            ``block_pixels`` (speed and memory only, not results).
        mapping: a loaded taxonomy mapping (``map_many``, ``classes``) to use instead of
            loading ``opts.taxonomy``.
        **overrides: fields of ``opts`` (e.g. ``dmax={"residential": 300}``).

    Returns:
        float32 array (n_classes, height, width) in [0, 1].

    Raises:
        InputError: POIs without CRS, a missing category column, a grid without CRS.
        OptionError: a bad option, e.g. a ``dmax`` key the mapping does not know. A
            class with no POI gives a band of zeros and a warning.
    """
    o = PoiMapOptions.build(opts, **overrides)
    if mapping is None:
        mapping = load_poi_mapping(o.taxonomy)
    classes, per_class = _prepare(pois, grid, o.dmax, mapping, o.category_col)
    out = np.zeros((len(classes), grid.height, grid.width), dtype=np.float32)
    blocks = _blocks(per_class, classes, grid, o.tile, o.block_pixels, o.workers)
    for rows, cols, block in blocks:
        out[:, rows, cols] = block
    return out


def _blocks(
    per_class: Sequence[np.ndarray],
    classes: Sequence[PoiClass],
    grid: RasterGrid,
    tile: int,
    block_pixels: int,
    workers: int,
) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """(rows, cols, float32 (k, h, w) probabilities) window by window, row-major."""
    if not any(len(s) for s in per_class):
        return
    windows = nearest_distance_windows(
        per_class,
        [c.dmax_m for c in classes],
        grid,
        tile=tile,
        block_pixels=block_pixels,
        workers=workers,
        decay=True,
    )
    for (rows, cols), probs in track(windows, "POI maps"):
        h, w = rows.stop - rows.start, cols.stop - cols.start
        block = np.zeros((len(classes), h, w), dtype=np.float32)
        for band, p in enumerate(probs):
            if p is not None:
                block[band] = p
        yield rows, cols, block


def _prepare(
    pois: gpd.GeoDataFrame,
    grid: RasterGrid,
    dmax: Mapping[Any, float],
    mapping: Any,
    category_col: str,
) -> tuple[list[PoiClass], list[np.ndarray]]:
    """Validate the inputs; the classes and, per class, POI lon/lat in the grid datum."""
    if pois.crs is None:
        raise InputError("pois", "POI layer has no CRS")
    if grid.crs is None:
        raise InputError("grid", "raster grid has no CRS")
    if category_col not in pois.columns:
        have = ", ".join(str(c) for c in pois.columns if c != pois.geometry.name)
        raise OptionError(
            "category_col", f"no category column {category_col!r}; the POIs have: {have}"
        )
    classes = resolve_classes(dmax, mapping)
    if mapping is not None:
        codes, unknown = mapping.map_many(pois[category_col])
        codes = codes.astype("object")
        if unknown:
            # counted and reported, never silently dropped
            top = ", ".join(
                f"{k!r} ({v})" for k, v in sorted(unknown.items(), key=lambda kv: -kv[1])[:5]
            )
            warnings.warn(
                f"{sum(unknown.values())} POIs in {len(unknown)} categories unknown to "
                f"{mapping.name!r} are not used: {top}{', ...' if len(unknown) > 5 else ''}",
                stacklevel=2,
            )
    else:
        codes = pois[category_col].astype("object")
    codes_str = np.asarray(
        [None if c is None or pd.isna(c) else str(c) for c in codes], dtype=object
    )

    lonlat, codes_str = _poi_lonlat(pois, grid, codes_str)
    per_class = []
    for cls in classes:
        sel = lonlat[codes_str == cls.code]
        if len(sel) == 0:
            warnings.warn(
                f"no POI of class {cls.key!r}; its probability band is all zeros", stacklevel=2
            )
        per_class.append(sel)

    return classes, per_class


def write_poi_probability_maps(
    path: str | os.PathLike[str],
    pois: gpd.GeoDataFrame,
    grid: RasterGrid,
    opts: PoiMapOptions | None = None,
    *,
    mapping: Any = None,
    **overrides: Any,
) -> Path:
    """:func:`poi_probability_maps` streamed to a COG: memory stays bounded by windows.

    The same values as ``write_poi_maps(path, poi_probability_maps(...), ...)`` without
    ever holding the whole (k, H, W) array, for national-scale grids. Options and
    ``mapping`` as :func:`poi_probability_maps`.
    """
    o = PoiMapOptions.build(opts, **overrides)
    if mapping is None:
        mapping = load_poi_mapping(o.taxonomy)
    classes, per_class = _prepare(pois, grid, o.dmax, mapping, o.category_col)
    tags = _tags({c.name: c.dmax_m for c in classes})
    staged = StagedCOG(
        path,
        grid,
        len(classes),
        np.float32,
        None,
        descriptions=[c.name for c in classes],
        tags=tags,
    )
    try:
        strips: dict[int, tuple[np.ndarray, int]] = {}
        blocks = _blocks(per_class, classes, grid, o.tile, o.block_pixels, o.workers)
        for rows, cols, block in blocks:
            strip, filled = strips.get(rows.start, (None, 0))
            if strip is None:
                strip = np.zeros((len(classes), rows.stop - rows.start, grid.width), np.float32)
            strip[:, :, cols] = block
            filled += cols.stop - cols.start
            if filled == grid.width:
                staged.write(strip, rows.start)
                strips.pop(rows.start, None)
            else:
                strips[rows.start] = (strip, filled)
        if not any(len(p) for p in per_class):  # no POI at all: an all-zero raster
            for window in iter_blocks(grid, 1024):
                if window.col_off == 0:
                    staged.write(
                        np.zeros((len(classes), int(window.height), grid.width), np.float32),
                        int(window.row_off),
                    )
        return staged.finish()
    except BaseException:
        staged.abort()
        raise


def _poi_lonlat(
    pois: gpd.GeoDataFrame, grid: RasterGrid, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """POI lon/lat (degrees) in the grid CRS's geodetic datum, and their codes."""
    crs = CRS.from_user_input(grid.crs.to_wkt())
    target = crs if crs.is_geographic else crs.geodetic_crs
    pts = pois.to_crs(target).geometry.values
    ok = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    pts = shapely.point_on_surface(pts[ok]) if ok.any() else pts[ok]
    if not len(pts):
        return np.zeros((0, 2)), codes[ok]
    return np.column_stack([shapely.get_x(pts), shapely.get_y(pts)]), codes[ok]


def write_poi_maps(
    path: str | os.PathLike[str],
    maps: np.ndarray,
    grid: RasterGrid,
    class_names: Sequence[str],
    dmax: Mapping[str, float] | None = None,
) -> Path:
    """Write POI probability maps as a float32 COG, one band per class (named).

    ``dmax`` (class -> metres), when given, is stored in the file's tags.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or maps.shape[0] != len(class_names):
        raise ValueError(f"maps of shape {maps.shape} do not match {len(class_names)} class names")
    return write_cog(path, maps, grid, band_descriptions=list(class_names), tags=_tags(dmax))


def _tags(dmax: Mapping[str, float] | None) -> dict[str, Any]:
    tags: dict[str, Any] = {"landforge": "poi_probability_maps", "formula": "p=1-min(d/dmax,1)"}
    if dmax:
        tags["dmax_m"] = ",".join(f"{k}={v:g}" for k, v in dmax.items())
    return tags
