"""The city centre and the districts of parcels: ``dist_centre_m`` and ``district_id``.

:func:`find_centre` gives the point ``dist_centre_m`` is measured from (given, the peak
of the road/POI density of :func:`estimate_centre`, or the boundary's centroid);
:func:`district_polygons` and :func:`assign_districts` give each parcel the district
holding its representative point.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from landforge.errors import InputError, OptionError
from landforge.io.vector import require_crs
from landforge.parcels.options import ParcelOptions

__all__ = ["assign_districts", "district_polygons", "estimate_centre", "find_centre"]


def find_centre(
    opts: ParcelOptions,
    roads_crs: Any,
    crs: CRS,
    area: shapely.Geometry,
    lines: np.ndarray,
    pois: Any = None,
) -> tuple[shapely.Geometry, str]:
    """The centre in ``crs`` and how it was found (``"given"``, ``"density"``, ``"centroid"``).

    Args:
        opts: ``centre`` (in ``centre_crs``, default ``roads_crs``), else
            ``centre_method`` with ``centre_cell_m`` and ``centre_bandwidth_m``.
        roads_crs: CRS of the input roads.
        crs: the working (metric) CRS.
        area: the boundary in ``crs`` (for ``"centroid"``).
        lines: road lines in ``crs`` (for ``"density"``).
        pois: optional POI points (any CRS) adding to the density.
    """
    if opts.centre is not None:
        src = CRS.from_user_input(opts.centre_crs if opts.centre_crs is not None else roads_crs)
        x, y = Transformer.from_crs(src, crs, always_xy=True).transform(*opts.centre)
        return shapely.Point(x, y), "given"
    if opts.centre_method == "centroid":
        return shapely.centroid(area), "centroid"
    if opts.centre_method != "density":  # pragma: no cover - the model allows only these
        raise OptionError("centre_method", f"use density or centroid, got {opts.centre_method!r}")
    points = None
    if pois is not None:
        require_crs(pois, "pois")
        points = pois.to_crs(crs).geometry.values
    x, y = estimate_centre(
        lines, points, cell_m=opts.centre_cell_m, bandwidth_m=opts.centre_bandwidth_m
    )
    return shapely.Point(x, y), "density"


def estimate_centre(
    roads: Any,
    pois: Any = None,
    cell_m: float = 100.0,
    bandwidth_m: float = 500.0,
) -> tuple[float, float]:
    """The city centre as the peak of the road-length (+ POI) kernel density.

    Road lines are cut into pieces of at most ``cell_m / 2``; each piece adds its length
    at its midpoint to a histogram on a ``cell_m`` grid, which is smoothed by a Gaussian
    of sigma ``bandwidth_m`` (``scipy.ndimage.gaussian_filter``). POI points, if given,
    add a second histogram normalised to the same total, so roads and POIs weigh
    equally. The grid is centred on the middle of the inputs' extent (a symmetric network
    peaks exactly at its middle); the result is the centre of the densest cell.

    Args:
        roads: road lines in a metric CRS (array of geometries or a GeoSeries/-DataFrame).
        pois: optional points in the same CRS.
        cell_m: grid cell (m); grown where the grid would exceed 1000 x 1000 cells.
        bandwidth_m: Gaussian sigma (m).

    Returns:
        (x, y) of the density peak.

    Raises:
        OptionError: a cell or bandwidth <= 0 (named as the fields of ParcelOptions).
        InputError: no road lines with a length.
    """
    from scipy.ndimage import gaussian_filter

    if not cell_m > 0:
        raise OptionError("centre_cell_m", f"must be > 0, got {cell_m}")
    if not bandwidth_m > 0:
        raise OptionError("centre_bandwidth_m", f"must be > 0, got {bandwidth_m}")
    lines = shapely.get_parts(_geometries(roads))
    lines = lines[shapely.length(lines) > 0]
    if len(lines) == 0:
        raise InputError("roads", "no road lines to estimate the centre from")
    coords, at = shapely.get_coordinates(shapely.segmentize(lines, cell_m / 2), return_index=True)
    same = at[1:] == at[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    mid = (a + b) / 2
    seg = np.hypot(*(b - a).T)
    points = np.empty((0, 2))
    if pois is not None:
        pts = _geometries(pois)
        if len(pts):
            points = shapely.get_coordinates(shapely.centroid(pts))
    allxy = np.vstack([mid, points])
    lo, hi = allxy.min(axis=0), allxy.max(axis=0)
    mid_xy = (lo + hi) / 2
    cell = max(float(cell_m), float((hi - lo).max()) / 999.0)
    half_n = np.ceil((hi - lo) / 2 / cell + 0.5).astype(int)  # cells each side of the middle
    n = 2 * half_n + 1
    edges = [mid_xy[k] + (np.arange(n[k] + 1) - n[k] / 2) * cell for k in range(2)]
    density, _, _ = np.histogram2d(mid[:, 0], mid[:, 1], bins=edges, weights=seg)
    if len(points):
        extra, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=edges)
        density = density / density.sum() + extra / extra.sum()
    smooth = gaussian_filter(density, sigma=bandwidth_m / cell, mode="constant")
    i, j = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    return (
        float(mid_xy[0] + (i - half_n[0]) * cell),
        float(mid_xy[1] + (j - half_n[1]) * cell),
    )


def _geometries(data: Any) -> np.ndarray:
    """The non-empty geometries of a GeoDataFrame, GeoSeries or geometry array."""
    geoms = data.geometry.values if hasattr(data, "geometry") else data
    geoms = np.asarray(geoms, dtype=object)
    return geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]


def district_polygons(
    districts: Any, crs: CRS, district_col: str = "district_id"
) -> tuple[np.ndarray, np.ndarray] | None:
    """District polygons and ids in ``crs`` (None without districts).

    Ids come from ``district_col``, or are the row number + 1 if there is no such column.
    """
    if districts is None:
        return None
    require_crs(districts, "districts")
    d = districts.to_crs(crs)
    geoms = d.geometry.values
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if district_col in d.columns:
        ids = d[district_col].to_numpy()
    else:
        ids = np.arange(1, len(d) + 1, dtype=np.int64)
    geoms, ids = np.asarray(geoms[ok], dtype=object), ids[ok]
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    if len(geoms) == 0:
        raise InputError("districts", "district layer has no polygon")
    return geoms, ids


def assign_districts(parcels: np.ndarray, polygons: np.ndarray, ids: np.ndarray) -> pd.Series:
    """The id of the district holding each parcel's representative point.

    A point in no district (a parcel outside every district polygon) takes the nearest
    district; a point on a shared edge takes the first district in input order.
    """
    if len(parcels) == 0 or len(polygons) == 0:
        return pd.Series(np.full(len(parcels), None, dtype=object))
    points = shapely.point_on_surface(parcels)
    tree = shapely.STRtree(polygons)
    pt, poly = tree.query(points, predicate="intersects")
    which = np.full(len(parcels), len(polygons), dtype=np.int64)
    np.minimum.at(which, pt, poly)  # the first district in input order
    missing = np.flatnonzero(which == len(polygons))
    if len(missing):
        near_pt, near_poly = tree.query_nearest(points[missing], all_matches=False)
        which[missing[near_pt]] = near_poly
    return pd.Series(ids[which])
