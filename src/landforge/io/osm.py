"""OpenStreetMap extracts (.osm.pbf) through pyrosm: roads, POIs and land use.

Every reader returns a GeoDataFrame in EPSG:4326 with plain columns (no nested tag
dicts) so it can be written straight to GeoParquet or GeoPackage. OSM data is
"© OpenStreetMap contributors, ODbL 1.0"; keep that attribution with anything derived.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from landforge.errors import InputError, OptionError, require_file

__all__ = ["NETWORK_TYPES", "POI_KEYS", "read_osm_landuse", "read_osm_pois", "read_osm_roads"]

#: pyrosm network types accepted by :func:`read_osm_roads`.
NETWORK_TYPES = ("driving", "driving+service", "walking", "cycling", "all", "all_public")

#: OSM keys whose value makes a POI category, in order of precedence.
POI_KEYS = (
    "amenity",
    "shop",
    "tourism",
    "leisure",
    "office",
    "craft",
    "healthcare",
    "historic",
    "public_transport",
    "sport",
)

_ROAD_COLUMNS = (
    "id",
    "highway",
    "name",
    "ref",
    "lanes",
    "width",
    "maxspeed",
    "oneway",
    "bridge",
    "tunnel",
    "layer",
    "service",
    "access",
    "surface",
)


def _open(pbf_path: str | os.PathLike[str]) -> Any:
    p = require_file(pbf_path, "OSM PBF file")
    try:
        import pyrosm
    except ImportError:  # pragma: no cover - pyrosm is a core dependency
        raise InputError(p, "reading .osm.pbf needs pyrosm: pip install pyrosm") from None
    try:
        return pyrosm.OSM(str(p))
    except Exception as exc:  # pyrosm raises bare ValueError/OSError for bad files
        raise InputError(p, f"not a readable OSM PBF file ({str(exc)[:200]})") from None


def _quiet(call: Any, path: Path, what: str) -> Any:
    """Run a pyrosm reader; its own errors on odd files become InputError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        try:
            return call()
        except (ValueError, KeyError, IndexError, RuntimeError) as exc:
            raise InputError(path, f"cannot read {what} ({str(exc)[:200]})") from None


def read_osm_roads(pbf_path: str | os.PathLike[str], network: str = "driving") -> gpd.GeoDataFrame:
    """Road centre lines of an OSM extract, with ``road_class`` = the ``highway`` value.

    Args:
        pbf_path: an ``.osm.pbf`` file.
        network: pyrosm network type: driving, driving+service, walking, cycling, all,
            all_public.

    Returns:
        Lines in EPSG:4326 with ``osm_id``, ``road_class``, ``highway`` and the common
        road tags (name, lanes, width, bridge, tunnel, ...), where present.

    Raises:
        InputError: missing/corrupt file, unknown network type, or no highways.
    """
    path = Path(pbf_path)
    if network not in NETWORK_TYPES:
        raise OptionError(
            "network", f"unknown network {network!r}; use one of {', '.join(NETWORK_TYPES)}"
        )
    osm = _open(path)
    roads = _quiet(lambda: osm.get_network(network_type=network), path, "roads")
    if roads is None or len(roads) == 0:
        raise InputError(path, f"no highways of the {network!r} network in this OSM extract")
    roads = roads[roads.geom_type.isin(["LineString", "MultiLineString"])]
    if len(roads) == 0:
        raise InputError(path, "no highway lines in this OSM extract")
    cols = [c for c in _ROAD_COLUMNS if c in roads.columns]
    out = gpd.GeoDataFrame(roads[cols].copy(), geometry=roads.geometry.values, crs="EPSG:4326")
    out = out.rename(columns={"id": "osm_id"})
    out.insert(1, "road_class", out["highway"].astype(str))
    return out.reset_index(drop=True)


def read_osm_pois(pbf_path: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """Points of interest (amenity, shop, tourism, leisure, office, craft, ...).

    Polygons (e.g. a mall mapped as an area) become their representative point.

    Returns:
        Points in EPSG:4326 with ``osm_id``, ``name``, one column per key of
        :data:`POI_KEYS` present, ``category`` (``"key=value"`` of the first key present,
        e.g. ``"amenity=cafe"``, for the ``osm_*`` taxonomies), ``lon`` and ``lat``.

    Raises:
        InputError: missing/corrupt file or no POIs.
    """
    path = Path(pbf_path)
    osm = _open(path)
    pois = _quiet(lambda: osm.get_pois(custom_filter={k: True for k in POI_KEYS}), path, "POIs")
    if pois is None or len(pois) == 0:
        raise InputError(path, "no points of interest (amenity/shop/tourism/...) in this extract")
    pois = pois[~(pois.geometry.isna() | pois.geometry.is_empty)]
    keys = [k for k in POI_KEYS if k in pois.columns]
    category = pd.Series(None, index=pois.index, dtype="object")
    for key in reversed(keys):  # the first key in POI_KEYS wins
        has = pois[key].notna() & (pois[key].astype(str) != "")
        category = category.where(~has, key + "=" + pois[key].astype(str))
    cols = ["id"] + (["name"] if "name" in pois.columns else []) + keys
    out = pd.DataFrame(pois[cols]).rename(columns={"id": "osm_id"})
    out["category"] = category
    points = shapely.point_on_surface(pois.geometry.values)
    out["lon"] = shapely.get_x(points)
    out["lat"] = shapely.get_y(points)
    result = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(points, index=out.index), crs="EPSG:4326")
    result = result[result["category"].notna()]
    return result.reset_index(drop=True)


def read_osm_landuse(pbf_path: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """Land-use polygons (``landuse=*``) with ``landuse`` and ``category`` = ``"landuse=v"``.

    Raises:
        InputError: missing/corrupt file or no land-use polygons.
    """
    path = Path(pbf_path)
    osm = _open(path)
    landuse = _quiet(lambda: osm.get_landuse(), path, "land use")
    if landuse is None or len(landuse) == 0:
        raise InputError(path, "no landuse=* polygons in this OSM extract")
    polys = landuse[landuse.geom_type.isin(["Polygon", "MultiPolygon"])]
    if len(polys) == 0:
        raise InputError(path, "no landuse=* polygons in this OSM extract")
    geoms = polys.geometry.values
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = np.asarray(geoms, dtype=object).copy()
        # "structure" keeps a polygon a polygon (no stray lines from collapsed rings)
        geoms[bad] = shapely.make_valid(geoms[bad], method="structure", keep_collapsed=False)
    out = pd.DataFrame(
        {"osm_id": polys["id"].to_numpy(), "landuse": polys["landuse"].astype(str).to_numpy()}
    )
    if "name" in polys.columns:
        out["name"] = polys["name"].to_numpy()
    out["category"] = "landuse=" + out["landuse"]
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(np.asarray(geoms), crs="EPSG:4326"))
