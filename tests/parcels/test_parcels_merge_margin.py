"""The two shortcuts of generate_parcels: joined road lines and the clip margin."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parcel_helpers import CRS, X0, Y0, box, road_grid

from landforge.parcels import ParcelConfig, generate_parcels
from landforge.parcels.generate import (
    CLIP_MARGIN_M,
    block_area,
    merge_roads,
    prepare_roads,
    road_blocks,
    road_buffers,
)


def test_merge_roads_joins_equal_widths_end_to_end_only() -> None:
    a = shapely.LineString([(0, 0), (10, 0)])
    b = shapely.LineString([(10, 0), (20, 5)])  # continues a: joined
    c = shapely.LineString([(20, 5), (30, 5)])  # continues b but wider: kept apart
    d = shapely.MultiLineString([[(0, 10), (0, 20)], [(5, 10), (5, 20)]])  # exploded
    area = shapely.box(0, 0, 5, 5)  # an area road: kept as given
    lines, half = merge_roads(np.array([c, a, d, b, area], dtype=object), np.array([6, 4, 4, 4, 3]))

    assert list(half) == [4, 4, 4, 6, 3]  # lines by width, then the rest as given
    assert lines[-1].equals(area)
    joined = [g for g, h in zip(lines, half, strict=True) if h == 4]
    assert len(joined) == 3
    assert any(g.equals(shapely.LineString([(0, 0), (10, 0), (20, 5)])) for g in joined)
    assert lines[3].equals(c)


def test_joined_roads_move_the_road_union_by_less_than_the_discretisation() -> None:
    # a street split into 40 segments along a curve: 39 joints, each a pair of caps
    t = np.linspace(0, np.pi, 41)
    xy = np.c_[300 * np.cos(t), 300 * np.sin(t)]
    segments = shapely.linestrings(np.stack([xy[:-1], xy[1:]], axis=1))
    half = np.full(len(segments), 4.0)
    lines, merged_half = merge_roads(segments, half)
    assert len(lines) == 1

    each = shapely.union_all(shapely.buffer(segments, half, quad_segs=4))
    joined = shapely.buffer(lines[0], 4.0, quad_segs=4)
    # both approximate the 4 m neighbourhood of the same curve; the sagitta of a
    # quad_segs=4 arc of radius 4 m is 4 (1 - cos 11.25 deg) = 0.077 m
    assert shapely.hausdorff_distance(each, joined) < 0.1
    assert shapely.get_num_coordinates(joined) < shapely.get_num_coordinates(each)


def test_grid_roads_split_into_segments_give_the_same_parcels() -> None:
    whole = road_grid([0, 100, 200, 300], [0, 100, 200, 300])
    # cut every road at the crossings: OSM-like ways between intersections
    parts = []
    for geom, cls in zip(whole.geometry, whole["road_class"], strict=True):
        coords = np.asarray(geom.coords)
        stops = np.linspace(coords[0], coords[-1], 8)
        parts += [
            (shapely.LineString([p, q]), cls) for p, q in zip(stops[:-1], stops[1:], strict=True)
        ]
    split = gpd.GeoDataFrame(
        {"road_class": [c for _, c in parts]}, geometry=[g for g, _ in parts], crs=CRS
    )
    boundary = box(0, 0, 300, 300)
    a = generate_parcels(whole, boundary)
    b = generate_parcels(split, boundary)
    assert len(a) == len(b) == 9
    np.testing.assert_allclose(np.sort(a["area_m2"]), np.sort(b["area_m2"]), rtol=1e-9)


def test_blocks_for_an_opening_are_the_nominal_blocks_grown_by_the_margin() -> None:
    roads = road_grid([0, 100, 200], [0, 100, 200])
    boundary = box(-20, -20, 220, 220)
    for clean, grow in [(5.0, CLIP_MARGIN_M), (0.0, 0.0)]:
        cfg = ParcelConfig(clean_m=clean)
        prep = prepare_roads(roads, boundary, cfg)
        lines, half = merge_roads(prep.lines, prep.half)
        blocks = road_blocks(block_area(prep.area, cfg), road_buffers(lines, half, cfg))
        inner = [b for b in blocks if b.bounds[0] > X0 and b.bounds[1] > Y0]
        inner = [b for b in inner if b.bounds[2] < X0 + 200 and b.bounds[3] < Y0 + 200]
        assert len(inner) == 4
        # 8 m roads: 92 m squares, grown by the margin on each side
        side = 92.0 + 2 * grow
        np.testing.assert_allclose(shapely.area(inner), side * side, rtol=1e-10)


@st.composite
def networks(draw):
    xs = sorted(draw(st.lists(st.floats(0, 400), min_size=2, max_size=5, unique=True)))
    ys = sorted(draw(st.lists(st.floats(0, 400), min_size=2, max_size=5, unique=True)))
    n = len(xs) + len(ys)
    classes = draw(
        st.lists(st.sampled_from(["primary", "residential", "service"]), min_size=n, max_size=n)
    )
    angle = draw(st.floats(0, 80))
    return xs, ys, classes, angle


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_opened_parcels_stay_within_the_margin_of_the_raw_blocks(net) -> None:
    xs, ys, classes, angle = net
    roads = road_grid(xs, ys, classes)
    # a diagonal street cut into short segments, so that joining matters
    t = np.linspace(0, 1, 12)
    dx, dy = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    pts = np.c_[X0 - 30 + 600 * dx * t, Y0 - 30 + 600 * dy * t]
    segs = shapely.linestrings(np.stack([pts[:-1], pts[1:]], axis=1))
    extra = gpd.GeoDataFrame({"road_class": ["tertiary"] * len(segs)}, geometry=list(segs), crs=CRS)
    roads = gpd.GeoDataFrame(gpd.pd.concat([roads, extra], ignore_index=True), crs=CRS)
    boundary = box(-20, -20, 420, 420)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = generate_parcels(roads, boundary, ParcelConfig(clean_m=0, min_area_m2=0))
        opened = generate_parcels(roads, boundary, ParcelConfig(clean_m=5, min_area_m2=0))
    if len(opened) == 0:
        return
    # every opened parcel lies in the raw blocks grown by a few margins (mitre corners)
    grown = shapely.buffer(shapely.union_all(raw.geometry.values), 10 * CLIP_MARGIN_M)
    assert shapely.covered_by(opened.geometry.values, grown).all()
    assert opened["area_m2"].sum() <= raw["area_m2"].sum() * (1 + 1e-9)


@pytest.mark.realdata
def test_joined_osm_roads_move_the_road_union_by_at_most_a_quarter_metre(shared_data) -> None:
    from landforge.io.osm import read_osm_roads

    roads = read_osm_roads(shared_data / "osm" / "monaco.osm.pbf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = prepare_roads(roads, None, ParcelConfig())
    lines, half = merge_roads(prep.lines, prep.half)
    assert len(lines) < 0.7 * len(prep.lines)
    each = shapely.union_all(shapely.buffer(prep.lines, prep.half, quad_segs=4))
    joined = shapely.union_all(shapely.buffer(lines, half, quad_segs=4))
    assert shapely.hausdorff_distance(each, joined) < 0.25
    assert shapely.area(shapely.symmetric_difference(each, joined)) < 5e-5 * each.area
