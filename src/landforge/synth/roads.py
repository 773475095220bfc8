"""Hierarchical road network of a synthetic city.

A warped, rotated grid whose lines are graded by their index (every 8th primary, every
4th secondary, every 2nd tertiary, the rest residential), thinned with distance from the
centre so the core is dense and the edge sparse; plus diagonal primary radials, a
motorway through-road, a trunk ring road (larger cities) and dead-end service roads.
Classes are OSM ``highway`` values; ``width_m`` is the roadbed width.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString

from landforge.synth.layout import CityFrame, component_rng

__all__ = ["ROAD_WIDTH_M", "make_roads", "road_buffers"]

# Typical roadbed widths of Chinese urban roads by class (GB 50220 ranges, rounded).
ROAD_WIDTH_M: dict[str, float] = {
    "motorway": 32.0,
    "trunk": 28.0,
    "primary": 25.0,
    "secondary": 18.0,
    "tertiary": 12.0,
    "residential": 8.0,
    "service": 5.0,
}

_BLOCK_M = 120.0  # grid spacing in the core; gives ~1.1-1.3 ha blocks between roads
_STEP_M = 15.0  # densification before warping, so warped lines are smooth curves


def _grade(i: int) -> str:
    if i % 8 == 0:
        return "primary"
    if i % 4 == 0:
        return "secondary"
    if i % 2 == 0:
        return "tertiary"
    return "residential"


def _keep_probability(road_class: str, d: np.ndarray) -> np.ndarray:
    """Chance a grid piece survives at relative distance ``d`` (thinning to the edge)."""
    if road_class in ("primary", "secondary"):
        return np.where(d < 0.95, 1.0, 0.7)
    if road_class == "tertiary":
        return np.clip(1.3 - 0.6 * d, 0.5, 1.0)
    return np.clip(1.15 - 1.1 * d, 0.05, 0.95)


def _polyline(frame: CityFrame, x: np.ndarray, y: np.ndarray) -> LineString:
    wx, wy = frame.warp_xy(x, y)
    return LineString(np.c_[wx, wy])


def _segment(p0: tuple[float, float], p1: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    n = max(2, int(np.hypot(p1[0] - p0[0], p1[1] - p0[1]) / _STEP_M) + 1)
    t = np.linspace(0, 1, n)
    return p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1])


def make_roads(frame: CityFrame, seed: int) -> gpd.GeoDataFrame:
    """Road centrelines clipped to the boundary.

    Returns:
        GeoDataFrame (no CRS set) with columns road_id, road_class, width_m, geometry
        (LineString), ordered by class then position, deterministic for ``seed``.
    """
    rng = component_rng(seed, "roads")
    cx, cy = frame.centre
    half = frame.size_m * 0.75
    angle = rng.uniform(-0.35, 0.35)  # grid orientation: rarely exactly north-up
    ca, sa = np.cos(angle), np.sin(angle)

    def to_world(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return cx + u * ca - v * sa, cy + u * sa + v * ca

    n = int(np.ceil(half / _BLOCK_M))
    idx = np.arange(-n, n + 1)
    # Each grid line is offset a little so blocks differ in size (not a perfect lattice).
    offs_u = idx * _BLOCK_M + rng.uniform(-0.15, 0.15, idx.size) * _BLOCK_M
    offs_v = idx * _BLOCK_M + rng.uniform(-0.15, 0.15, idx.size) * _BLOCK_M
    offs_u[n] = offs_v[n] = 0.0  # primaries through the centre

    records: list[tuple[str, LineString]] = []
    for family, (along, across) in enumerate(((offs_v, offs_u), (offs_u, offs_v))):
        for k, (i, c) in enumerate(zip(idx, across, strict=True)):
            cls = _grade(int(i))
            # pieces between consecutive crossing lines of the other family
            starts, ends = along[:-1], along[1:]
            mids = (starts + ends) / 2
            if family == 0:
                mx, my = to_world(np.full_like(mids, c), mids)
            else:
                mx, my = to_world(mids, np.full_like(mids, c))
            d = frame.rel_distance(mx, my)
            keep = rng.random(mids.size) < _keep_probability(cls, d)
            # service stubs: dead ends from the middle of a kept piece into the block
            stub = rng.random(mids.size) < np.where(d < 0.3, 0.05, 0.15)
            side = rng.choice([-1.0, 1.0], mids.size)
            depth = rng.uniform(0.3, 0.45, mids.size) * _BLOCK_M
            # consecutive kept pieces merge into one polyline
            run: list[np.ndarray] = []
            pieces: list[list[float]] = []
            for j in range(mids.size):
                if keep[j]:
                    run.append(np.array([starts[j], ends[j]]))
                    if stub[j] and cls != "primary":
                        pieces.append([mids[j], c, mids[j], c + side[j] * depth[j]])
                elif run:
                    records.append((cls, _family_line(family, run, c, to_world, frame)))
                    run = []
            if run:
                records.append((cls, _family_line(family, run, c, to_world, frame)))
            for m, c0, _, c1 in pieces:
                u0, v0 = (c0, m) if family == 0 else (m, c0)
                u1, v1 = (c1, m) if family == 0 else (m, c1)
                xs, ys = _segment(to_world(u0, v0), to_world(u1, v1))
                records.append(("service", _polyline(frame, xs, ys)))
            _ = k

    # Diagonal primary radials from the outskirts towards the core, with a meander.
    n_radials = 4 if frame.size_m >= 1200 else 2
    base = rng.uniform(0, 2 * np.pi)
    for a in (
        base + np.arange(n_radials) * 2 * np.pi / n_radials + rng.uniform(-0.3, 0.3, n_radials)
    ):
        r = np.linspace(frame.radius * 0.12, frame.radius * 1.1, 60)
        meander = np.sin(r / frame.radius * np.pi * rng.uniform(1, 2.5)) * frame.radius * 0.04
        xs = cx + r * np.cos(a) - meander * np.sin(a)
        ys = cy + r * np.sin(a) + meander * np.cos(a)
        records.append(("primary", LineString(np.c_[xs, ys])))

    # Motorway: a gently curved through-road across the outer part of the city.
    a = rng.uniform(0, 2 * np.pi)
    offset = frame.radius * rng.uniform(0.6, 0.8)
    t = np.linspace(-frame.size_m, frame.size_m, 80)
    bow = (t / frame.size_m) ** 2 * frame.radius * 0.15
    xs = cx + (offset - bow) * np.cos(a) - t * np.sin(a)
    ys = cy + (offset - bow) * np.sin(a) + t * np.cos(a)
    records.append(("motorway", LineString(np.c_[xs, ys])))

    # Trunk ring road round the inner city (only where the city is large enough for one).
    if frame.size_m >= 1500:
        th = np.linspace(0, 2 * np.pi, 121)
        rr = frame.radius * 0.55 * (1 + 0.05 * np.sin(3 * th + rng.uniform(0, 2 * np.pi)))
        records.append(("trunk", LineString(np.c_[cx + rr * np.cos(th), cy + rr * np.sin(th)])))

    classes = [c for c, _ in records]
    lines = shapely.intersection(np.array([g for _, g in records], dtype=object), frame.boundary)
    gdf = gpd.GeoDataFrame({"road_class": classes}, geometry=list(lines))
    gdf = gdf[~gdf.geometry.is_empty].explode(index_parts=False)
    gdf = gdf[(gdf.geom_type == "LineString") & (gdf.length > 5.0)]
    order = list(ROAD_WIDTH_M)
    gdf["rank"] = gdf["road_class"].map(order.index)
    gdf = gdf.sort_values("rank", kind="stable").drop(columns="rank").reset_index(drop=True)
    # Width varies a little between roads of one class (lanes, verges), in 0.5 m steps.
    jitter = component_rng(seed, "roads", 1).uniform(0.9, 1.1, len(gdf))
    gdf["width_m"] = np.round(gdf["road_class"].map(ROAD_WIDTH_M).to_numpy() * jitter * 2) / 2
    gdf.insert(0, "road_id", np.arange(1, len(gdf) + 1, dtype=np.int64))
    return gdf[["road_id", "road_class", "width_m", "geometry"]]


def _family_line(
    family: int,
    run: list[np.ndarray],
    c: float,
    to_world: Callable[[Any, Any], tuple[Any, Any]],
    frame: CityFrame,
) -> LineString:
    """One polyline along a grid line from the start of ``run`` to its end."""
    v0, v1 = run[0][0], run[-1][1]
    if family == 0:
        p0, p1 = to_world(c, v0), to_world(c, v1)
    else:
        p0, p1 = to_world(v0, c), to_world(v1, c)
    xs, ys = _segment(p0, p1)
    return _polyline(frame, xs, ys)


def road_buffers(roads: gpd.GeoDataFrame) -> np.ndarray:
    """Roadbed polygons (centreline buffered by half the width), one per road."""
    # Round caps close the corners where two roads end at one node, like kerb radii.
    return shapely.buffer(roads.geometry.to_numpy(), roads["width_m"].to_numpy() / 2, quad_segs=4)
