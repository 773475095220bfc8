"""Building footprints inside parcels.

Rectangles in rows aligned with the parcel's long axis (its minimum rotated rectangle),
with sizes, spacing, set-back and heights by use: slab mid-rises with sun spacing in
residential parcels, large blocks in the commercial core, very large sheds in industry
and logistics, a few farmhouses on farmland and almost nothing in parks and water.

Near the city centre the urban uses build closer: given the city frame, each parcel's
style is blended towards a dense variant (:data:`DENSE_STYLES`: deep street-front blocks
with narrow gaps and courtyards, as in perimeter-block city centres) by its distance
from the centre, so the core reaches the building coverage of a real city centre while
the outer rings keep free-standing rows with sun spacing.

Use ambiguity (``synth city --use-ambiguity A``): in real cities many residential,
commercial and public buildings look alike from above. With ``A > 0`` each urban parcel
is, with probability ``A``, given a *look*: a style code drawn from :data:`POOLED_LOOKS`
(the same distribution whatever the parcel's use), whose size, shape and height its
buildings take (and, in :mod:`landforge.synth.imagery`, whose roof palette). Their use
stays the parcel's. The draws come from their own stream keyed by parcel_id
(:func:`pooled_looks`), so ``A = 0`` leaves every other draw, and every file, unchanged,
and the parcels pooled at a smaller ``A`` are also pooled at a larger one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from landforge.synth.layout import CityFrame, component_rng
from landforge.synth.parcels import PRIMARY_OF, RCI_OF_PRIMARY

__all__ = [
    "BuildingStyle",
    "DENSE_STYLES",
    "POOLED_LOOKS",
    "STYLES",
    "appearance_uses",
    "centrality",
    "place_buildings",
    "pooled_looks",
    "rci_of_code",
]


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
    "A1": _PUBLIC,
    "A3": _PUBLIC,
    "A5": _PUBLIC,
    "G1": BuildingStyle((8, 15), (6, 10), (80, 150), (80, 150), 20, 0.25, (5, 0.2)),
    "M1": BuildingStyle((50, 120), (25, 60), (15, 25), (15, 25), 8, 0.85, (11, 0.2)),
    "M2": BuildingStyle((60, 140), (30, 60), (20, 30), (20, 30), 10, 0.8, (13, 0.25)),
    "W1": BuildingStyle((80, 180), (30, 50), (20, 30), (25, 35), 10, 0.85, (11, 0.15)),
    "E2": BuildingStyle((9, 14), (7, 10), (6, 10), (8, 12), 10, 0.03, (6, 0.2)),
    "S4": BuildingStyle((40, 80), (20, 30), (30, 50), (30, 50), 10, 0.4, (12, 0.2)),
    "X0": BuildingStyle((10, 20), (8, 14), (5, 10), (6, 10), 4, 0.5, (9, 0.3)),
}

# Dense variants of the urban uses, reached at the city centre (see centrality): deep
# street-front blocks with narrow gaps and small set-backs; height stays the use's own.
DENSE_STYLES: dict[str, BuildingStyle] = {
    "R2": BuildingStyle((55, 95), (16, 22), (4, 8), (12, 18), 3, 0.95, (33, 0.4)),
    "R3": BuildingStyle((18, 30), (10, 14), (2, 4), (5, 8), 2, 0.9, (10, 0.3)),
    "B1": BuildingStyle((45, 85), (30, 50), (4, 9), (8, 14), 3, 0.95, (24, 0.5)),
    "B2": BuildingStyle((40, 70), (28, 45), (5, 10), (8, 14), 4, 0.95, (45, 0.6)),
    "A1": BuildingStyle((40, 75), (20, 30), (8, 14), (12, 20), 4, 0.9, (18, 0.3)),
    "A3": BuildingStyle((40, 75), (16, 24), (10, 18), (18, 28), 5, 0.9, (16, 0.3)),
    "A5": BuildingStyle((45, 80), (20, 30), (6, 12), (12, 20), 4, 0.9, (20, 0.3)),
}
# Relative distance from the centre (0 centre, 1 edge; as for the land-use rings) where
# the dense variants are fully in force, and where they have faded out.
_DENSE_FULL, _DENSE_NONE = 0.3, 0.6

# Uses with no buildings at all: water, natural / blank land.
_EMPTY = {"E1", "E9"}


#: Use-independent model of a building's look: style codes and their weights, the mean
#: number of parcels per code in the default 3 km city (seeds 0 and 1; ours). Only
#: parcels of these urban codes can be pooled; farmland, parks, water keep their style.
POOLED_LOOKS: dict[str, float] = {
    "R1": 10,
    "R2": 68,
    "R3": 15,
    "B1": 24,
    "B2": 10,
    "A1": 4,
    "A3": 14,
    "A5": 11,
    "M1": 26,
    "M2": 12,
    "W1": 15,
}


def pooled_looks(parcels: gpd.GeoDataFrame, seed: int, ambiguity: float) -> dict[int, str]:
    """parcel_id -> look (a style code of :data:`POOLED_LOOKS`) of the pooled parcels.

    A parcel of a :data:`POOLED_LOOKS` code is pooled when its uniform draw is below
    ``ambiguity``; its look is drawn from the pooled weights, independently of its use.
    Both draws are keyed by parcel_id (stream ``use_ambiguity``): the same parcel gets
    the same look in both epochs, and pooled sets are nested in ``ambiguity``.
    """
    if ambiguity <= 0 or not len(parcels):
        return {}
    ids = parcels["parcel_id"].to_numpy().astype(np.int64)
    codes = parcels["use_secondary"].to_numpy()
    draws = component_rng(seed, "use_ambiguity").random((int(ids.max()) + 1, 2))[ids]
    looks = list(POOLED_LOOKS)
    cum = np.cumsum(list(POOLED_LOOKS.values()), dtype=float)
    pick = np.minimum(np.searchsorted(cum / cum[-1], draws[:, 1], side="right"), len(looks) - 1)
    pooled = np.isin(codes, looks) & (draws[:, 0] < ambiguity)
    return {int(i): looks[int(k)] for i, k in zip(ids[pooled], pick[pooled], strict=True)}


def appearance_uses(buildings: gpd.GeoDataFrame, looks: Mapping[int, str]) -> np.ndarray:
    """The use whose roof palette each building wears: its look's use where pooled."""
    uses = buildings["use"].to_numpy().astype(object)
    if not looks or not len(buildings):
        return uses
    pids = buildings["parcel_id"].to_numpy()
    return np.array(
        [
            rci_of_code(looks[int(p)]) if int(p) in looks else u
            for p, u in zip(pids, uses, strict=True)
        ],
        dtype=object,
    )


def rci_of_code(code: str) -> str:
    """Building use of a secondary code; farmhouses and unknown land count as residential."""
    primary = PRIMARY_OF(code)
    if primary in RCI_OF_PRIMARY:
        return RCI_OF_PRIMARY[primary]
    return "commercial" if primary == "S" else "residential"


def centrality(parcels: gpd.GeoDataFrame, frame: CityFrame) -> np.ndarray:
    """Weight (0..1) of the dense style for each parcel: 1 in the centre, 0 outside.

    Distances are scaled as for the land-use rings, so a small extent (read as the inner
    part of a city) is dense throughout.
    """
    c = shapely.centroid(parcels.geometry.to_numpy())
    d = frame.rel_distance(shapely.get_x(c), shapely.get_y(c))
    d = d * float(np.clip(frame.size_m / 2000.0, 0.5, 1.0))
    return np.clip((_DENSE_NONE - d) / (_DENSE_NONE - _DENSE_FULL), 0.0, 1.0)


def _blend(a: BuildingStyle, b: BuildingStyle, t: float) -> BuildingStyle:
    """Style ``t`` of the way from ``a`` to ``b`` (every number interpolated linearly)."""
    if t <= 0.0:
        return a
    if t >= 1.0:
        return b

    def mix(u: float, v: float) -> float:
        return (1.0 - t) * u + t * v

    def pair(u: tuple[float, float], v: tuple[float, float]) -> tuple[float, float]:
        return (mix(u[0], v[0]), mix(u[1], v[1]))

    return BuildingStyle(
        pair(a.length, b.length),
        pair(a.depth, b.depth),
        pair(a.gap, b.gap),
        pair(a.row_gap, b.row_gap),
        mix(a.setback, b.setback),
        mix(a.occupancy, b.occupancy),
        a.height,
    )


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


def _overlap(
    a: list[tuple[float, float]], b: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    out = []
    for a0, a1 in a:
        for b0, b1 in b:
            lo, hi = max(a0, b0), min(a1, b1)
            if hi > lo:
                out.append((lo, hi))
    return out


def _depth_span(
    inner_local: shapely.Geometry, x_min: float, x_max: float, y_min: float, y_max: float
) -> tuple[float, float]:
    """The y-range the rows fill: where the polygon spans most of its length.

    A block's long sides are rarely exactly parallel to its long axis; rows laid out to
    the bounding box would start on a slanted edge and lose much of their length. For a
    near-rectangular polygon the range covered at both 20 % and 80 % of the length is
    used instead; an irregular one (a triangle, a lobe of the boundary) keeps its bounds
    and its rows are clipped to the shape.
    """
    xs = x_min + (x_max - x_min) * np.array([0.2, 0.8])
    lines = shapely.linestrings([[(x, y_min - 1), (x, y_max + 1)] for x in xs])
    lo, hi = y_min, y_max
    for cut in shapely.intersection(lines, inner_local):
        ys = shapely.get_coordinates(cut)[:, 1]
        if not len(ys):
            return y_min, y_max
        lo, hi = max(lo, float(ys.min())), min(hi, float(ys.max()))
    if hi - lo >= 0.7 * (y_max - y_min):
        return lo, hi
    return y_min, y_max


def _row_layout(
    rng: np.random.Generator, style: BuildingStyle, inner_local: shapely.Geometry
) -> np.ndarray:
    """Candidate rectangles (n, 4) = (x0, y0, x1, y1) in the parcel's local frame.

    Rows run along x (the parcel's long axis) and fill the parcel's depth: the number of
    rows is the nearest whole number for the drawn depth and row gap, and the row depth
    stretches (within the use's range) so that the outer rows front both long sides.
    Each row is clipped to the part of the set-back polygon that the whole row depth
    covers (sampled on three lines), and each free stretch is filled with k buildings of
    similar length, as a developer lays out a compound: this follows triangles, curved
    edges and service-road notches.
    """
    x_min, y_min, x_max, y_max = shapely.bounds(inner_local)
    x_span = x_max - x_min
    y_min, y_max = _depth_span(inner_local, x_min, x_max, y_min, y_max)
    y_span = y_max - y_min
    if y_span < style.depth[0]:
        return np.zeros((0, 4))
    row_gap = rng.uniform(*style.row_gap)
    n_rows = max(1, int(np.floor((y_span + row_gap) / (rng.uniform(*style.depth) + row_gap) + 0.5)))
    row_depth = (y_span - (n_rows - 1) * row_gap) / n_rows
    if row_depth < style.depth[0] and n_rows > 1:  # rounded up too far: one row fewer
        n_rows -= 1
        row_depth = (y_span - (n_rows - 1) * row_gap) / n_rows
    row_depth = min(row_depth, style.depth[1])
    spare = y_span - n_rows * row_depth - (n_rows - 1) * row_gap
    y0 = y_min + rng.uniform(0, max(0.0, spare))
    rows = []
    for i in range(n_rows):
        y = y0 + i * (row_depth + row_gap)
        depth = row_depth * rng.uniform(0.92, 1.0)
        ys = (y + 0.01, y + depth / 2, y + depth - 0.01)
        lines = shapely.linestrings([[(x_min - 1, v), (x_max + 1, v)] for v in ys])
        cuts = shapely.intersection(lines, inner_local)
        free = _intervals(shapely.get_parts(cuts[0]))
        for cut in cuts[1:]:
            free = _overlap(free, _intervals(shapely.get_parts(cut)))
        gap = rng.uniform(*style.gap)
        target = rng.uniform(*style.length)
        for lo, hi in free:
            avail = hi - lo
            # nearest whole number of buildings: lengths stretch or shrink to fill
            k = int(np.floor((avail + gap) / (target + gap) + 0.5))
            if k < 1:
                if avail >= style.length[0]:  # one short building still fits
                    k = 1
                else:
                    continue
            length = min((avail - (k - 1) * gap) / k, style.length[1] * 1.3, x_span)
            x0 = lo + np.arange(k) * (length + gap)
            x1 = x0 + length * rng.uniform(0.85, 1.0, k)
            shift = rng.uniform(0, max(0.0, hi - x1.max()))
            # a hair inside the sampled lines, so a row on a slanted edge stays inside
            y_lo, y_hi = np.full(k, y + 0.02), np.full(k, y + depth - 0.02)
            rows.append(np.c_[x0 + shift, y_lo, x1 + shift, y_hi])
    if not rows:
        return np.zeros((0, 4))
    return np.concatenate(rows)


def place_buildings(
    parcels: gpd.GeoDataFrame,
    rng: np.random.Generator,
    first_id: int = 1,
    mixed_share: float = 0.35,
    frame: CityFrame | None = None,
    looks: Mapping[int, str] | None = None,
) -> gpd.GeoDataFrame:
    """Footprints for every parcel of ``parcels`` (needs use_secondary, mixed, use_secondary_2).

    Args:
        parcels: parcels with their use (see :func:`landforge.synth.parcels.assign_uses`).
        rng: the random stream to draw from (deterministic output for a given stream).
        first_id: building_id of the first building (epoch 2 continues the numbering).
        mixed_share: share of the buildings of a mixed parcel that take its second use.
        frame: the city frame; when given, parcels near the centre build to the dense
            variants of their style (:func:`centrality`); without it, base styles only.
        looks: parcel_id -> style code (:func:`pooled_looks`): these parcels build to
            that style (size, shape, height) instead of their use's; uses are unchanged.

    Returns:
        GeoDataFrame (no CRS) with building_id, parcel_id, use, height_m, geometry.
    """
    geoms = parcels.geometry.to_numpy()
    angles = _long_axis_angle(geoms) if len(geoms) else np.zeros(0)
    dense = centrality(parcels, frame) if frame is not None and len(geoms) else np.zeros(len(geoms))
    pieces: list[tuple[np.ndarray, np.ndarray, list[str], np.ndarray]] = []
    for k, row in enumerate(parcels.itertuples(index=False)):
        code = row.use_secondary
        if code in _EMPTY or code not in STYLES:
            continue
        look = looks.get(int(row.parcel_id), code) if looks else code
        style = STYLES[look]
        if look in DENSE_STYLES:
            style = _blend(style, DENSE_STYLES[look], float(dense[k]))
        parcel = geoms[k]
        inner = shapely.buffer(parcel, -style.setback, join_style="mitre")
        if inner.is_empty:
            continue
        c = shapely.centroid(parcel)
        cx, cy = c.x, c.y
        ca, sa = np.cos(angles[k]), np.sin(angles[k])
        # the set-back polygon in the parcel's local frame: long axis along x
        inner_local = shapely.transform(
            inner,
            lambda xy, cx=cx, cy=cy, ca=ca, sa=sa: np.c_[
                (xy[:, 0] - cx) * ca + (xy[:, 1] - cy) * sa,
                -(xy[:, 0] - cx) * sa + (xy[:, 1] - cy) * ca,
            ],
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
                h2 = style.height if look != code else STYLES.get(row.use_secondary_2, style).height
                heights[second] = np.maximum(3.0, h2[0] * rng.lognormal(0.0, h2[1], second.sum()))
        pieces.append((polys, np.full(len(polys), row.parcel_id), uses, heights))
    if not pieces:
        return gpd.GeoDataFrame(
            {
                "building_id": np.zeros(0, np.int64),
                "parcel_id": np.zeros(0, np.int64),
                "use": np.zeros(0, str),
                "height_m": np.zeros(0),
            },
            geometry=[],
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
