"""Population time series per parcel: from a table keyed by parcel id, or from rasters.

MSLU-100K (Huang et al.) takes one day of hourly population density (24 rasters at
about 1.1 km) and gives each parcel the series of its zonal means. A parcel is much
smaller than such a pixel, so the mean is **area weighted**: pixel ``j`` counts with
the area of its intersection with the parcel, ``x_t = sum_j a_j v_tj / sum_j a_j``
over the pixels that hold a value at hour ``t`` (nodata and NaN pixels are left out).

A table is either long (``parcel_id``, ``hour``, value column, optionally ``day``: the
synthetic city's ``population.parquet``) or wide (``parcel_id`` and one numeric column
per hour, in order). Parcels the source does not cover get NaN: the sample keeps its
row with ``has_population = False``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from landforge.errors import InputError

__all__ = ["population_from_rasters", "population_from_table", "population_series"]

_TABLES = (".csv", ".parquet")


def population_series(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    parcels: gpd.GeoDataFrame,
    *,
    id_col: str,
    length: int,
    day: int | None = 0,
    value_col: str = "density",
) -> tuple[np.ndarray, int]:
    """(n, length) float32 series (NaN where missing) and the number of parcels matched.

    ``source`` is a table (.csv/.parquet), a folder of single-band rasters (one per
    hour, read in name order) or a list of raster files.

    Raises:
        InputError: an unreadable source, a table without the needed columns, a table
            whose keys match no parcel (saying how many matched), a raster count that
            differs from ``length``.
    """
    if isinstance(source, str | os.PathLike) and Path(source).suffix.lower() in _TABLES:
        return population_from_table(
            source,
            parcels[id_col].to_numpy(),
            id_col=id_col,
            length=length,
            day=day,
            value_col=value_col,
        )
    if isinstance(source, str | os.PathLike):
        folder = Path(source)
        if not folder.is_dir():
            raise InputError(folder, "population: give a .csv/.parquet table or a raster folder")
        files: list[Path] = sorted(
            p for p in folder.iterdir() if p.suffix.lower() in (".tif", ".tiff")
        )
        where: Any = folder
    else:
        files = [Path(p) for p in source]
        where = files[0] if files else "population"
    if len(files) != length:
        raise InputError(
            where, f"{len(files)} population rasters for a series of {length} (series_length)"
        )
    series = population_from_rasters(files, parcels)
    return series, int((~np.isnan(series).any(axis=1)).sum())


def population_from_table(
    path: str | os.PathLike[str],
    ids: np.ndarray,
    *,
    id_col: str,
    length: int,
    day: int | None = 0,
    value_col: str = "density",
) -> tuple[np.ndarray, int]:
    """Series of the parcels ``ids`` from a long or wide table (see the module doc)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "population table does not exist")
    try:
        table = pd.read_parquet(p) if p.suffix.lower() == ".parquet" else pd.read_csv(p)
    except (OSError, ValueError) as exc:
        raise InputError(p, f"cannot read population table ({str(exc)[:160]})") from None
    if id_col not in table.columns:
        raise InputError(p, f"population table has no column {id_col!r}")
    if "hour" in table.columns:
        if value_col not in table.columns:
            raise InputError(p, f"long population table has no value column {value_col!r}")
        if "day" in table.columns:
            if day is None:
                table = table.groupby([id_col, "hour"])[value_col].mean().reset_index()
            else:
                table = table[table["day"] == day]
                if table.empty:
                    raise InputError(p, f"population table has no rows for day {day}")
        wide = table.pivot_table(index=id_col, columns="hour", values=value_col, aggfunc="mean")
        wide = wide.reindex(columns=range(length))
    else:
        values = [c for c in table.columns if c != id_col]
        if len(values) != length:
            raise InputError(
                p, f"wide population table has {len(values)} value columns, expected {length}"
            )
        wide = table.set_index(id_col)[values].apply(pd.to_numeric, errors="coerce")
        if wide.index.has_duplicates:
            raise InputError(p, f"population table repeats values of {id_col!r}")
    wide.index = wide.index.astype(str)
    keys = pd.Index(np.asarray(ids).astype(str))
    matched = int(keys.isin(wide.index).sum())
    if matched == 0:
        sample = ", ".join(map(str, wide.index[:3]))
        raise InputError(
            p,
            f"population table matches no parcel (0 of {len(keys)} parcel ids matched; the "
            f"table's {id_col} values look like {sample})",
        )
    series = wide.reindex(keys).to_numpy(dtype=np.float32)
    return series, matched


def population_from_rasters(
    files: Sequence[str | os.PathLike[str]], parcels: gpd.GeoDataFrame
) -> np.ndarray:
    """(n, len(files)) area-weighted zonal means of single-band rasters on one grid."""
    from landforge.io.raster import check_same_grid, read_grid, read_raster

    grid = read_grid(files[0], require_crs=True)
    for f in files[1:]:
        check_same_grid(grid, f)
    stack = np.empty((len(files), grid.height, grid.width), np.float64)
    for t, f in enumerate(files):
        band = read_raster(f, bands=[1], masked=True)[0]
        stack[t] = np.ma.filled(band.astype(np.float64), np.nan)
    geoms = np.asarray(parcels.to_crs(grid.crs).geometry.values)
    inv = ~grid.transform
    out = np.full((len(geoms), len(files)), np.nan, np.float32)
    for i, geom in enumerate(geoms):
        if geom is None or geom.is_empty:
            continue
        out[i] = _zonal_mean(geom, stack, grid.transform, inv)
    return out


def _zonal_mean(geom: Any, stack: np.ndarray, transform: Any, inv: Any) -> np.ndarray:
    """Area-weighted mean of each band of ``stack`` over ``geom`` (NaN outside)."""
    _, height, width = stack.shape
    x0, y0, x1, y1 = geom.bounds
    cols, rows = zip(*(inv @ (x, y) for x in (x0, x1) for y in (y0, y1)), strict=True)
    c0, c1 = max(int(np.floor(min(cols))), 0), min(int(np.ceil(max(cols))), width)
    r0, r1 = max(int(np.floor(min(rows))), 0), min(int(np.ceil(max(rows))), height)
    if c0 >= c1 or r0 >= r1:
        return np.full(stack.shape[0], np.nan)
    rr, cc = np.mgrid[r0:r1, c0:c1]
    rr, cc = rr.ravel(), cc.ravel()
    # pixel corners through the affine transform (north-up or not)
    xa, ya = transform @ (cc, rr)
    xb, yb = transform @ (cc + 1, rr + 1)
    boxes = shapely.box(
        np.minimum(xa, xb), np.minimum(ya, yb), np.maximum(xa, xb), np.maximum(ya, yb)
    )
    area = shapely.area(shapely.intersection(boxes, geom))
    values = stack[:, rr, cc]  # (T, m)
    ok = ~np.isnan(values) & (area > 0)[None, :]
    w = np.where(ok, area[None, :], 0.0)
    total = w.sum(axis=1)
    mean = np.divide(
        (np.where(ok, values, 0.0) * w).sum(axis=1),
        total,
        where=total > 0,
        out=np.full(stack.shape[0], np.nan),
    )
    return mean
