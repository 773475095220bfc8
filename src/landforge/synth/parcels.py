"""True parcels of a synthetic city and their land use.

Parcels are the blocks between roads (boundary minus roadbeds), with a lake carved out
as water. Uses follow a concentric city model with sectoral industry: a commercial core,
residential rings (R2 mid-rise inside, R1/R3 outside), industrial clusters on the outer
arterials and logistics by the motorway, public services scattered through the urban
area and agriculture, natural land and water at the edge.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Polygon

from landforge.synth.layout import CityFrame, component_rng

__all__ = [
    "PRIMARY_OF",
    "PRIMARY_VALUE",
    "RCI_OF_PRIMARY",
    "make_lake",
    "make_parcels",
    "assign_uses",
]

# MSLU primary label values (docs/dev/CONTRACTS.md).
PRIMARY_VALUE: dict[str, int] = {"R": 1, "B": 2, "A": 3, "M": 4, "E": 5, "S": 6, "X": 7}
# Building use (rci) of a primary class: R->residential, B/A->commercial, M->industrial.
RCI_OF_PRIMARY: dict[str, str] = {
    "R": "residential",
    "B": "commercial",
    "A": "commercial",
    "M": "industrial",
}


def PRIMARY_OF(code: str) -> str:  # noqa: N802 - reads like the table it stands for
    """Primary MSLU class of a secondary code (G* and A* are public service, W1 industrial)."""
    if code.startswith("G"):
        return "A"
    if code.startswith("W"):
        return "M"
    return code[0]


# Weight of each secondary code at relative distance knots from the centre. Read down a
# column to see the mix of one ring; the numbers are shares, renormalised per parcel.
_KNOTS = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
_WEIGHTS: dict[str, list[float]] = {
    "B1": [0.30, 0.14, 0.06, 0.04, 0.02, 0.01],
    "B2": [0.34, 0.14, 0.05, 0.02, 0.01, 0.00],
    "R2": [0.10, 0.40, 0.42, 0.20, 0.06, 0.02],
    "R1": [0.00, 0.00, 0.03, 0.08, 0.05, 0.02],
    "R3": [0.04, 0.08, 0.08, 0.05, 0.02, 0.01],
    "A1": [0.06, 0.03, 0.02, 0.01, 0.00, 0.00],
    "A3": [0.03, 0.06, 0.07, 0.05, 0.02, 0.01],
    "A5": [0.03, 0.04, 0.03, 0.02, 0.01, 0.00],
    "G1": [0.06, 0.06, 0.06, 0.06, 0.04, 0.02],
    "M1": [0.00, 0.00, 0.02, 0.08, 0.08, 0.05],
    "M2": [0.00, 0.00, 0.00, 0.04, 0.05, 0.03],
    "W1": [0.00, 0.00, 0.01, 0.04, 0.04, 0.02],
    "E2": [0.00, 0.00, 0.00, 0.05, 0.30, 0.45],
    "E9": [0.00, 0.00, 0.02, 0.06, 0.12, 0.25],
    "S4": [0.00, 0.01, 0.01, 0.01, 0.00, 0.00],
    "X0": [0.01, 0.01, 0.01, 0.01, 0.01, 0.01],
}
_CODES = list(_WEIGHTS)
_INDUSTRIAL = {"M1", "M2", "W1"}

# Second use of a mixed parcel: shops under flats, offices beside shops, warehouses by
# factories: the combinations that occur in practice.
_SECOND_USE: dict[str, list[str]] = {
    "R1": ["B1"],
    "R2": ["B1", "B2"],
    "R3": ["B1", "M1"],
    "B1": ["R2", "B2"],
    "B2": ["B1", "R2"],
    "A1": ["B2"],
    "A3": ["R2"],
    "A5": ["B1"],
    "M1": ["W1", "B2"],
    "M2": ["W1"],
    "W1": ["M1"],
}


def make_lake(frame: CityFrame, seed: int) -> Polygon:
    """An irregular lake in the outer ring of the city."""
    rng = component_rng(seed, "parcels", 1)
    cx, cy = frame.centre
    a = rng.uniform(0, 2 * np.pi)
    d = frame.radius * rng.uniform(0.55, 0.75)
    r0 = frame.size_m * rng.uniform(0.045, 0.07)
    th = np.linspace(0, 2 * np.pi, 73)[:-1]
    r = r0 * (
        1
        + 0.25 * np.sin(2 * th + rng.uniform(0, 6.3))
        + 0.12 * np.sin(3 * th + rng.uniform(0, 6.3))
    )
    # stretched along one axis, like a valley lake
    ex, ey = r * np.cos(th) * 1.6, r * np.sin(th)
    b = rng.uniform(0, np.pi)
    xs = cx + d * np.cos(a) + ex * np.cos(b) - ey * np.sin(b)
    ys = cy + d * np.sin(a) + ex * np.sin(b) + ey * np.cos(b)
    return Polygon(np.c_[xs, ys]).intersection(frame.boundary)


def make_parcels(
    frame: CityFrame, road_polygons: np.ndarray, lake: Polygon, min_area_m2: float = 150.0
) -> gpd.GeoDataFrame:
    """Blocks between roads: the boundary minus the roadbeds, the lake split off.

    Returns:
        GeoDataFrame (no CRS) with parcel_id (1..n, ordered north-west to south-east) and
        ``is_lake``; slivers under ``min_area_m2`` at junctions are dropped (they stay road).
    """
    roadbed = shapely.union_all(road_polygons)
    land = shapely.difference(frame.boundary, roadbed)
    blocks = np.asarray(shapely.get_parts(land))
    blocks = blocks[shapely.get_type_id(blocks) == 3]  # polygons only
    wet = shapely.intersects(blocks, lake)
    inside = shapely.get_parts(shapely.intersection(blocks[wet], lake))
    outside = shapely.get_parts(shapely.difference(blocks[wet], lake))
    geoms = np.concatenate([blocks[~wet], outside, inside])
    is_lake = np.r_[
        np.zeros(len(blocks) - wet.sum() + len(outside), bool), np.ones(len(inside), bool)
    ]
    keep = (shapely.get_type_id(geoms) == 3) & (shapely.area(geoms) >= min_area_m2)
    geoms, is_lake = geoms[keep], is_lake[keep]
    geoms = shapely.make_valid(shapely.set_precision(geoms, 0.01))
    # make_valid may return collections for degenerate slivers: keep the polygonal part
    geoms = np.array(
        [
            g
            if g.geom_type == "Polygon"
            else max(
                (p for p in shapely.get_parts(g) if p.geom_type == "Polygon"), key=lambda p: p.area
            )
            for g in geoms
        ],
        dtype=object,
    )
    c = shapely.centroid(geoms)
    order = np.lexsort((np.round(shapely.get_x(c), 1), -np.round(shapely.get_y(c), 1)))
    gdf = gpd.GeoDataFrame({"is_lake": is_lake[order]}, geometry=list(geoms[order]))
    gdf.insert(0, "parcel_id", np.arange(1, len(gdf) + 1, dtype=np.int64))
    return gdf


def assign_uses(
    parcels: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame,
    frame: CityFrame,
    seed: int,
    mixed_rate: float = 0.10,
) -> gpd.GeoDataFrame:
    """Add use_primary, use_secondary, mixed, use_secondary_2 and value to ``parcels``."""
    rng = component_rng(seed, "parcels")
    n = len(parcels)
    cent = shapely.centroid(parcels.geometry.to_numpy())
    x, y = shapely.get_x(cent), shapely.get_y(cent)
    # A small extent is read as the inner part of a city (a demo tile of a town centre)
    # rather than a whole miniature city, so it stays mostly urban.
    d = frame.rel_distance(x, y) * float(np.clip(frame.size_m / 2000.0, 0.5, 1.0))
    w = np.stack([np.interp(d, _KNOTS, _WEIGHTS[c]) for c in _CODES], axis=1)

    # Neighbourhood character: each district leans towards some uses.
    district = np.zeros(n, int)
    for k, poly in enumerate(frame.districts):
        district[shapely.contains_xy(poly, x, y)] = k
    bias = rng.lognormal(0.0, 0.35, (len(frame.districts), len(_CODES)))
    w *= bias[district]

    # Industrial clusters on the outer arterials, logistics by the motorway.
    cx, cy = frame.centre
    n_clusters = 1 if frame.size_m < 1000 else 2 if frame.size_m < 2000 else 3
    ang = rng.uniform(0, 2 * np.pi) + np.arange(n_clusters) * 2 * np.pi / n_clusters
    dist = frame.radius * rng.uniform(0.55, 0.85, n_clusters)
    hub_x, hub_y = cx + dist * np.cos(ang), cy + dist * np.sin(ang)
    near_hub = np.hypot(x[:, None] - hub_x, y[:, None] - hub_y).min(axis=1) < frame.size_m * 0.12
    ind = [_CODES.index(c) for c in _INDUSTRIAL]
    w[np.ix_(near_hub, ind)] *= 10.0
    mway = roads.geometry[roads["road_class"] == "motorway"]
    if len(mway):
        near_mway = shapely.distance(cent, shapely.union_all(mway.to_numpy())) < 120
        w[near_mway, _CODES.index("W1")] *= 5.0
    area = parcels.geometry.area.to_numpy()
    big_out = (area > 40_000) & (d > 0.5)
    w[big_out, _CODES.index("E2")] *= 2.5

    p = w / w.sum(axis=1, keepdims=True)
    u = rng.random(n)
    choice = (np.cumsum(p, axis=1) < u[:, None]).sum(axis=1).clip(max=len(_CODES) - 1)
    codes = np.array(_CODES, dtype=object)[choice]
    codes[parcels["is_lake"].to_numpy()] = "E1"

    # Mixed use: a fixed share of all parcels, drawn among those that can be mixed.
    second = np.full(n, None, dtype=object)
    eligible = np.flatnonzero([c in _SECOND_USE for c in codes])
    k = min(len(eligible), int(round(mixed_rate * n)))
    if k:
        chosen = np.sort(rng.choice(eligible, size=k, replace=False))
        for i in chosen:
            options = _SECOND_USE[codes[i]]
            second[i] = options[int(rng.integers(len(options)))]
    out = parcels.drop(columns="is_lake").copy()
    out["use_primary"] = [PRIMARY_OF(c) for c in codes]
    out["use_secondary"] = codes.astype(str)
    out["mixed"] = second != None  # noqa: E711 - elementwise on an object array
    out["use_secondary_2"] = second
    out["value"] = out["use_primary"].map(PRIMARY_VALUE).astype(np.uint8)
    return out[
        [
            "parcel_id",
            "use_primary",
            "use_secondary",
            "mixed",
            "use_secondary_2",
            "value",
            "geometry",
        ]
    ]
