"""Parcels from a road network: the land left between buffered roads.

Each road is buffered by half its roadbed width (by road class), the union of the road
buffers is removed from the boundary, and a morphological opening (erode by ``clean_m``,
dilate by ``clean_m``; the -5 m / +5 m buffer of the MSLU paper) drops slivers and splits
blocks joined by narrow necks. What is left, exploded into single polygons, are parcels.

Default roadbed widths (full width in metres, by OSM ``highway`` value; a ``width_m``
column wins over them, and ``ParcelOptions.widths`` or a YAML file overrides them)::

    motorway 30   trunk 25      primary 25     secondary 18    tertiary 12
    *_link: 12 (motorway), 10 (trunk, primary), 8 (secondary), 6 (tertiary)
    unclassified 8   residential 8   road 8   busway 8   living_street 6
    service 5   pedestrian 4   track 4
    footway, cycleway, path, steps, bridleway, corridor, elevator, platform,
    proposed, abandoned, construction: 0 (excluded: they do not bound parcels)

A road class not in the table gets ``default_width_m`` (8 m) and one warning with the
count. Roads in tunnels (``tunnel`` = yes / building_passage / culvert) are excluded
unless ``keep_tunnels``, since they do not cut the land surface. The options are
:class:`~landforge.parcels.options.ParcelOptions` (also importable as ``ParcelConfig``);
the data (roads, boundary, POIs, districts) are arguments of :func:`generate_parcels`.

All work is vectorised with shapely 2 (array buffers, one union of all of them, one
``difference``); there is no Python loop over geometries. Two steps keep the GEOS
overlays small (see :func:`merge_roads` and :func:`road_buffers`): road segments of
equal width are joined into longer lines before buffering (fewer round caps to union),
and with an opening the blocks are cut with roads narrowed by :data:`CLIP_MARGIN_M`
(0.1 um), so that clipping the opened blocks back to their block never has to node
edges that coincide up to floating noise.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from landforge.errors import InputError
from landforge.io.vector import require_crs, to_metric
from landforge.parcels.centre import (
    assign_districts,
    district_polygons,
    estimate_centre,
    find_centre,
)
from landforge.parcels.options import ParcelConfig, ParcelOptions

__all__ = [
    "CLIP_MARGIN_M",
    "DEFAULT_WIDTHS_M",
    "ParcelConfig",
    "ParcelOptions",
    "PreparedRoads",
    "assign_districts",
    "block_area",
    "estimate_centre",
    "generate_parcels",
    "load_widths",
    "merge_roads",
    "parcel_frame",
    "parcels_from_blocks",
    "prepare_roads",
    "road_blocks",
    "road_buffers",
    "road_widths",
]

#: Full roadbed width in metres by OSM ``highway`` class; 0 excludes the class.
DEFAULT_WIDTHS_M: dict[str, float] = {
    "motorway": 30.0,
    "motorway_link": 12.0,
    "trunk": 25.0,
    "trunk_link": 10.0,
    "primary": 25.0,
    "primary_link": 10.0,
    "secondary": 18.0,
    "secondary_link": 8.0,
    "tertiary": 12.0,
    "tertiary_link": 6.0,
    "unclassified": 8.0,
    "residential": 8.0,
    "road": 8.0,
    "busway": 8.0,
    "living_street": 6.0,
    "service": 5.0,
    "pedestrian": 4.0,
    "track": 4.0,
    "footway": 0.0,
    "cycleway": 0.0,
    "path": 0.0,
    "steps": 0.0,
    "bridleway": 0.0,
    "corridor": 0.0,
    "elevator": 0.0,
    "platform": 0.0,
    "proposed": 0.0,
    "abandoned": 0.0,
    "construction": 0.0,
}

#: With an opening, blocks are cut with roads this much narrower (and a boundary this
#: much wider) than their nominal size, and eroded by this much more; the opened block,
#: clipped to that slightly larger block, then lies on the nominal road edges and
#: boundary (up to floating noise) instead of on the clip edges, which makes the clip a
#: cheap overlay (edges that coincide up to noise make GEOS's overlay 2-3x slower).
#: Opened parcels may exceed the nominal block by this margin (5x at acute corners):
#: where a mitre spike is clipped, and where GEOS falls back to snapping the dilation
#: to a 1e-5 m grid (degenerate inputs). Small enough that this stays below 1e-9 of a
#: parcel's area, far below the accuracy of the road buffers (~0.2 m).
CLIP_MARGIN_M = 1e-7

_TUNNEL_VALUES = {"yes", "true", "1", "building_passage", "culvert", "covered"}


def load_widths(path: str | os.PathLike[str]) -> dict[str, float]:
    """Read road widths from YAML: ``{class: width}`` or ``{widths: {...}}``.

    Raises:
        InputError: if the file is missing, is not YAML, or a width is not a number >= 0.
    """
    from landforge.config import load_yaml

    p = Path(path)
    data: Any = load_yaml(p, what="widths file")
    if isinstance(data, dict) and isinstance(data.get("widths"), dict):
        data = data["widths"]
    if not isinstance(data, dict) or not data:
        raise InputError(p, "expected a mapping 'road_class: width_m'")
    out: dict[str, float] = {}
    for key, value in data.items():
        try:
            width = float(value)
        except (TypeError, ValueError):
            raise InputError(p, f"width of {key!r} is not a number: {value!r}") from None
        if not math.isfinite(width) or width < 0:
            raise InputError(p, f"width of {key!r} must be >= 0, got {value!r}")
        out[str(key)] = width
    return out


def road_widths(
    roads: pd.DataFrame, opts: ParcelOptions | None = None, **overrides: Any
) -> np.ndarray:
    """Full roadbed width (m) of each road: ``width_m`` column, else the class table.

    Unknown classes (and missing values) get ``default_width_m`` and one warning.
    """
    cfg = ParcelOptions.build(opts, **overrides)
    table = {**DEFAULT_WIDTHS_M, **{str(k): float(v) for k, v in (cfg.widths or {}).items()}}
    n = len(roads)
    widths = np.full(n, np.nan)
    class_col = (
        cfg.class_col
        if cfg.class_col in roads.columns
        else ("highway" if "highway" in roads.columns else None)
    )
    if class_col is not None:
        # one table look-up per distinct class (str of the value), not one per road
        values = roads[class_col].to_numpy(dtype=object)
        missing = pd.isna(values)
        names, inverse = np.unique(np.where(missing, "", values).astype(str), return_inverse=True)
        lookup = np.array([table.get(str(name), np.nan) for name in names], dtype=float)
        widths = np.where(missing, np.nan, lookup[inverse.reshape(-1)])
    if cfg.width_col in roads.columns:
        explicit = pd.to_numeric(roads[cfg.width_col], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(explicit) & (explicit >= 0)
        widths = np.where(ok, explicit, widths)
    unknown = ~np.isfinite(widths)
    if unknown.any():
        if class_col is None:
            what = f"no {cfg.class_col!r} or 'highway' column"
        else:
            values = roads.loc[unknown, class_col].tolist()
            names = list(
                dict.fromkeys(
                    "<missing>" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                    for v in values
                )
            )
            more = ", ..." if len(names) > 5 else ""
            what = f"unknown road classes ({', '.join(names[:5])}{more})"
        warnings.warn(
            f"{int(unknown.sum())} roads with {what}; using the default width "
            f"{cfg.default_width_m:g} m",
            stacklevel=2,
        )
        widths = np.where(unknown, cfg.default_width_m, widths)
    return widths


def generate_parcels(
    roads: gpd.GeoDataFrame,
    boundary: gpd.GeoDataFrame | None = None,
    opts: ParcelOptions | Mapping[str, Any] | None = None,
    *,
    pois: gpd.GeoDataFrame | None = None,
    districts: gpd.GeoDataFrame | None = None,
    **overrides: Any,
) -> gpd.GeoDataFrame:
    """Parcels: the boundary minus buffered roads, cleaned by a -/+ ``clean_m`` opening.

    Args:
        roads: road lines in any CRS, with a road class column (``road_class`` or OSM
            ``highway``) and/or a ``width_m`` column.
        boundary: polygon(s) to split; default the bounding box of the roads.
        opts: options, see :class:`~landforge.parcels.options.ParcelOptions`.
        pois: optional POI points (any CRS) that add to the road density the centre is
            estimated from (``centre_method="density"``).
        districts: optional district polygons (any CRS); each parcel then gets the
            ``district_id`` of the district holding its representative point (the
            nearest district if none holds it), ids from ``district_col``.
        **overrides: option fields replacing those of ``opts`` (``clean_m=3``).

    Returns:
        Single-part parcel polygons in a local metric CRS with ``parcel_id`` (1-based),
        ``area_m2``, ``perimeter_m``, ``compactness`` (4 pi A / P^2), ``dist_centre_m``
        and, with ``districts``, ``district_id``. ``gdf.attrs["centre"]`` holds the
        centre used (x, y in the output CRS) and ``gdf.attrs["centre_method"]`` how it
        was found (``"given"``, ``"density"`` or ``"centroid"``).

    Raises:
        OptionError: a bad option value.
        InputError: roads without a CRS, no usable roads, or a boundary the roads do not
            meet.
    """
    cfg = ParcelOptions.build(opts, **overrides)
    prep = prepare_roads(roads, boundary, cfg, pois=pois, districts=districts)
    lines, half = merge_roads(prep.lines, prep.half)
    buffers = road_buffers(lines, half, cfg)
    shapely.prepare(prep.area)
    touching = shapely.intersects(buffers, prep.area)
    if not touching.any():
        raise InputError(
            "boundary", "no road meets the boundary; check that both cover the same area"
        )
    blocks = road_blocks(block_area(prep.area, cfg), buffers[touching])
    parcels = parcels_from_blocks(blocks, cfg)
    gdf = parcel_frame(parcels, prep.crs, prep.centre, districts=prep.districts)
    gdf.attrs["centre_method"] = prep.centre_method
    return gdf


@dataclass
class PreparedRoads:
    """Validated roads in the working CRS: what the per-area parcel step needs.

    Attributes:
        lines: road centre lines with a width > 0 (metric CRS).
        half: half roadbed width of each line (buffer distance, m).
        area: the boundary as one (multi)polygon in ``crs``.
        crs: working (metric) CRS.
        centre: point that ``dist_centre_m`` is measured from.
        centre_method: how it was found: ``"given"``, ``"density"`` or ``"centroid"``.
        districts: district polygons and ids in ``crs`` (or None): see
            :func:`assign_districts`.
    """

    lines: np.ndarray
    half: np.ndarray
    area: shapely.Geometry
    crs: CRS
    centre: shapely.Geometry
    districts: tuple[np.ndarray, np.ndarray] | None = None
    centre_method: str = "given"


def prepare_roads(
    roads: gpd.GeoDataFrame,
    boundary: gpd.GeoDataFrame | None,
    cfg: ParcelOptions,
    pois: gpd.GeoDataFrame | None = None,
    districts: gpd.GeoDataFrame | None = None,
) -> PreparedRoads:
    """Validate the inputs of :func:`generate_parcels` and project them to the work CRS.

    Raises:
        InputError: roads without a CRS, no usable roads, or a bad boundary.
    """
    require_crs(roads, "roads")
    geoms = roads.geometry.values
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    usable &= shapely.get_type_id(geoms) != shapely.GeometryType.POINT
    usable &= shapely.get_type_id(geoms) != shapely.GeometryType.MULTIPOINT
    if not cfg.keep_tunnels and "tunnel" in roads.columns:
        usable &= ~roads["tunnel"].astype(str).str.lower().isin(_TUNNEL_VALUES).to_numpy()
    if not usable.any():
        raise InputError("roads", "no road lines to build parcels from (the layer is empty)")
    if not usable.all():
        roads = roads.loc[usable]
    metric = to_metric(roads, cfg.crs if cfg.crs is not None else _utm_zone(roads))
    crs = metric.crs
    widths = road_widths(metric, cfg)
    keep = widths > 0
    if not keep.any():
        raise InputError("roads", "every road has width 0 (only footways or excluded classes)")
    area = _boundary_polygon(boundary, metric, crs)
    lines = metric.geometry.values[keep]
    centre, how = find_centre(cfg, roads.crs, crs, area, lines, pois)
    return PreparedRoads(
        lines=lines,
        half=widths[keep] / 2.0,
        area=area,
        crs=crs,
        centre=centre,
        centre_method=how,
        districts=district_polygons(districts, crs, cfg.district_col),
    )


def merge_roads(lines: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Join road lines of equal width end to end (``shapely.line_merge`` per width).

    OSM splits a street into many ways and segments; their buffers would each end in a
    round cap at every joint, and the union of all those caps is the most expensive
    step. Joined lines get a round *join* there instead: the same shape (the set within
    half the width of the line) discretised differently, so the road union moves by at
    most ~0.2 m at joints (``quad_segs`` 4) and has fewer vertices. Only lines meeting
    end to end at a node of degree 2 are joined; crossings and forks stay as they are.
    Multi-lines are exploded; other geometries (e.g. area roads) are kept as given.

    Returns:
        The lines and their half widths: the (joined) lines ordered by width, then the
        other geometries in input order.
    """
    lines = np.asarray(lines, dtype=object)
    half = np.asarray(half, dtype=float)
    types = shapely.get_type_id(lines)
    linear = (types == shapely.GeometryType.LINESTRING) | (
        types == shapely.GeometryType.MULTILINESTRING
    )
    out_lines, out_half = [], []
    for h in np.unique(half[linear]):
        parts = shapely.get_parts(lines[linear & (half == h)])
        merged = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(parts)))
        out_lines.append(merged)
        out_half.append(np.full(len(merged), h))
    out_lines.append(lines[~linear])
    out_half.append(half[~linear])
    return np.concatenate(out_lines), np.concatenate(out_half)


def road_buffers(lines: np.ndarray, half: np.ndarray, cfg: ParcelOptions) -> np.ndarray:
    """Road buffers for :func:`road_blocks`: half the roadbed width round each line.

    With an opening (``cfg.clean_m > 0``) the half widths are reduced by
    :data:`CLIP_MARGIN_M`; :func:`parcels_from_blocks` expects blocks cut so.
    """
    margin = CLIP_MARGIN_M if cfg.clean_m > 0 else 0.0
    return shapely.buffer(lines, np.asarray(half) - margin, quad_segs=cfg.quad_segs)


def block_area(area: shapely.Geometry, cfg: ParcelOptions) -> shapely.Geometry:
    """The boundary for :func:`road_blocks`: grown by :data:`CLIP_MARGIN_M` with an opening."""
    if cfg.clean_m > 0:
        return shapely.buffer(area, CLIP_MARGIN_M, join_style="mitre")
    return area


def road_blocks(area: shapely.Geometry, buffers: np.ndarray) -> np.ndarray:
    """Road-bounded blocks: single polygons of ``area`` minus the union of road buffers.

    The union is a zero-distance buffer of all buffers as one multipolygon: GEOS nodes
    all rings in one pass and keeps what lies inside any of them, 1.5-2x faster on the
    OSM benchmark than the cascaded pairwise overlays of ``union_all``, with the same
    geometry there. Like every GEOS buffer it falls back to snapping to a ~1e-5 m grid
    where floating-point noding fails (degenerate input); the result stays valid.
    """
    parts = shapely.get_parts(np.asarray(buffers, dtype=object))
    parts = parts[(shapely.get_type_id(parts) == shapely.GeometryType.POLYGON)]
    parts = parts[~shapely.is_empty(parts)]
    roads = shapely.buffer(shapely.multipolygons(parts), 0.0)
    return shapely.get_parts(shapely.difference(area, roads))


def parcels_from_blocks(blocks: np.ndarray, cfg: ParcelOptions, return_index: bool = False) -> Any:
    """Open each road-bounded block, drop small pieces and repair the rare invalid one.

    Works block by block (no geometry depends on another block), so any subset of the
    blocks gives the matching subset of the parcels: the basis of tiled generation.
    With ``return_index``, also returns the index of each parcel's block.

    With an opening the blocks are expected from :func:`road_buffers` and
    :func:`block_area` (nominal block grown by :data:`CLIP_MARGIN_M`): they are eroded by
    ``clean_m`` plus that margin, so the opening lands on the nominal block.
    """
    blocks = np.asarray(blocks, dtype=object)
    # Canonical vertex order first: GEOS's mitre buffer can differ by centimetres with
    # the ring's start vertex, and a block must open the same however it was found.
    parcels, source = _open(shapely.normalize(blocks), cfg.clean_m, CLIP_MARGIN_M)
    min_area = max(cfg.min_area_m2, 0.0)
    big = shapely.area(parcels) >= min_area
    parcels, source = parcels[big], source[big]
    invalid = ~shapely.is_valid(parcels)
    if invalid.any():  # rare: GEOS buffers can leave a self-touching ring
        # make_valid may split one parcel into several: rebuild, keeping each one's block
        fixed, at = shapely.get_parts(shapely.make_valid(parcels[invalid]), return_index=True)
        poly = shapely.get_type_id(fixed) == shapely.GeometryType.POLYGON
        fixed, fixed_source = fixed[poly], source[invalid][at[poly]]
        parcels = np.concatenate([parcels[~invalid], fixed])
        source = np.concatenate([source[~invalid], fixed_source])
        big = shapely.area(parcels) >= min_area
        parcels, source = parcels[big], source[big]
    return (parcels, source) if return_index else parcels


def parcel_frame(
    parcels: np.ndarray,
    crs: CRS,
    centre: shapely.Geometry,
    districts: tuple[np.ndarray, np.ndarray] | None = None,
) -> gpd.GeoDataFrame:
    """The parcel GeoDataFrame: ids 1..n in the given order plus the shape attributes.

    ``districts`` (polygons, ids in ``crs``) adds ``district_id``; ``attrs["centre"]``
    records the centre (x, y).
    """
    a = shapely.area(parcels)
    p = shapely.length(parcels)
    cols: dict[str, Any] = {
        "parcel_id": np.arange(1, len(parcels) + 1, dtype=np.int64),
        "area_m2": a,
        "perimeter_m": p,
        "compactness": np.where(p > 0, 4 * np.pi * a / np.maximum(p, 1e-12) ** 2, 0.0),
        "dist_centre_m": shapely.distance(shapely.centroid(parcels), centre),
    }
    if districts is not None:
        cols["district_id"] = assign_districts(parcels, *districts)
    gdf = gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries(parcels, crs=crs), crs=crs)
    gdf.attrs["centre"] = (float(shapely.get_x(centre)), float(shapely.get_y(centre)))
    return gdf


def _utm_zone(gdf: gpd.GeoDataFrame) -> CRS | None:
    """The WGS 84 UTM zone at the centre of a geographic layer; None to let to_metric decide.

    The standard 6-degree zone (no Norway/Svalbard exceptions), as geopandas'
    ``estimate_utm_crs`` picks, without its ~0.25 s query of the PROJ database.
    """
    crs = gdf.crs
    if crs is None or not CRS.from_user_input(crs).is_geographic:
        return None
    lon0, lat0, lon1, lat1 = gdf.to_crs(4326).total_bounds
    lon, lat = (lon0 + lon1) / 2, (lat0 + lat1) / 2
    if not (np.isfinite(lon) and np.isfinite(lat)) or abs(lat) > 84:
        return None  # polar: leave it to to_metric
    zone = min(max(int((lon + 180) // 6) + 1, 1), 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _boundary_polygon(
    boundary: gpd.GeoDataFrame | None, roads: gpd.GeoDataFrame, crs: CRS
) -> shapely.Geometry:
    """One (multi)polygon in ``crs``: the boundary union, or the roads' bounding box."""
    if boundary is None:
        return shapely.box(*roads.total_bounds)
    require_crs(boundary, "boundary")
    if not CRS.from_user_input(boundary.crs).equals(crs):
        boundary = boundary.to_crs(crs)
    geoms = np.asarray(boundary.geometry.values, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        warnings.warn(
            f"{int(invalid.sum())} invalid (e.g. self-intersecting) boundary polygons; "
            "repaired with make_valid",
            stacklevel=3,
        )
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    polys = _polygonal(geoms)
    polys = polys[~shapely.is_empty(polys)]
    if len(polys) == 0:
        raise InputError("boundary", "boundary has no polygon with an area")
    return shapely.union_all(polys)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """The polygon parts of each geometry (lines and points from make_valid dropped)."""
    parts = shapely.get_parts(geoms)
    types = shapely.get_type_id(parts)
    return parts[types == shapely.GeometryType.POLYGON]


def _open(blocks: np.ndarray, clean_m: float, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Morphological opening of each block, exploded to single polygons.

    Mitre joins keep right-angled block corners square. Each block is eroded (by
    ``clean_m + margin``: the blocks are ``margin`` larger than nominal), its pieces
    dilated together by ``clean_m`` (one buffer of the multipolygon, so pieces that
    regrow into each other merge rather than overlap) and clipped to the block, so
    parcels stay inside the block and never overlap. The clip is needed: mitre
    dilation overshoots the block by metres where erosion cut a neck or curved edges
    (most blocks of a real network). Returns the polygons and each one's block index.
    """
    nonempty = np.flatnonzero(~shapely.is_empty(blocks))
    if clean_m <= 0 or len(nonempty) == 0:
        parts, at = shapely.get_parts(blocks[nonempty], return_index=True)
        return _polygon_parts(parts, nonempty[at])
    eroded = shapely.buffer(blocks[nonempty], -(clean_m + margin), join_style="mitre")
    alive = nonempty[~shapely.is_empty(eroded)]
    dilated = shapely.buffer(eroded[~shapely.is_empty(eroded)], clean_m, join_style="mitre")
    opened = shapely.intersection(dilated, blocks[alive])
    parts, at = shapely.get_parts(opened, return_index=True)
    return _polygon_parts(parts, alive[at])


def _polygon_parts(parts: np.ndarray, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    poly = shapely.get_type_id(parts) == shapely.GeometryType.POLYGON
    return parts[poly], source[poly]


def widths_for(classes: Mapping[str, float] | None = None) -> dict[str, float]:
    """The default width table updated with ``classes`` (for docs and the CLI)."""
    return {**DEFAULT_WIDTHS_M, **dict(classes or {})}
