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
import shapely

from landforge.errors import InputError
from landforge.io.vector import require_column, require_crs, to_metric
from landforge.parcels.options import MSLU_AREA_RANGE, SelectOptions

__all__ = ["MSLU_AREA_RANGE", "select_parcels", "selection_report"]


def select_parcels(
    parcels: gpd.GeoDataFrame,
    opts: SelectOptions | Mapping[str, Any] | None = None,
    *,
    centre: Any = None,
    **overrides: Any,
) -> gpd.GeoDataFrame:
    """Filter parcels by area and draw a centre-weighted random sample of them.

    Args:
        parcels: parcel polygons in any CRS (areas and distances are taken in a local
            metric CRS).
        opts: options, see :class:`~landforge.parcels.options.SelectOptions`:
            ``min_area_m2`` / ``max_area_m2`` (0 = open end), ``n`` or ``fraction``
            (default every parcel passing the filter), ``weights`` (distance, random),
            ``dispersion`` (decay of the distance weight as a fraction of ``d_max``) and
            ``seed`` (of the random weights and of the draw).
        centre: (x, y) in the parcels' CRS or a shapely Point; default the area-weighted
            centroid of all input parcels.
        **overrides: option fields replacing those of ``opts`` (``n=500``).

    Returns:
        The drawn rows of ``parcels`` (original CRS, index and columns, original order)
        with ``area_m2``, ``dist_centre_m``, ``select_weight`` (normalised ``w``) and
        ``select_rank`` (1 = drawn first) added or overwritten.

    Raises:
        OptionError: a bad option value.
        InputError: no CRS, or no parcel in the area range.
    """
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
    centre_pt = _centre(centre, parcels, metric, centroids, area)
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
    return out


def _centre(
    centre: Any,
    parcels: gpd.GeoDataFrame,
    metric: gpd.GeoDataFrame,
    centroids: np.ndarray,
    area: np.ndarray,
) -> Any:
    """The centre as a point in the metric CRS."""
    if centre is None:
        if area.sum() <= 0:
            return shapely.centroid(shapely.union_all(centroids))
        x = np.average(shapely.get_x(centroids), weights=area)
        y = np.average(shapely.get_y(centroids), weights=area)
        return shapely.Point(x, y)
    point = centre if isinstance(centre, shapely.Point) else shapely.Point(*centre)
    return gpd.GeoSeries([point], crs=parcels.crs).to_crs(metric.crs).iloc[0]


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
