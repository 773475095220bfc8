"""Parcels from road networks: the boundary minus buffered roads, cleaned by an opening."""

from __future__ import annotations

import math
import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parcel_helpers import CRS, X0, Y0, box, road_grid

from landforge.errors import InputError
from landforge.parcels import (
    DEFAULT_WIDTHS_M,
    ParcelConfig,
    generate_parcels,
    load_widths,
    road_widths,
)

TOL = 1e-6  # relative area tolerance


def road_union(roads: gpd.GeoDataFrame, cfg: ParcelConfig | None = None) -> shapely.Geometry:
    cfg = cfg or ParcelConfig()
    metric = roads.to_crs(CRS)
    widths = road_widths(metric, cfg)
    return shapely.union_all(
        shapely.buffer(metric.geometry.values, widths / 2, quad_segs=cfg.quad_segs)
    )


def assert_partition(
    parcels: gpd.GeoDataFrame, boundary: shapely.Geometry, roads: shapely.Geometry
) -> None:
    """Valid, pairwise disjoint, inside the boundary and outside every road buffer."""
    geoms = parcels.geometry.values
    assert shapely.is_valid(geoms).all()
    assert (shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON).all()
    total = shapely.area(geoms).sum()
    union = shapely.union_all(geoms)
    assert union.area == pytest.approx(total, rel=TOL)  # no overlaps
    scale = boundary.area
    assert shapely.difference(union, boundary).area <= TOL * scale
    assert shapely.intersection(union, roads).area <= TOL * scale


def test_parcels_of_a_road_grid_are_the_blocks_between_the_roads() -> None:
    roads = road_grid([0, 100, 200, 300, 400], [0, 100, 200, 300, 400])
    boundary = box(0, 0, 400, 400)
    parcels = generate_parcels(roads, boundary)

    assert len(parcels) == 16
    assert parcels.crs == CRS
    # residential roads are 8 m wide: each block is 92 m square, corners kept square
    np.testing.assert_allclose(parcels["area_m2"], 92.0 * 92.0, rtol=1e-9)
    np.testing.assert_allclose(parcels["perimeter_m"], 4 * 92.0, rtol=1e-9)
    np.testing.assert_allclose(parcels["compactness"], math.pi / 4, rtol=1e-9)
    assert list(parcels["parcel_id"]) == list(range(1, 17))
    # the four central blocks have their centroid 50*sqrt(2) m from the boundary centre
    assert np.isclose(parcels["dist_centre_m"], 50 * math.sqrt(2)).sum() == 4

    b = boundary.geometry.iloc[0]
    r = road_union(roads)
    assert_partition(parcels, b, r)
    # nothing lost: parcels + roads inside the boundary = the boundary
    covered = parcels["area_m2"].sum() + shapely.intersection(r, b).area
    assert covered == pytest.approx(b.area, rel=TOL)


def test_opening_drops_slivers_narrower_than_twice_clean_m() -> None:
    # two parallel roads 14 m apart leave a 6 m strip (< 2 * 5 m): it is removed
    roads = road_grid([0, 100, 114, 200], [0, 200])
    boundary = box(0, 0, 200, 200)
    parcels = generate_parcels(roads, boundary)
    assert len(parcels) == 2
    np.testing.assert_allclose(sorted(parcels["area_m2"]), [78 * 192, 92 * 192], rtol=1e-9)

    raw = generate_parcels(roads, boundary, ParcelConfig(clean_m=0, min_area_m2=0))
    assert len(raw) == 3  # without the opening the strip is a parcel
    strip = 6 * 192
    assert raw["area_m2"].sum() - parcels["area_m2"].sum() == pytest.approx(strip, rel=1e-9)


def test_opening_splits_a_block_at_a_narrow_neck() -> None:
    # a dumbbell boundary: two 80 m squares joined by a 6 m wide neck
    left = shapely.box(X0, Y0, X0 + 80, Y0 + 80)
    neck = shapely.box(X0 + 80, Y0 + 37, X0 + 120, Y0 + 43)
    right = shapely.box(X0 + 120, Y0, X0 + 200, Y0 + 80)
    boundary = gpd.GeoDataFrame(geometry=[shapely.union_all([left, neck, right])], crs=CRS)
    bottom = shapely.LineString([(X0 - 10, Y0 - 2), (X0 + 210, Y0 - 2)])  # grazes it
    roads = gpd.GeoDataFrame({"road_class": ["residential"]}, geometry=[bottom], crs=CRS)
    parcels = generate_parcels(roads, boundary, ParcelConfig(min_area_m2=0))
    assert len(parcels) == 2
    assert shapely.union_all(parcels.geometry.values).intersection(neck).area < 1.0


def test_input_in_lonlat_gives_parcels_in_utm() -> None:
    roads = road_grid([0, 100, 200], [0, 100, 200])
    boundary = box(0, 0, 200, 200)
    parcels = generate_parcels(roads.to_crs(4326), boundary.to_crs(4326))
    assert parcels.crs.is_projected
    assert parcels.crs.to_epsg() == 32650  # the local UTM zone
    assert len(parcels) == 4
    np.testing.assert_allclose(parcels["area_m2"], 92 * 92, rtol=1e-3)


def test_explicit_crs_and_projected_input_kept() -> None:
    roads = road_grid([0, 100, 200], [0, 100, 200])
    assert generate_parcels(roads).crs == CRS  # projected input: kept
    other = generate_parcels(roads, opts=ParcelConfig(crs="EPSG:3857"))
    assert other.crs.to_epsg() == 3857


def test_without_boundary_the_roads_extent_is_split() -> None:
    roads = road_grid([0, 100, 200], [0, 100, 200], overhang=0)
    parcels = generate_parcels(roads)
    # 4 inner blocks; the extent is the bounding box of the lines (no outer margin)
    assert len(parcels) == 4


def test_width_column_wins_over_class_and_tables_are_overridable(tmp_path) -> None:
    roads = road_grid([0, 100, 200], [0, 200])
    roads["width_m"] = [20.0, np.nan, 8.0, 8.0, 8.0]  # the left road is 20 m wide
    widths = road_widths(roads)
    np.testing.assert_allclose(widths, [20, 8, 8, 8, 8])

    yaml_file = tmp_path / "widths.yaml"
    yaml_file.write_text("widths:\n  residential: 12\n  my_class: 3\n")
    table = load_widths(yaml_file)
    assert table == {"residential": 12.0, "my_class": 3.0}
    plain = road_grid([0, 100, 200], [0, 200])
    np.testing.assert_allclose(road_widths(plain, ParcelConfig(widths=table)), 12.0)
    assert DEFAULT_WIDTHS_M["footway"] == 0  # excluded classes


@pytest.mark.parametrize("text", ["residential: wide\n", "- 1\n- 2\n", "a: -3\n", "a: [\n"])
def test_bad_widths_file_is_an_input_error(tmp_path, text: str) -> None:
    p = tmp_path / "w.yaml"
    p.write_text(text)
    with pytest.raises(InputError, match="w.yaml"):
        load_widths(p)


def test_unknown_road_classes_warn_once_with_the_count() -> None:
    roads = road_grid(
        [0, 100, 200],
        [0, 200],
        classes=["residential", "hovercraft", "hovercraft", None, "primary"],
    )
    with pytest.warns(
        UserWarning, match=r"^3 roads with unknown road classes \(hovercraft, <missing>\)"
    ) as rec:
        generate_parcels(roads)
    assert len([w for w in rec if "unknown road classes" in str(w.message)]) == 1


def test_highway_column_is_the_fallback_class_and_tunnels_do_not_cut() -> None:
    roads = road_grid([0, 100, 200], [0, 200]).rename(columns={"road_class": "highway"})
    roads["tunnel"] = [None, "yes", None, None, None]  # the middle road is underground
    parcels = generate_parcels(roads, box(0, 0, 200, 200))
    assert len(parcels) == 1
    with_tunnels = generate_parcels(roads, box(0, 0, 200, 200), ParcelConfig(keep_tunnels=True))
    assert len(with_tunnels) == 2


def test_user_mistakes_raise_input_error() -> None:
    roads = road_grid([0, 100], [0, 100])
    with pytest.raises(InputError, match="no CRS"):
        generate_parcels(roads.set_crs(None, allow_override=True))
    with pytest.raises(InputError, match="empty"):
        generate_parcels(roads.iloc[:0])
    with pytest.raises(InputError, match="no road meets the boundary"):
        generate_parcels(roads, box(5000, 5000, 6000, 6000))
    footways = roads.assign(road_class="footway")
    with pytest.raises(InputError, match="width 0"):
        generate_parcels(footways)


def test_self_intersecting_boundary_is_repaired_with_a_warning() -> None:
    roads = road_grid([0, 100, 200], [0, 100, 200])
    bowtie = shapely.Polygon(
        [(X0, Y0), (X0 + 200, Y0 + 200), (X0 + 200, Y0), (X0, Y0 + 200), (X0, Y0)]
    )
    assert not bowtie.is_valid
    boundary = gpd.GeoDataFrame(geometry=[bowtie], crs=CRS)
    with pytest.warns(UserWarning, match="make_valid"):
        parcels = generate_parcels(roads, boundary, ParcelConfig(min_area_m2=0))
    assert len(parcels) > 0
    assert shapely.is_valid(parcels.geometry.values).all()
    assert (
        shapely.difference(
            shapely.union_all(parcels.geometry.values), shapely.make_valid(bowtie)
        ).area
        < 1e-6
    )


@st.composite
def random_networks(draw):
    n_x = draw(st.integers(2, 5))
    n_y = draw(st.integers(2, 5))
    xs = sorted(draw(st.lists(st.floats(0, 500), min_size=n_x, max_size=n_x, unique=True)))
    ys = sorted(draw(st.lists(st.floats(0, 500), min_size=n_y, max_size=n_y, unique=True)))
    classes = draw(
        st.lists(
            st.sampled_from(["primary", "secondary", "residential", "service"]),
            min_size=n_x + n_y,
            max_size=n_x + n_y,
        )
    )
    diagonal = draw(st.booleans())
    clean = draw(st.sampled_from([0.0, 2.0, 5.0]))
    return xs, ys, classes, diagonal, clean


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_networks())
def test_random_road_networks_partition_the_boundary(net) -> None:
    xs, ys, classes, diagonal, clean = net
    roads = road_grid(xs, ys, classes)
    if diagonal:
        line = shapely.LineString([(X0 - 50, Y0 - 30), (X0 + 550, Y0 + 520)])
        extra = gpd.GeoDataFrame({"road_class": ["tertiary"]}, geometry=[line], crs=CRS)
        roads = gpd.GeoDataFrame(gpd.pd.concat([roads, extra], ignore_index=True), crs=CRS)
    boundary = box(-20, -20, 520, 520)
    b = boundary.geometry.iloc[0]
    r = road_union(roads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = generate_parcels(roads, boundary, ParcelConfig(clean_m=0, min_area_m2=0))
        parcels = generate_parcels(roads, boundary, ParcelConfig(clean_m=clean, min_area_m2=0))

    assert_partition(raw, b, r)
    assert_partition(parcels, b, r)
    # without the opening, parcels + roads cover the boundary exactly
    road_area = shapely.intersection(r, b).area
    assert raw["area_m2"].sum() + road_area == pytest.approx(b.area, rel=1e-6)
    # the opening only removes land; each opened parcel lies inside one raw block
    assert parcels["area_m2"].sum() <= raw["area_m2"].sum() * (1 + 1e-9)
    if clean == 0:
        assert len(parcels) == len(raw)
    if len(parcels):
        assert (parcels["compactness"] > 0).all() and (parcels["compactness"] <= 1 + 1e-9).all()
