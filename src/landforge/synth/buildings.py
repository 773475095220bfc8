"""Building footprints inside parcels.

Rectangles in rows aligned with the parcel's long axis (its minimum rotated rectangle),
with sizes, spacing, set-back and heights by use: slab mid-rises with sun spacing in
residential parcels, large blocks in the commercial core, very large sheds in industry
and logistics, a few farmhouses on farmland and almost nothing in parks and water.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from landforge.synth.parcels import PRIMARY_OF, RCI_OF_PRIMARY

__all__ = ["BuildingStyle", "STYLES", "place_buildings", "rci_of_code"]


@dataclass(frozen=True)
class BuildingStyle:
    """How one secondary use builds: ranges are (low, high) in metres.

    Attributes:
        length, depth: footprint side along and across the parcel's long axis.
        gap, row_gap: distance between buildings in a row and between rows.
        setback: distance from the parcel edge (the road) to the first building.
        occupancy: chance that a slot that fits is built on.
        height: (median, spread) of a lognormal height, metres; clipped to >= 3 m.
    """

    length: tuple[float, float]
    depth: tuple[float, float]
    gap: tuple[float, float]
    row_gap: tuple[float, float]
    setback: float
    occupancy: float
    height: tuple[float, float]


_RES_MID = BuildingStyle((30, 60), (12, 18), (8, 16), (14, 22), 5, 0.92, (33, 0.4))
_PUBLIC = BuildingStyle((35, 70), (14, 22), (20, 35), (25, 40), 8, 0.8, (16, 0.3))
STYLES: dict[str, BuildingStyle] = {
    "R1": BuildingStyle((12, 18), (9, 13), (8, 12), (10, 14), 5, 0.85, (9, 0.25)),
    "R2": _RES_MID,
    "R3": BuildingStyle((10, 18), (8, 12), (3, 5), (4, 7), 2, 0.8, (10, 0.3)),
    "B1": BuildingStyle((35, 70), (25, 45), (12, 22), (15, 25), 6, 0.85, (24, 0.5)),
    "B2": BuildingStyle((30, 55), (25, 40), (15, 25), (18, 28), 7, 0.85, (45, 0.6)),
    "A1": _PUBLIC, "A3": _PUBLIC, "A5": _PUBLIC,
    "G1": BuildingStyle((8, 15), (6, 10), (80, 150), (80, 150), 20, 0.25, (5, 0.2)),
    "M1": BuildingStyle((50, 120), (25, 60), (15, 25), (15, 25), 8, 0.85, (11, 0.2)),
    "M2": BuildingStyle((60, 140), (30, 60), (20, 30), (20, 30), 10, 0.8, (13, 0.25)),
    "W1": BuildingStyle((80, 180), (30, 50), (20, 30), (25, 35), 10, 0.85, (11, 0.15)),
    "E2": BuildingStyle((9, 14), (7, 10), (6, 10), (8, 12), 10, 0.03, (6, 0.2)),
    "S4": BuildingStyle((40, 80), (20, 30), (30, 50), (30, 50), 10, 0.4, (12, 0.2)),
    "X0": BuildingStyle((10, 20), (8, 14), (5, 10), (6, 10), 4, 0.5, (9, 0.3)),
}

# Uses with no buildings at all: water, natural / blank land.
_EMPTY = {"E1", "E9"}


def rci_of_code(code: str) -> str:
    """Building use of a secondary code; farmhouses and unknown land count as residential."""
    primary = PRIMARY_OF(code)
    if primary in RCI_OF_PRIMARY:
        return RCI_OF_PRIMARY[primary]
    return "commercial" if primary == "S" else "residential"


def _long_axis_angle(geoms: np.ndarray) -> np.ndarray:
    """Angle (radians) of the long side of each geometry's minimum rotated rectangle."""
    rect = shapely.minimum_rotated_rectangle(geoms)
    xy = shapely.get_coordinates(shapely.get_exterior_ring(rect)).reshape(len(geoms), 5, 2)
    e1 = xy[:, 1] - xy[:, 0]
    e2 = xy[:, 2] - xy[:, 1]
    edge = np.where((np.hypot(*e1.T) >= np.hypot(*e2.T))[:, None], e1, e2)
    return np.arctan2(edge[:, 1], edge[:, 0])


def _intervals(line_parts: np.ndarray) -> list[tuple[float, float]]:
    """x-intervals of the parts of a horizontal line clipped to a polygon."""
    out = []
    for part in line_parts:
        xy = shapely.get_coordinates(part)
        if len(xy):
            out.append((float(xy[:, 0].min()), float(xy[:, 0].max())))
    return out


def _overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for a0, a1 in a:
        for b0, b1 in b:
            lo, hi = max(a0, b0), min(a1, b1)
            if hi > lo:
                out.append((lo, hi))
    return out


def _row_layout(
    rng: np.random.Generator, style: BuildingStyle, inner_local: shapely.Geometry
) -> np.ndarray:
    """Candidate rectangles (n, 4) = (x0, y0, x1, y1) in the parcel's local frame.

    Rows run along x (the parcel's long axis). Each row is clipped to the part of the
    set-back polygon that the whole row depth covers (sampled on three lines), and each
    free stretch is filled with k buildings of similar length, as a developer lays out a
    compound: this follows triangles, curved edges and service-road notches.
    """
    x_min, y_min, x_max, y_max = shapely.bounds(inner_local)
    x_span = x_max - x_min
    rows = []
    y = y_min + rng.uniform(0, style.row_gap[0] / 2)
    while True:
        depth = rng.uniform(*style.depth)
        if y + depth > y_max:
            break
        ys = (y + 0.01, y + depth / 2, y + depth - 0.01)
        lines = shapely.linestrings(
            [[(x_min - 1, v), (x_max + 1, v)] for v in ys]
        )
        cuts = shapely.intersection(lines, inner_local)
        free = _intervals(shapely.get_parts(cuts[0]))
        for cut in cuts[1:]:
            free = _overlap(free, _intervals(shapely.get_parts(cut)))
        gap = rng.uniform(*style.gap)
        target = rng.uniform(*style.length)
        for lo, hi in free:
            avail = hi - lo
            k = int((avail + gap) // (target + gap))
            if k < 1:
                if avail >= style.length[0]:  # one short building still fits
                    k = 1
                else:
                    continue
            length = min((avail - (k - 1) * gap) / k, style.length[1] * 1.3, x_span)
            x0 = lo + np.arange(k) * (length + gap)
            x1 = x0 + length * rng.uniform(0.85, 1.0, k)
            shift = rng.uniform(0, max(0.0, hi - x1.max()))
            d = np.full(k, depth)
            rows.append(np.c_[x0 + shift, np.full_like(d, y), x1 + shift, y + d])
        y += depth + rng.uniform(*style.row_gap)
    if not rows:
        return np.zeros((0, 4))
    return np.concatenate(rows)


def place_buildings(
    parcels: gpd.GeoDataFrame,
    rng: np.random.Generator,
    first_id: int = 1,
    mixed_share: float = 0.35,
) -> gpd.GeoDataFrame:
    """Footprints for every parcel of ``parcels`` (needs use_secondary, mixed, use_secondary_2).

    Args:
        parcels: parcels with their use (see :func:`landforge.synth.parcels.assign_uses`).
        rng: the random stream to draw from (deterministic output for a given stream).
        first_id: building_id of the first building (epoch 2 continues the numbering).
        mixed_share: share of the buildings of a mixed parcel that take its second use.

    Returns:
        GeoDataFrame (no CRS) with building_id, parcel_id, use, height_m, geometry.
    """
    geoms = parcels.geometry.to_numpy()
    angles = _long_axis_angle(geoms) if len(geoms) else np.zeros(0)
    pieces: list[tuple[np.ndarray, np.ndarray, list[str], np.ndarray]] = []
    for k, row in enumerate(parcels.itertuples(index=False)):
        code = row.use_secondary
        if code in _EMPTY or code not in STYLES:
            continue
        style = STYLES[code]
        parcel = geoms[k]
        inner = shapely.buffer(parcel, -style.setback, join_style="mitre")
        if inner.is_empty:
            continue
        c = shapely.centroid(parcel)
        cx, cy = c.x, c.y
        ca, sa = np.cos(angles[k]), np.sin(angles[k])
        # the set-back polygon in the parcel's local frame: long axis along x
        inner_local = shapely.transform(
            inner, lambda xy, cx=cx, cy=cy, ca=ca, sa=sa: np.c_[
                (xy[:, 0] - cx) * ca + (xy[:, 1] - cy) * sa,
                -(xy[:, 0] - cx) * sa + (xy[:, 1] - cy) * ca,
            ]
        )
        rects = _row_layout(rng, style, inner_local)
        if not len(rects):
            continue
        corners = np.stack(
            [rects[:, [0, 1]], rects[:, [2, 1]], rects[:, [2, 3]], rects[:, [0, 3]]], axis=1
        )
        wx = cx + corners[..., 0] * ca - corners[..., 1] * sa
        wy = cy + corners[..., 0] * sa + corners[..., 1] * ca
        polys = shapely.polygons(np.stack([wx, wy], axis=-1))
        # sampled lines miss concave corners between them: keep only what truly fits
        shapely.prepare(inner)
        polys = polys[shapely.contains(inner, polys)]
        if not len(polys):
            continue
        keep = rng.random(len(polys)) < style.occupancy
        if not keep.any():
            continue
        polys = polys[keep]
        heights = np.maximum(3.0, style.height[0] * rng.lognormal(0.0, style.height[1], len(polys)))
        uses = [rci_of_code(code)] * len(polys)
        if row.mixed and row.use_secondary_2:
            second = rng.random(len(polys)) < mixed_share
            if second.any():
                other = rci_of_code(row.use_secondary_2)
                uses = [other if s else u for s, u in zip(second, uses, strict=True)]
                # a second use builds to its own height (shop podium, warehouse)
                h2 = STYLES.get(row.use_secondary_2, style).height
                heights[second] = np.maximum(3.0, h2[0] * rng.lognormal(0.0, h2[1], second.sum()))
        pieces.append((polys, np.full(len(polys), row.parcel_id), uses, heights))
    if not pieces:
        return gpd.GeoDataFrame(
            {"building_id": np.zeros(0, np.int64), "parcel_id": np.zeros(0, np.int64),
             "use": np.zeros(0, str), "height_m": np.zeros(0)}, geometry=[]
        )
    polys = np.concatenate([p[0] for p in pieces])
    gdf = gpd.GeoDataFrame(
        {
            "building_id": np.arange(first_id, first_id + len(polys), dtype=np.int64),
            "parcel_id": np.concatenate([p[1] for p in pieces]).astype(np.int64),
            "use": [u for p in pieces for u in p[2]],
            "height_m": np.round(np.concatenate([p[3] for p in pieces]), 1),
        },
        geometry=list(polys),
    )
    return gdf
