"""Vector I/O: GeoPackage, GeoParquet, GeoJSON, shapefile in; GeoPackage/GeoParquet out.

Readers raise InputError naming the file; writers are atomic and refuse a layer
without a CRS, so every output opens in a GIS at the right place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyproj

from landforge.errors import InputError, OptionError
from landforge.io.atomic import atomic_path

__all__ = [
    "local_utm_crs",
    "read_vector",
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
) -> gpd.GeoDataFrame:
    """Read a vector file (GeoPackage, GeoParquet, GeoJSON, shapefile, FlatGeobuf)."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "vector file does not exist")
    try:
        if p.suffix.lower() in _PARQUET:
            gdf = gpd.read_parquet(p, columns=columns)
        else:
            gdf = gpd.read_file(p, layer=layer, columns=columns, engine="pyogrio")
    except (ValueError, OSError, RuntimeError) as exc:
        # pyogrio raises DataSourceError (an OSError/RuntimeError subclass) for corrupt
        # or unknown formats; geopandas raises ValueError for a parquet without geometry.
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InputError(p, f"cannot read vector data ({msg})") from None
    except Exception as exc:  # pyogrio's errors do not all share a base class
        if type(exc).__module__.startswith("pyogrio"):
            raise InputError(p, f"cannot read vector data ({str(exc)[:200]})") from None
        raise
    if require_crs and gdf.crs is None:
        raise InputError(p, "layer has no CRS; set one (e.g. with ogr2ogr -a_srs) and retry")
    return gdf


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
