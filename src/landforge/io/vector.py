"""Vector I/O: GeoPackage, GeoParquet, GeoJSON, shapefile in; GeoPackage/GeoParquet out.

Readers raise InputError naming the file; writers are atomic and refuse a layer
without a CRS, so every output opens in a GIS at the right place.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from landforge.errors import InputError, OptionError
from landforge.io.atomic import atomic_path

__all__ = [
    "local_utm_crs",
    "read_vector",
    "repair_polygons",
    "require_column",
    "require_crs",
    "to_metric",
    "write_vector",
]

_PARQUET = {".parquet", ".geoparquet"}
_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}


def read_vector(
    path: str | os.PathLike[str],
    layer: str | None = None,
    require_crs: bool = True,
    columns: list[str] | None = None,
    allow_empty: bool = False,
    repair: bool = True,
) -> gpd.GeoDataFrame:
    """Read a vector file (GeoPackage, GeoParquet, GeoJSON, shapefile, FlatGeobuf).

    Args:
        path: the file.
        layer: the layer of a multi-layer file (default: the first).
        require_crs: raise when the layer has no CRS.
        columns: attribute columns to read (default: all).
        allow_empty: accept a layer without features (default: an error).
        repair: repair invalid polygons (e.g. self-intersecting) with ``make_valid``,
            with one warning giving their count.

    Raises:
        InputError: naming the file: missing, empty (0 bytes), unreadable, no features,
            no CRS.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "vector file does not exist")
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(p, "file is empty (0 bytes)")
    try:
        if p.suffix.lower() in _PARQUET:
            gdf = gpd.read_parquet(p, columns=columns)
        else:
            gdf = gpd.read_file(p, layer=layer, columns=columns, engine="pyogrio")
    except (ValueError, OSError, RuntimeError) as exc:
        # pyogrio raises DataSourceError (an OSError/RuntimeError subclass) for corrupt
        # or unknown formats; geopandas raises ValueError for a parquet without geometry.
        raise InputError(p, f"cannot read vector data ({_reason(exc, p)})") from None
    except Exception as exc:  # pyogrio's errors do not all share a base class
        if type(exc).__module__.startswith("pyogrio"):
            raise InputError(p, f"cannot read vector data ({_reason(exc, p)})") from None
        raise
    if not allow_empty and len(gdf) == 0:
        raise InputError(p, "layer has no features")
    if require_crs and gdf.crs is None:
        raise InputError(p, "layer has no CRS; set one (e.g. with ogr2ogr -a_srs) and retry")
    return repair_polygons(gdf, p) if repair else gdf


def repair_polygons(gdf: gpd.GeoDataFrame, source: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """``gdf`` with its invalid polygons repaired by ``make_valid``; one warning counts them.

    Valid geometries, lines and points are kept as they are; the frame is returned
    unchanged (not copied) when nothing is invalid.
    """
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    polygonal = np.isin(
        shapely.get_type_id(geoms),
        [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON],
    )
    invalid = polygonal & ~shapely.is_valid(geoms)
    if not invalid.any():
        return gdf
    warnings.warn(
        f"{source}: {int(invalid.sum())} of {len(gdf)} polygons invalid (e.g. "
        "self-intersecting); repaired with make_valid",
        stacklevel=3,
    )
    fixed = geoms.copy()
    fixed[invalid] = shapely.make_valid(geoms[invalid])
    out = gdf.copy()
    out[gdf.geometry.name] = gpd.GeoSeries(fixed, index=gdf.index, crs=gdf.crs)
    return out


def _reason(exc: BaseException, path: Path) -> str:
    """The first line of ``exc`` without the file's path repeated (it leads the error)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.replace(f"'{path}' ", "").replace(str(path), "the file")
    text = text.split("; It might help to specify the correct driver")[0]
    return text[:200]


def require_crs(gdf: Any, source: str | os.PathLike[str]) -> None:
    """Raise InputError naming ``source`` if the layer ``gdf`` has no CRS."""
    if getattr(gdf, "crs", None) is None:
        raise InputError(source, "layer has no CRS; set one (e.g. with ogr2ogr -a_srs) and retry")


def require_column(
    gdf: Any, column: str, source: str | os.PathLike[str], option: str | None = None
) -> None:
    """Raise an error if the layer ``gdf`` (read from ``source``) has no column ``column``.

    Args:
        gdf: a (Geo)DataFrame.
        column: the column needed.
        source: what the layer is (a path or a name such as ``"label layer"``).
        option: the options field that named ``column``: the error is then an
            :class:`~landforge.errors.OptionError` on that field (the CLI shows its flag),
            else an :class:`~landforge.errors.InputError` on ``source``.
    """
    if column in gdf.columns:
        return
    geometry = getattr(gdf, "_geometry_column_name", None)
    have = ", ".join(str(c) for c in gdf.columns if c != geometry) or "no attribute columns"
    if option is not None:
        raise OptionError(option, f"{source} has no column {column!r} (it has: {have})")
    raise InputError(source, f"no column {column!r} (it has: {have})")


def write_vector(gdf: gpd.GeoDataFrame, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write ``gdf`` atomically; the format follows the suffix (.gpkg, .parquet, .geojson)."""
    p = Path(path)
    if gdf.crs is None:
        raise ValueError(f"refusing to write {p} without a CRS")
    suffix = p.suffix.lower()
    with atomic_path(p) as tmp:
        if suffix in _PARQUET:
            gdf.to_parquet(tmp, **kwargs)
        elif suffix in _DRIVERS:
            if suffix == ".gpkg":
                # the layer is named after the final file, not the temporary one
                kwargs.setdefault("layer", p.stem)
            gdf.to_file(tmp, driver=_DRIVERS[suffix], engine="pyogrio", **kwargs)
        else:
            raise InputError(p, "unknown vector format; use .gpkg, .parquet or .geojson")
    return p


def local_utm_crs(gdf: gpd.GeoDataFrame) -> pyproj.CRS:
    """The UTM zone CRS at the centre of ``gdf`` (a local metric CRS)."""
    crs = gdf.estimate_utm_crs()
    if crs is None:  # pragma: no cover - only for empty frames
        raise InputError(None, "cannot estimate a UTM zone for an empty layer")
    return crs


def to_metric(gdf: gpd.GeoDataFrame, crs: Any = None) -> gpd.GeoDataFrame:
    """Reproject to ``crs``, or to the local UTM zone when the layer is geographic."""
    if crs is not None:
        return gdf.to_crs(crs)
    if gdf.crs is not None and gdf.crs.is_projected:
        return gdf
    return gdf.to_crs(local_utm_crs(gdf))
