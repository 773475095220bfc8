"""Synthetic road networks for parcel tests: a rectilinear grid of roads in UTM 50N."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import shapely

CRS = "EPSG:32650"
X0, Y0 = 500_000.0, 3_000_000.0  # inside UTM zone 50N


def road_grid(
    xs: Sequence[float],
    ys: Sequence[float],
    classes: Sequence[str] | None = None,
    overhang: float = 50.0,
) -> gpd.GeoDataFrame:
    """Vertical roads at ``xs`` and horizontal roads at ``ys`` (offsets from X0, Y0).

    Lines overhang the grid by ``overhang`` so their round caps lie outside a boundary
    drawn through the outermost roads.
    """
    lo_x, hi_x = min(xs) - overhang, max(xs) + overhang
    lo_y, hi_y = min(ys) - overhang, max(ys) + overhang
    lines = [shapely.LineString([(X0 + x, Y0 + lo_y), (X0 + x, Y0 + hi_y)]) for x in xs]
    lines += [shapely.LineString([(X0 + lo_x, Y0 + y), (X0 + hi_x, Y0 + y)]) for y in ys]
    cls = list(classes) if classes is not None else ["residential"] * len(lines)
    return gpd.GeoDataFrame({"road_class": cls[: len(lines)]}, geometry=lines, crs=CRS)


def box(x0: float, y0: float, x1: float, y1: float) -> gpd.GeoDataFrame:
    """A one-polygon boundary layer (offsets from X0, Y0)."""
    return gpd.GeoDataFrame(geometry=[shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)], crs=CRS)
