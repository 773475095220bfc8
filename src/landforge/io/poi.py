"""Points of interest from CSV, GeoJSON, GeoParquet or GeoPackage, as EPSG:4326 points.

Bad coordinates are never dropped silently: NaN, out-of-range or apparently swapped
longitude/latitude make :func:`read_pois` raise an InputError with the count, so a user
fixes the file rather than losing POIs without noticing.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from landforge.errors import InputError, require_file
from landforge.io.vector import read_vector

__all__ = ["LAT_NAMES", "LON_NAMES", "read_pois"]

#: Column names recognised as longitude / x (case-insensitive), in order of preference.
LON_NAMES = ("lon", "lng", "longitude", "long", "x", "wgs84_lon", "point_x")
#: Column names recognised as latitude / y (case-insensitive), in order of preference.
LAT_NAMES = ("lat", "latitude", "y", "wgs84_lat", "point_y")

_CSV = {".csv", ".txt", ".tsv"}


def read_pois(
    path: str | os.PathLike[str],
    lon_col: str | None = None,
    lat_col: str | None = None,
    category_col: str | None = "category",
    crs: Any = None,
) -> gpd.GeoDataFrame:
    """Read POIs as points in EPSG:4326.

    Args:
        path: CSV/TSV (coordinates in columns), GeoJSON, GeoParquet, GeoPackage, or an
            OpenStreetMap ``.osm.pbf`` (amenity, shop, office, ... as ``key=value``).
        lon_col: longitude/x column of a CSV; detected from common names
            (lon/lng/longitude/x) when not given.
        lat_col: latitude/y column of a CSV; detected (lat/latitude/y) when not given.
        category_col: column that must exist (the POI category); None to skip the check.
        crs: CRS of a CSV's coordinates (default EPSG:4326); for vector files, the CRS
            to assume when the file has none.

    Returns:
        Points in EPSG:4326 with all attribute columns; for CSV input ``lon`` and ``lat``
        columns are kept as read.

    Raises:
        InputError: unreadable file, no coordinate columns, missing ``category_col``, or
            invalid coordinates (with their count).
    """
    p = require_file(path, "POI file")
    if p.name.lower().endswith(".pbf"):
        from landforge.io.osm import read_osm_pois

        gdf = read_osm_pois(p)  # category = "key=value", for the osm_* taxonomies
    elif p.suffix.lower() in _CSV:
        gdf = _read_csv(p, lon_col, lat_col, crs)
    else:
        gdf = read_vector(p, require_crs=False)
        if gdf.crs is None:
            if crs is None:
                raise InputError(p, "POI layer has no CRS; pass crs= (e.g. EPSG:4326)")
            gdf = gdf.set_crs(crs)
        gdf = _vector_points(p, gdf)
    if len(gdf) == 0:
        raise InputError(p, "holds no POIs (a header without rows?)")
    if category_col is not None and category_col not in gdf.columns:
        have = ", ".join(str(c) for c in gdf.columns if c != gdf.geometry.name) or "none"
        raise InputError(p, f"no category column {category_col!r}; the file has: {have}")
    if gdf.crs is not None and not CRS.from_user_input(gdf.crs).equals(CRS.from_epsg(4326)):
        gdf = gdf.to_crs("EPSG:4326")
    _check_lonlat(
        p,
        shapely.get_x(gdf.geometry.values),
        shapely.get_y(gdf.geometry.values),
        "after reprojection to EPSG:4326 " if _projected(crs, gdf) else "",
    )
    return gdf


def _projected(crs: Any, gdf: gpd.GeoDataFrame) -> bool:
    return crs is not None and CRS.from_user_input(crs).is_projected


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower().strip(): c for c in columns}
    for name in names:
        if name in lower:
            return lower[name]
    return None


def _read_csv(p: Path, lon_col: str | None, lat_col: str | None, crs: Any) -> gpd.GeoDataFrame:
    if p.stat().st_size == 0:
        raise InputError(p, "file is empty (0 bytes)")
    sep = "\t" if p.suffix.lower() == ".tsv" else None
    try:
        df = pd.read_csv(p, sep=sep, engine="python" if sep is None else "c")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, csv.Error) as exc:
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InputError(p, f"cannot read CSV ({msg})") from None
    cols = [str(c) for c in df.columns]
    df.columns = cols
    lon_name = lon_col or _find(cols, LON_NAMES)
    lat_name = lat_col or _find(cols, LAT_NAMES)
    for given, name, what in (
        (lon_col, lon_name, "longitude/x"),
        (lat_col, lat_name, "latitude/y"),
    ):
        if name is None or name not in cols:
            hint = f"column {given!r} not found" if given else f"no {what} column found"
            raise InputError(
                p,
                f"{hint}; the file has: {', '.join(cols)} "
                "(give the longitude and latitude column names)",
            )
    x = pd.to_numeric(df[lon_name], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(df[lat_name], errors="coerce").to_numpy(dtype=float)
    src = CRS.from_user_input(crs) if crs is not None else CRS.from_epsg(4326)
    if src.is_geographic:
        _check_lonlat(p, x, y, "")
    else:
        bad = ~(np.isfinite(x) & np.isfinite(y))
        if bad.any():
            raise InputError(
                p, f"{int(bad.sum())} of {len(x)} POIs have missing or non-numeric coordinates"
            )
    geometry = gpd.GeoSeries(shapely.points(x, y), index=df.index, crs=src)
    return gpd.GeoDataFrame(df, geometry=geometry, crs=src)


def _vector_points(p: Path, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    geoms = gdf.geometry.values
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        raise InputError(p, f"{int(missing.sum())} of {len(gdf)} POIs have no geometry")
    types = shapely.get_type_id(geoms)
    if (types != shapely.GeometryType.POINT).any():
        # areas (a mall as a polygon) or multipoints: one point inside each
        geoms = shapely.point_on_surface(geoms)
        gdf = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))
    return gdf


def _check_lonlat(p: Path, lon: np.ndarray, lat: np.ndarray, when: str) -> None:
    """Raise InputError with counts if any longitude/latitude is invalid."""
    nan = ~(np.isfinite(lon) & np.isfinite(lat))
    with np.errstate(invalid="ignore"):
        out = ~nan & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
        swapped = out & (np.abs(lat) <= 180) & (np.abs(lon) <= 90)
    n = len(lon)
    problems = []
    if nan.any():
        problems.append(f"{int(nan.sum())} missing or non-numeric")
    if out.any():
        text = f"{int(out.sum())} out of range (|lon| > 180 or |lat| > 90)"
        if swapped.sum() == out.sum():
            text += "; they look like latitude/longitude swapped, check the column order"
        problems.append(text)
    if problems:
        raise InputError(
            p,
            f"invalid coordinates {when}in {int((nan | out).sum())} of {n} POIs: "
            + "; ".join(problems),
        )
