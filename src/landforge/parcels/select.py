"""Parcel selection for a sample dataset: area filter, then location sampling (MSLU-100K).

1. **Area filter**: keep parcels with ``min_area_m2 <= area <= max_area_m2`` (0: no
   bound). The default, 38,931.315-676,818.47 m2, is the optimum range of the MSLU-100K
   paper.
2. **Location sampling**: each candidate gets a weight mixing distance to the centre and
   chance::

       w_d = exp(-d / (dispersion * d_max))      closer to the centre = higher
       w_r ~ U(0, 1)                             one seeded draw per parcel
       w   = a * w_d / sum(w_d) + b * w_r / sum(w_r)      (a, b) = weights, 0.7 : 0.3

   ``d`` is the distance of the parcel centroid to the centre and ``d_max`` the largest
   such distance; a small ``dispersion`` concentrates the sample in the centre, a large
   one spreads it (``dispersion -> inf`` makes ``w_d`` uniform). ``n`` parcels are drawn
   without replacement with probabilities ``w`` (seeded).

The centre (:func:`select_centre`) is, in this order: the ``centre`` option; the centre
``parcels generate`` recorded (``attrs["centre"]``, kept in a GeoParquet's metadata; a
GeoPackage keeps only the ``dist_centre_m`` column, from which the centre is recovered
by least squares); else the area-weighted centroid of the parcels, with a warning. A
recorded centre is used only when it reproduces ``dist_centre_m`` to 1 m (a reprojected
or edited file does not).

The options are :class:`~landforge.parcels.options.SelectOptions`.

:func:`selection_report` compares the set before and after: counts, area quantiles,
class balance, mixed-use share and spatial coverage (convex hull of the centroids and
occupancy of a grid over the full set's extent).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from landforge.errors import InputError
from landforge.io.vector import require_column, require_crs, to_metric
from landforge.parcels.options import MSLU_AREA_RANGE, SelectOptions

__all__ = [
    "CENTRE_SOURCES",
    "MSLU_AREA_RANGE",
    "select_centre",
    "select_parcels",
    "selection_report",
]

#: How :func:`select_centre` found the centre -> the words the stage prints.
CENTRE_SOURCES = {
    "recorded": "recorded by parcels generate",
    "given": "given",
    "centroid": "centroid: no recorded centre",
}

#: A recorded centre must reproduce ``dist_centre_m`` to this many metres.
_CENTRE_TOL_M = 1.0


def select_parcels(
    parcels: gpd.GeoDataFrame,
    opts: SelectOptions | Mapping[str, Any] | None = None,
    **overrides: Any,
) -> gpd.GeoDataFrame:
    """Filter parcels by area and draw a centre-weighted random sample of them.

    Args:
        parcels: parcel polygons in any CRS (areas and distances are taken in a local
            metric CRS).
        opts: options, see :class:`~landforge.parcels.options.SelectOptions`:
            ``min_area_m2`` / ``max_area_m2`` (0 = open end), ``n`` or ``fraction``
            (default every parcel passing the filter), ``weights`` (distance, random),
            ``dispersion`` (decay of the distance weight as a fraction of ``d_max``),
            ``seed`` (of the random weights and of the draw) and ``centre`` /
            ``centre_crs`` (default: the centre recorded by ``parcels generate``, see
            :func:`select_centre`).
        **overrides: option fields replacing those of ``opts`` (``n=500``,
            ``centre=(x, y)``; a shapely Point is taken as its x, y).

    Returns:
        The drawn rows of ``parcels`` (original CRS, index and columns, original order)
        with ``area_m2``, ``dist_centre_m``, ``select_weight`` (normalised ``w``) and
        ``select_rank`` (1 = drawn first) added or overwritten. ``attrs["centre"]`` is
        the centre used (x, y in the parcels' CRS) and ``attrs["centre_source"]`` how it
        was found (a key of :data:`CENTRE_SOURCES`).

    Raises:
        OptionError: a bad option value.
        InputError: no CRS, or no parcel in the area range.
    """
    if isinstance(overrides.get("centre"), shapely.Point):
        point = overrides["centre"]
        overrides["centre"] = (point.x, point.y)
    o = SelectOptions.build(opts, **overrides)
    require_crs(parcels, "parcels")
    n, fraction, dispersion, seed = o.n, o.fraction, o.dispersion, o.seed
    a, b = (float(w) for w in o.weights)

    metric = to_metric(parcels)
    geoms = metric.geometry.values
    area = shapely.area(geoms)
    centroids = shapely.centroid(geoms)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    lo, hi = o.area_range()
    if lo is not None:
        keep &= area >= lo
    if hi is not None:
        keep &= area <= hi
    if not keep.any():
        raise InputError(
            "parcels",
            f"no parcel has an area in [{lo if lo is not None else 0:g}, "
            f"{hi if hi is not None else math.inf:g}] m2 "
            f"(areas range {area.min() if len(area) else 0:.0f}-"
            f"{area.max() if len(area) else 0:.0f} m2); widen the range",
        )
    centre_pt, source = _find_centre(parcels, o, metric, stacklevel=3)
    dist = shapely.distance(centroids, centre_pt)

    idx = np.flatnonzero(keep)
    d = dist[idx]
    d_max = float(d.max())
    w_d = np.exp(-d / (dispersion * d_max)) if d_max > 0 else np.ones(len(idx))
    rng = np.random.default_rng(seed)
    w_r = rng.random(len(idx))
    w = a * w_d / w_d.sum() + b * w_r / w_r.sum()
    w = w / w.sum()

    if fraction is not None:
        k = max(1, int(round(fraction * len(idx))))
    elif n is not None:
        k = int(n)
        if k > len(idx):
            warnings.warn(
                f"asked for {k} parcels but only {len(idx)} pass the area filter; "
                "taking all of them",
                stacklevel=2,
            )
            k = len(idx)
    else:
        k = len(idx)
    # probabilities can underflow to 0 for far parcels; numpy needs k non-zero entries
    p = np.maximum(w, np.finfo(float).tiny)
    p = p / p.sum()
    drawn = rng.choice(len(idx), size=k, replace=False, p=p)
    order = np.sort(drawn)
    rank = np.empty(len(idx), dtype=np.int64)
    rank[drawn] = np.arange(1, k + 1)

    rows = idx[order]
    out = parcels.iloc[rows].copy()
    out["area_m2"] = area[rows]
    out["dist_centre_m"] = dist[rows]
    out["select_weight"] = w[order]
    out["select_rank"] = rank[order]
    out.attrs = {"centre": _to_crs(centre_pt, metric.crs, parcels.crs), "centre_source": source}
    return out


def select_centre(
    parcels: gpd.GeoDataFrame,
    opts: SelectOptions | Mapping[str, Any] | None = None,
    *,
    metric: gpd.GeoDataFrame | None = None,
    **overrides: Any,
) -> tuple[shapely.Point, str]:
    """The centre the distance weight of :func:`select_parcels` is measured from.

    In this order: the ``centre`` option (in ``centre_crs``, default the parcels' CRS);
    the centre recorded by ``parcels generate`` (``parcels.attrs["centre"]``, in the
    parcels' CRS, as a GeoParquet written by it keeps it), or else recovered from its
    ``dist_centre_m`` column (least squares; a GeoPackage keeps no metadata); else the
    area-weighted centroid of the parcels, with a warning. A recorded centre counts
    only when it reproduces ``dist_centre_m`` (where there is one) to 1 m.

    Args:
        parcels: parcel polygons with a CRS.
        opts: the selection options (only ``centre`` and ``centre_crs`` are used).
        metric: ``parcels`` already in a metric CRS (default :func:`to_metric`).
        **overrides: option fields replacing those of ``opts``.

    Returns:
        The centre as a point in the CRS of ``metric`` and how it was found:
        ``"given"``, ``"recorded"`` or ``"centroid"`` (see :data:`CENTRE_SOURCES`).

    Raises:
        OptionError: a bad option value.
        InputError: the parcels have no CRS.
    """
    o = SelectOptions.build(opts, **overrides)
    require_crs(parcels, "parcels")
    return _find_centre(parcels, o, metric if metric is not None else to_metric(parcels), 3)


def _find_centre(
    parcels: gpd.GeoDataFrame, o: SelectOptions, metric: gpd.GeoDataFrame, stacklevel: int
) -> tuple[shapely.Point, str]:
    """:func:`select_centre`; its warning points ``stacklevel`` frames up."""
    if o.centre is not None:
        src = o.centre_crs if o.centre_crs is not None else parcels.crs
        return _to_point(o.centre, src, metric.crs), "given"
    geoms = metric.geometry.values
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    centroids = shapely.centroid(geoms[ok])
    recorded, problem = _recorded_centre(parcels, metric, centroids, ok)
    if recorded is not None:
        return recorded, "recorded"
    warnings.warn(
        f"{problem}; the distance weight uses the parcels' area-weighted centroid "
        "(give a centre to choose one)",
        stacklevel=stacklevel,
    )
    area = shapely.area(geoms[ok])
    if len(centroids) == 0 or area.sum() <= 0:
        return shapely.centroid(shapely.union_all(centroids)), "centroid"
    x = np.average(shapely.get_x(centroids), weights=area)
    y = np.average(shapely.get_y(centroids), weights=area)
    return shapely.Point(x, y), "centroid"


def _recorded_centre(
    parcels: gpd.GeoDataFrame, metric: gpd.GeoDataFrame, centroids: np.ndarray, ok: np.ndarray
) -> tuple[shapely.Point | None, str]:
    """The centre ``parcels generate`` recorded (metric CRS), or None and why not."""
    centres: list[shapely.Point] = []  # candidates, best first
    attr = parcels.attrs.get("centre")
    if attr is not None:
        try:
            x, y = (float(v) for v in attr)
        except (TypeError, ValueError):
            x = y = math.nan
        if math.isfinite(x) and math.isfinite(y):
            centres.append(_to_point((x, y), parcels.crs, metric.crs))
    if "dist_centre_m" not in parcels.columns:
        if centres:
            return centres[0], ""
        return None, "no centre recorded by parcels generate (no centre, no dist_centre_m)"
    d = np.asarray(parcels["dist_centre_m"], dtype=float)[ok]
    good = np.isfinite(d)
    c, d = centroids[good], d[good]
    fitted = _trilaterate(c, d)
    if fitted is not None:
        centres.append(fitted)
    for point in centres:
        if _fits(point, c, d):
            return point, ""
    return None, (
        "the centre recorded by parcels generate does not reproduce dist_centre_m "
        "(file reprojected or edited?)"
    )


def _trilaterate(centroids: np.ndarray, d: np.ndarray) -> shapely.Point | None:
    """The point whose distances to ``centroids`` are ``d`` (least squares), or None.

    ``|c_i - p|^2 = d_i^2`` is linear in ``(p, |p|^2)``; coordinates are taken relative
    to the mean centroid to keep the squares small.
    """
    if len(d) < 3:
        return None
    xy = np.column_stack([shapely.get_x(centroids), shapely.get_y(centroids)])
    m = xy.mean(axis=0)
    c = xy - m
    a = np.column_stack([-2 * c, np.ones(len(c))])
    b = d**2 - (c**2).sum(axis=1)
    sol, _, rank, _ = np.linalg.lstsq(a, b, rcond=None)
    if rank < 3 or not np.all(np.isfinite(sol)):
        return None
    return shapely.Point(sol[0] + m[0], sol[1] + m[1])


def _fits(point: shapely.Point, centroids: np.ndarray, d: np.ndarray) -> bool:
    """Whether ``point`` is ``d`` away from ``centroids`` (to ``_CENTRE_TOL_M``)."""
    if len(d) == 0:
        return True
    err = np.abs(shapely.distance(centroids, point) - d)
    return bool(np.all(err <= _CENTRE_TOL_M))


def _to_point(xy: tuple[float, float], src: Any, dst: Any) -> shapely.Point:
    """(x, y) in CRS ``src`` as a point in CRS ``dst`` (unchanged when they are equal)."""
    point = shapely.Point(*xy)
    if pyproj.CRS.from_user_input(src) == pyproj.CRS.from_user_input(dst):
        return point
    return gpd.GeoSeries([point], crs=src).to_crs(dst).iloc[0]


def _to_crs(point: shapely.Point, src: Any, dst: Any) -> tuple[float, float]:
    """``point`` in CRS ``src`` as (x, y) in CRS ``dst``."""
    out = _to_point((point.x, point.y), src, dst)
    return (float(out.x), float(out.y))


def selection_report(
    before: gpd.GeoDataFrame,
    after: gpd.GeoDataFrame,
    label_col: str | None = None,
    grid_cells: int = 10,
) -> dict[str, Any]:
    """Compare a parcel set before and after selection (JSON-ready).

    Args:
        before: all parcels.
        after: the selected parcels.
        label_col: class column for the class balance (missing values count as
            ``"unlabelled"``); the mixed-use share uses a boolean ``mixed`` column when
            present.
        grid_cells: the extent of ``before`` is cut into ``grid_cells`` x ``grid_cells``
            cells; ``grid_occupancy`` = share of the cells holding a centroid of
            ``before`` that also hold one of the set.

    Returns:
        ``{"before": {...}, "after": {...}}``, each with ``count``, ``area_km2``,
        ``area_m2_quantiles`` (5, 25, 50, 75, 95 %), ``hull_km2`` (convex hull of the
        centroids), ``hull_share`` (of ``before``'s hull), ``grid_occupancy``, and
        ``classes`` ({class: share}) and ``mixed_share`` when available.

    Raises:
        OptionError: on ``label_col`` when a set lacks that column.
    """
    require_crs(before, "parcels")
    require_crs(after, "selected parcels")
    m_before = to_metric(before)
    m_after = to_metric(after, m_before.crs)
    c_before = shapely.centroid(m_before.geometry.values)
    x0, y0, x1, y1 = shapely.total_bounds(c_before) if len(c_before) else (0, 0, 0, 0)
    hull_before = shapely.area(shapely.convex_hull(shapely.multipoints(c_before)))

    def cells(c: np.ndarray) -> set[int]:
        if len(c) == 0:
            return set()
        gx = np.clip(((shapely.get_x(c) - x0) / max(x1 - x0, 1e-9) * grid_cells), 0, None)
        gy = np.clip(((shapely.get_y(c) - y0) / max(y1 - y0, 1e-9) * grid_cells), 0, None)
        gx = np.minimum(gx.astype(int), grid_cells - 1)
        gy = np.minimum(gy.astype(int), grid_cells - 1)
        return set((gy * grid_cells + gx).tolist())

    occupied_before = cells(c_before)

    def summary(gdf: gpd.GeoDataFrame, metric: gpd.GeoDataFrame) -> dict[str, Any]:
        geoms = metric.geometry.values
        area = shapely.area(geoms)
        cent = shapely.centroid(geoms)
        hull = (
            float(shapely.area(shapely.convex_hull(shapely.multipoints(cent))))
            if len(cent)
            else 0.0
        )
        q = np.quantile(area, [0.05, 0.25, 0.5, 0.75, 0.95]) if len(area) else [math.nan] * 5
        out: dict[str, Any] = {
            "count": int(len(gdf)),
            "area_km2": float(area.sum()) / 1e6,
            "area_m2_quantiles": {
                f"p{p}": float(v) for p, v in zip((5, 25, 50, 75, 95), q, strict=True)
            },
            "hull_km2": hull / 1e6,
            "hull_share": hull / hull_before if hull_before > 0 else math.nan,
            "grid_occupancy": (
                len(cells(cent) & occupied_before) / len(occupied_before)
                if occupied_before
                else math.nan
            ),
        }
        if label_col is not None:
            require_column(gdf, label_col, "parcels", option="label_col")
            labels = gdf[label_col].astype(object).where(gdf[label_col].notna(), "unlabelled")
            shares = labels.astype(str).value_counts(normalize=True).sort_index()
            out["classes"] = {str(k): float(v) for k, v in shares.items()}
        if "mixed" in gdf.columns:
            out["mixed_share"] = float(gdf["mixed"].astype(bool).mean()) if len(gdf) else math.nan
        return out

    return {"before": summary(before, m_before), "after": summary(after, m_after)}
