"""Poisson-disk patch centres inside parcels (Bridson 2007).

Sample designs that cut fixed-size image patches from irregular parcels want patches
that (a) lie inside the parcel, (b) do not pile up on each other and (c) grow in number
with the parcel's area. Poisson-disk sampling gives all three: centres keep a minimum
distance ``r`` from each other and fill the parcel until no further point fits.

Per parcel we run Bridson's algorithm ("Fast Poisson disk sampling in arbitrary
dimensions", SIGGRAPH 2007 sketch): a background grid with cells of side ``r / sqrt(2)``
holds at most one point each, so the distance check looks at the 5 x 5 neighbouring
cells only; each active point draws ``k = 30`` candidates uniformly in the annulus
``[r, 2r]`` and the first candidate that keeps the distance and fits becomes a new
point (otherwise the active point retires). The ``k`` candidates are checked at once
(numpy distances, ``shapely.contains_xy`` and vectorised square tests).

Departures from the paper, for irregular domains:

- candidates are drawn only inside the parcel eroded by ``(2 * min_inside - 1)`` times
  half the patch size (mitre joins, so an axis-aligned rectangle erodes to exactly the
  rectangle whose squares fit), and each candidate's square is then checked exactly:
  its share of area inside the parcel must be at least ``min_inside``;
- every part of a multi-part eroded parcel is seeded, and when no active point is left
  a few passes of darts drawn uniformly over the eroded parcel (by its constrained
  Delaunay triangles) restart the growth, so narrow strips and areas behind narrow
  necks, which annulus candidates rarely hit, are filled too;
- a parcel in which no square fits still gets one patch, at its pole of inaccessibility
  (``shapely.ops.polylabel``), flagged ``fallback=True``.

Patches are axis-aligned squares in the parcels' (metric) CRS, as chips cut from a
north-up raster are. With the default ``radius_m = patch_size_m`` centres are a patch
side apart, so patches overlap little (squares whose centres are diagonal neighbours
can still share a corner).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.ops import polylabel

from landforge.errors import InputError
from landforge.io.vector import require_column, require_crs, to_metric
from landforge.parcels.options import PatchOptions

__all__ = ["poisson_disk", "poisson_patches", "patch_squares"]

_K = 30  # Bridson's candidates per active point
_TOL = 1e-9  # slack on the inside fraction, for float noise on shared edges
_MAX_DARTS = 20_000  # uniform darts per refill pass
_REFILL_PASSES = 4


def patch_squares(points: Any, size: float) -> gpd.GeoSeries:
    """Axis-aligned squares of side ``size`` centred on ``points``.

    Args:
        points: a GeoDataFrame / GeoSeries of points (its CRS is kept) or an array of
            shapely points.
        size: square side in CRS units (metres for :func:`poisson_patches` output).

    Returns:
        A GeoSeries of polygons aligned with ``points``.
    """
    geoms = points.geometry if hasattr(points, "geometry") else gpd.GeoSeries(points)
    crs = getattr(geoms, "crs", None)
    arr = np.asarray(geoms.values)
    x, y = shapely.get_x(arr), shapely.get_y(arr)
    h = size / 2.0
    squares = shapely.box(x - h, y - h, x + h, y + h)
    index = geoms.index if isinstance(geoms, pd.Series) else None
    return gpd.GeoSeries(squares, index=index, crs=crs)


def poisson_patches(
    parcels: gpd.GeoDataFrame,
    opts: PatchOptions | Mapping[str, Any] | None = None,
    **overrides: Any,
) -> gpd.GeoDataFrame:
    """Poisson-disk patch centres inside each parcel.

    Args:
        parcels: polygon layer with a CRS; a geographic layer is reprojected to its
            local UTM zone (the output is in the metric CRS).
        opts: options, see :class:`~landforge.parcels.options.PatchOptions`:
            ``patch_size_m`` (side of the square patch in metres, required),
            ``radius_m`` (minimum distance between centres in one parcel, default
            ``patch_size_m``), ``min_inside`` (smallest share of a patch's area inside
            its parcel; 1.0: wholly inside), ``max_per_parcel`` (keep at most this many
            patches per parcel: a seeded random subset of the Poisson points, so the
            spacing is kept), ``seed`` (parcel ``i`` uses ``(seed, i)``, so a parcel's
            patches do not depend on the other parcels) and ``id_col`` (parcel id
            column copied to the output as ``parcel_id``; default the 1-based row
            position when the column is absent).
        **overrides: option fields replacing those of ``opts``
            (``poisson_patches(parcels, patch_size_m=100)``).

    Returns:
        GeoDataFrame of points: ``patch_id`` (1-based), ``parcel_id``, ``fallback``
        (True where no patch fitted and the pole of inaccessibility was used),
        ``inside_fraction`` (share of the patch square inside the parcel), geometry =
        patch centre. :func:`patch_squares` turns it into the patch polygons.

    Raises:
        OptionError: a bad option value.
        InputError: no CRS or a non-polygon layer.
    """
    o = PatchOptions.build(opts, **overrides)
    patch_size_m, min_inside, max_per_parcel = o.patch_size_m, o.min_inside, o.max_per_parcel
    seed, id_col = o.seed, o.id_col
    radius = float(patch_size_m if o.radius_m is None else o.radius_m)
    require_crs(parcels, "parcels")
    metric = to_metric(parcels)
    geoms = metric.geometry.values
    kinds = set(shapely.get_type_id(geoms[~shapely.is_missing(geoms)]).tolist())
    if not kinds <= {3, 6}:  # Polygon, MultiPolygon
        raise InputError("parcels", "patches need a polygon layer")
    if id_col != "parcel_id":
        require_column(metric, id_col, "parcels", option="id_col")
    ids = metric[id_col].to_numpy() if id_col in metric else np.arange(1, len(metric) + 1)

    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    pids: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    fallback: list[np.ndarray] = []
    skipped = 0
    for i, geom in enumerate(geoms):
        if geom is None or geom.is_empty or geom.area <= 0:
            skipped += 1
            continue
        rng = np.random.default_rng([seed, i])
        pts = poisson_disk(geom, radius, patch_size_m, min_inside, rng)
        used_fallback = len(pts) == 0
        if used_fallback:
            pts = _pole(geom, patch_size_m)
        elif max_per_parcel is not None and len(pts) > max_per_parcel:
            pts = pts[np.sort(rng.choice(len(pts), max_per_parcel, replace=False))]
        xs.append(pts[:, 0])
        ys.append(pts[:, 1])
        pids.append(np.repeat(ids[i : i + 1], len(pts)))
        rows.append(np.full(len(pts), i))
        fallback.append(np.full(len(pts), used_fallback))
    if skipped:
        warnings.warn(f"{skipped} empty parcel(s) got no patch", stacklevel=2)

    x = np.concatenate(xs) if xs else np.empty(0)
    y = np.concatenate(ys) if ys else np.empty(0)
    points = shapely.points(x, y) if len(x) else np.empty(0, dtype=object)
    out = gpd.GeoDataFrame(
        {
            "patch_id": np.arange(1, len(x) + 1, dtype=np.int64),
            "parcel_id": np.concatenate(pids) if pids else np.empty(0, dtype=np.int64),
            "fallback": np.concatenate(fallback) if fallback else np.empty(0, dtype=bool),
        },
        geometry=gpd.GeoSeries(points, crs=metric.crs).values,
        crs=metric.crs,
    )
    owners = geoms[np.concatenate(rows)] if rows else geoms[:0]
    squares = np.asarray(patch_squares(out, patch_size_m).values)
    out["inside_fraction"] = np.asarray(
        shapely.area(shapely.intersection(squares, np.asarray(owners))) / patch_size_m**2,
        dtype=np.float64,
    )
    return out[["patch_id", "parcel_id", "fallback", "inside_fraction", "geometry"]]


def poisson_disk(
    polygon: Any,
    radius: float,
    patch_size: float = 0.0,
    min_inside: float = 1.0,
    rng: np.random.Generator | None = None,
    k: int = _K,
) -> np.ndarray:
    """Bridson Poisson-disk points in ``polygon`` whose ``patch_size`` squares fit.

    Args:
        polygon: a shapely (Multi)Polygon in metric coordinates.
        radius: minimum distance between points.
        patch_size: side of the square around each point that must lie inside
            ``polygon`` for at least ``min_inside`` of its area (0: points only).
        min_inside: see above.
        rng: random generator (default: seeded with 0).
        k: candidates per active point.

    Returns:
        ``(n, 2)`` float array of points (possibly empty when nothing fits).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    half = patch_size / 2.0
    erosion = half * max(2.0 * min_inside - 1.0, 0.0)
    region = polygon.buffer(-erosion, join_style="mitre") if erosion > 0 else polygon
    if region.is_empty:
        return np.empty((0, 2))
    shapely.prepare(region)
    shapely.prepare(polygon)

    def fits(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
        ok = shapely.contains_xy(region, cx, cy)
        if half > 0 and ok.any():
            sq = shapely.box(cx[ok] - half, cy[ok] - half, cx[ok] + half, cy[ok] + half)
            if min_inside >= 1.0:
                inside = shapely.covers(polygon, sq)
            else:
                inside = shapely.area(shapely.intersection(sq, polygon)) / patch_size**2
                inside = inside >= min_inside - _TOL
            ok[np.flatnonzero(ok)[~inside]] = False
        return ok

    x0, y0, x1, y1 = region.bounds
    cell = radius / math.sqrt(2.0)
    nx = max(1, math.ceil((x1 - x0) / cell) + 1)
    ny = max(1, math.ceil((y1 - y0) / cell) + 1)
    grid = np.full((ny + 4, nx + 4), -1, dtype=np.int64)  # padded by 2 cells each side
    pts = np.zeros((min(max(16, nx * ny), 4096), 2))
    n = 0
    active: list[int] = []
    offsets = np.array([(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)])

    def cell_of(px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.floor((py - y0) / cell).astype(np.int64) + 2,
            np.floor((px - x0) / cell).astype(np.int64) + 2,
        )

    def far_enough(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
        ri, ci = cell_of(cx, cy)
        inside = (ri >= 2) & (ri < ny + 2) & (ci >= 2) & (ci < nx + 2)
        ri, ci = np.clip(ri, 2, ny + 1), np.clip(ci, 2, nx + 1)
        near = grid[ri[:, None] + offsets[:, 0], ci[:, None] + offsets[:, 1]]  # (m, 25)
        taken = near >= 0
        d2 = (pts[near, 0] - cx[:, None]) ** 2 + (pts[near, 1] - cy[:, None]) ** 2
        return inside & ~(taken & (d2 < radius * radius)).any(axis=1)

    def add(px: float, py: float) -> None:
        nonlocal n, pts
        if n == len(pts):
            pts = np.concatenate([pts, np.zeros_like(pts)])
        pts[n] = px, py
        ri, ci = cell_of(np.array([px]), np.array([py]))
        grid[ri[0], ci[0]] = n
        active.append(n)
        n += 1

    def grow() -> None:
        while active:
            j = int(rng.integers(len(active)))
            px, py = pts[active[j]]
            # uniform in the annulus [r, 2r] (area-uniform radius)
            rad = radius * np.sqrt(1.0 + 3.0 * rng.random(k))
            ang = 2.0 * np.pi * rng.random(k)
            cx, cy = px + rad * np.cos(ang), py + rad * np.sin(ang)
            ok = far_enough(cx, cy)
            if ok.any():
                ok[ok] = fits(cx[ok], cy[ok])
            if ok.any():
                first = int(np.argmax(ok))
                add(float(cx[first]), float(cy[first]))
            else:
                active[j] = active[-1]
                active.pop()

    # Seed every part of the eroded region (largest first), trying a few uniform darts
    # before the part's representative point.
    parts = sorted(shapely.get_parts(region), key=lambda g: -g.area)
    for part in parts:
        bx0, by0, bx1, by1 = part.bounds
        cand_x = np.append(bx0 + (bx1 - bx0) * rng.random(k), part.representative_point().x)
        cand_y = np.append(by0 + (by1 - by0) * rng.random(k), part.representative_point().y)
        in_part = shapely.contains_xy(part, cand_x, cand_y)
        in_part[-1] = True
        ok = in_part & far_enough(cand_x, cand_y)
        if ok.any():
            ok[ok] = fits(cand_x[ok], cand_y[ok])
        if ok.any():
            first = int(np.argmax(ok))
            add(float(cand_x[first]), float(cand_y[first]))
            grow()
    # Annulus candidates rarely land in narrow strips or behind narrow necks; refill
    # with darts drawn uniformly over the region (by triangles) and grow from them.
    darts = int(min(max(4 * k, 8 * region.area / (radius * radius)), _MAX_DARTS))
    for _ in range(_REFILL_PASSES):
        dx, dy = _uniform_in(region, darts, rng)
        ok = far_enough(dx, dy)
        if ok.any():
            ok[ok] = fits(dx[ok], dy[ok])
        added = 0
        for j in np.flatnonzero(ok):
            if far_enough(dx[j : j + 1], dy[j : j + 1])[0]:
                add(float(dx[j]), float(dy[j]))
                grow()
                added += 1
        if added == 0:
            break
    return pts[:n].copy()


def _uniform_in(region: Any, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``m`` points uniform over ``region`` (area-weighted constrained Delaunay triangles)."""
    tris = shapely.get_parts(shapely.constrained_delaunay_triangles(region))
    tris = tris[shapely.area(tris) > 0]
    if len(tris) == 0:
        return np.empty(0), np.empty(0)
    corners = np.stack([shapely.get_coordinates(t)[:3] for t in tris])  # (T, 3, 2)
    area = shapely.area(tris)
    pick = rng.choice(len(tris), size=m, p=area / area.sum())
    u, v = rng.random(m), rng.random(m)
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    a, b, c = corners[pick, 0], corners[pick, 1], corners[pick, 2]
    xy = a + u[:, None] * (b - a) + v[:, None] * (c - a)
    return xy[:, 0], xy[:, 1]


def _pole(geom: Any, size: float) -> np.ndarray:
    """The pole of inaccessibility of the largest part (a point always inside)."""
    part = max(shapely.get_parts(geom), key=lambda g: g.area)
    tol = max(size / 100.0, math.sqrt(part.area) / 1000.0, 1e-6)
    try:
        p = polylabel(part, tolerance=tol)
    except Exception:  # degenerate ring: fall back to a point on the surface
        p = part.point_on_surface()
    if not part.covers(p):
        p = part.point_on_surface()
    return np.array([[p.x, p.y]])
