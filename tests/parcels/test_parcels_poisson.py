"""Poisson-disk patch centres: spaced, inside their parcels, more in larger parcels."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parcel_helpers import CRS, X0, Y0

from landforge.cli import main
from landforge.errors import InputError, OptionError
from landforge.parcels.options import PatchOptions
from landforge.parcels.poisson import patch_squares, poisson_disk, poisson_patches

TOL = 1e-6


def layer(*geoms, ids=None):
    moved = [shapely.affinity.translate(g, X0, Y0) for g in geoms]
    ids = list(range(1, len(geoms) + 1)) if ids is None else ids
    return gpd.GeoDataFrame({"parcel_id": ids}, geometry=moved, crs=CRS)


def min_pair_distance(points) -> float:
    xy = np.column_stack([points.geometry.x, points.geometry.y])
    if len(xy) < 2:
        return np.inf
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def check_patches(parcels, patches, size, radius, min_inside):
    """The invariants every patch layer keeps."""
    assert set(patches["parcel_id"]) == set(parcels["parcel_id"])  # >= 1 per parcel
    assert patches["patch_id"].tolist() == list(range(1, len(patches) + 1))
    squares = patch_squares(patches, size)
    for pid, geom in zip(parcels["parcel_id"], parcels.geometry, strict=True):
        mine = patches[patches["parcel_id"] == pid]
        assert min_pair_distance(mine) >= radius - TOL
        assert geom.covers(shapely.MultiPoint(list(mine.geometry))) or mine["fallback"].all()
        normal = ~mine["fallback"].to_numpy()
        frac = shapely.area(shapely.intersection(squares[mine.index].values, geom)) / size**2
        assert (frac[normal] >= min_inside - TOL).all()
        np.testing.assert_allclose(frac, mine["inside_fraction"], atol=1e-9)


def test_rectangular_parcel_is_filled_with_whole_patches() -> None:
    parcels = layer(shapely.box(0, 0, 1000, 600))
    patches = poisson_patches(parcels, patch_size_m=100)
    check_patches(parcels, patches, 100, 100, 1.0)
    assert not patches["fallback"].any()
    # a maximal Poisson-disk set: about 0.5-0.7 points per r^2 of the eroded area
    eroded = 900 * 500 / 100**2
    assert 0.4 * eroded <= len(patches) <= 1.0 * eroded
    assert patches.crs == parcels.crs


def test_concave_parcel_with_a_hole_keeps_patches_out_of_the_hole() -> None:
    ring = shapely.Point(0, 0).buffer(900).difference(shapely.Point(0, 0).buffer(400))
    ell = shapely.Polygon([(0, 0), (900, 0), (900, 300), (300, 300), (300, 900), (0, 900)])
    parcels = layer(ring, ell)
    patches = poisson_patches(parcels, patch_size_m=120, radius_m=150, seed=3)
    check_patches(parcels, patches, 120, 150, 1.0)
    hole = shapely.affinity.translate(shapely.Point(0, 0).buffer(400), X0, Y0)
    ring_squares = patch_squares(patches[patches["parcel_id"] == 1], 120)
    assert not ring_squares.intersects(hole).any()


def test_a_parcel_too_small_for_a_patch_gets_one_at_its_pole() -> None:
    parcels = layer(shapely.box(0, 0, 50, 40), shapely.box(0, 0, 400, 400))
    patches = poisson_patches(parcels, patch_size_m=100)
    small = patches[patches["parcel_id"] == 1]
    assert len(small) == 1 and bool(small["fallback"].iloc[0])
    assert parcels.geometry.iloc[0].contains(small.geometry.iloc[0])
    assert small["inside_fraction"].iloc[0] == pytest.approx(0.2)
    assert not patches.loc[patches["parcel_id"] == 2, "fallback"].any()


def test_min_inside_lets_patches_reach_over_the_edge() -> None:
    # a 95 m wide strip holds no whole 100 m patch, but many patches 90 % inside
    parcels = layer(shapely.box(0, 0, 2000, 95))
    whole = poisson_patches(parcels, patch_size_m=100)
    assert whole["fallback"].all() and len(whole) == 1
    partial = poisson_patches(parcels, patch_size_m=100, min_inside=0.9)
    assert not partial["fallback"].any() and len(partial) >= 10
    check_patches(parcels, partial, 100, 100, 0.9)


def test_count_grows_with_area_and_max_per_parcel_caps_it() -> None:
    sides = [150, 300, 600, 1200]
    parcels = layer(*[shapely.box(0, 0, s, s) for s in sides])
    counts = poisson_patches(parcels, patch_size_m=100).groupby("parcel_id").size().tolist()
    assert counts == sorted(counts) and counts[0] >= 1 and counts[-1] > 3 * counts[1]
    capped = poisson_patches(parcels, patch_size_m=100, max_per_parcel=5)
    assert capped.groupby("parcel_id").size().max() == 5
    check_patches(parcels, capped, 100, 100, 1.0)


def test_same_seed_same_patches_and_parcels_do_not_affect_each_other() -> None:
    a, b = shapely.box(0, 0, 800, 500), shapely.box(2000, 0, 2600, 900)
    first = poisson_patches(layer(a, b), patch_size_m=80, seed=7)
    again = poisson_patches(layer(a, b), patch_size_m=80, seed=7)
    other = poisson_patches(layer(a, b), patch_size_m=80, seed=8)
    assert first.geometry.equals(again.geometry)
    assert not first.geometry.equals(other.geometry)
    # a parcel's patches depend on its position and the seed only
    alone = poisson_patches(layer(a, shapely.box(0, 0, 10, 10)), patch_size_m=80, seed=7)
    assert (
        alone[alone["parcel_id"] == 1]
        .geometry.reset_index(drop=True)
        .equals(first[first["parcel_id"] == 1].geometry.reset_index(drop=True))
    )


def test_geographic_parcels_are_sampled_in_metres_and_bad_options_raise() -> None:
    parcels = layer(shapely.box(0, 0, 500, 500)).to_crs(4326)
    patches = poisson_patches(parcels, patch_size_m=100)
    assert patches.crs.is_projected and len(patches) >= 4
    with pytest.raises(OptionError, match="patch_size_m"):
        poisson_patches(parcels, patch_size_m=0)
    with pytest.raises(OptionError, match="min_inside"):
        poisson_patches(parcels, patch_size_m=100, min_inside=0)
    with pytest.raises(OptionError, match="id_col: parcels has no column 'nope'"):
        poisson_patches(parcels, PatchOptions(patch_size_m=100, id_col="nope"))
    with pytest.raises(InputError, match="CRS"):
        poisson_patches(gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)]), patch_size_m=1)
    with pytest.raises(InputError, match="polygon"):
        poisson_patches(gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)], crs=CRS), patch_size_m=1)


def test_poisson_disk_without_patches_fills_up_to_the_edge() -> None:
    pts = poisson_disk(shapely.box(0, 0, 100, 100), 10.0, rng=np.random.default_rng(0))
    assert len(pts) >= 60  # ~ 0.7 / r^2 per unit area
    assert (pts >= 0).all() and (pts <= 100).all()
    assert pts[:, 0].min() < 10 and pts[:, 0].max() > 90


@st.composite
def polygons(draw):
    """Random star-shaped polygons: convex-ish or concave, 3-12 vertices, 100-800 m."""
    n = draw(st.integers(3, 12))
    radii = draw(st.lists(st.floats(100, 800), min_size=n, max_size=n))
    jitter = draw(st.lists(st.floats(0.0, 0.9), min_size=n, max_size=n))
    angles = (np.arange(n) + np.array(jitter)) * 2 * np.pi / n
    poly = shapely.Polygon(np.column_stack([np.cos(angles) * radii, np.sin(angles) * radii]))
    return shapely.make_valid(poly) if not poly.is_valid else poly


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    geom=polygons(),
    size=st.sampled_from([40.0, 90.0]),
    factor=st.sampled_from([1.0, 1.5]),
    min_inside=st.sampled_from([1.0, 0.9]),
    seed=st.integers(0, 3),
)
def test_random_polygons_keep_every_invariant(geom, size, factor, min_inside, seed) -> None:
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and g.area > 1]
    parcels = layer(*parts)
    patches = poisson_patches(
        parcels, patch_size_m=size, radius_m=size * factor, min_inside=min_inside, seed=seed
    )
    check_patches(parcels, patches, size, size * factor, min_inside)
    again = poisson_patches(
        parcels, patch_size_m=size, radius_m=size * factor, min_inside=min_inside, seed=seed
    )
    assert patches.geometry.equals(again.geometry)


def test_cli_writes_patch_centres_or_squares(tmp_path, capsys) -> None:
    parcels = tmp_path / "parcels.parquet"
    layer(shapely.box(0, 0, 600, 400), shapely.box(0, 0, 30, 30)).to_parquet(parcels)
    out = tmp_path / "patches.gpkg"
    assert main(["patches", str(parcels), "--size-m", "100", "--seed", "2", "--out", str(out)]) == 0
    patches = gpd.read_file(out)
    assert set(patches["parcel_id"]) == {1, 2} and patches.geom_type.eq("Point").all()
    assert "patches" in capsys.readouterr().out
    squares = tmp_path / "squares.parquet"
    args = ["patches", str(parcels), "--size-m", "100", "--seed", "2", "--squares"]
    args += ["--out", str(squares)]
    assert main(args) == 0
    polys = gpd.read_parquet(squares)
    assert len(polys) == len(patches) and polys.geom_type.eq("Polygon").all()
    capsys.readouterr()
    assert main(["patches", str(parcels), "--size-m", "-1", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: --size-m: ")
