"""POI distance-decay probability maps: p = 1 - min(d / dmax, 1), d exact haversine."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS, Transformer

from landforge.errors import InputError, OptionError
from landforge.features.options import PoiMapOptions
from landforge.features.poi_distance import haversine_m, nearest_distance_windows
from landforge.features.poi_maps import (
    EARTH_RADIUS_M,
    parse_dmax,
    poi_probability_maps,
    resolve_classes,
    write_poi_maps,
)
from landforge.io.raster import RasterGrid

UTM = "EPSG:32650"
#: Tolerances (m) of the exactness claims in landforge.features.poi_distance.
EXACT_GEOGRAPHIC_M = 1e-6
EXACT_PROJECTED_M = 1e-4
#: p is float32: a distance read back from p carries up to ~1e-7 * dmax of rounding.
P_ROUNDING = 2e-7


def reference_distances(grid: RasterGrid, pois: gpd.GeoDataFrame) -> np.ndarray:
    """Brute force: PROJ for every pixel centre, haversine to every POI, minimum."""
    crs = CRS.from_user_input(grid.crs.to_wkt())
    target = crs if crs.is_geographic else crs.geodetic_crs
    xs, ys = grid.pixel_centres()
    px, py = np.meshgrid(xs, ys)
    if not crs.is_geographic:
        px, py = Transformer.from_crs(crs, target, always_xy=True).transform(px, py)
    ll = pois.to_crs(target)
    qx, qy = ll.geometry.x.to_numpy(), ll.geometry.y.to_numpy()
    if len(qx) == 0:
        return np.full(grid.shape, np.inf)
    return haversine_m(px[..., None], py[..., None], qx, qy).min(axis=-1)


def reference_maps(grid: RasterGrid, pois: gpd.GeoDataFrame, dmax: dict) -> np.ndarray:
    return np.stack(
        [
            1 - np.minimum(reference_distances(grid, pois[pois["category"] == k]) / d, 1)
            for k, d in dmax.items()
        ]
    )


def engine_distances(grid: RasterGrid, pois: gpd.GeoDataFrame, dmax: float, **kw) -> np.ndarray:
    """Float64 distances straight from the engine (no float32 rounding of p)."""
    crs = CRS.from_user_input(grid.crs.to_wkt())
    ll = pois.to_crs(crs if crs.is_geographic else crs.geodetic_crs)
    lonlat = np.column_stack([ll.geometry.x, ll.geometry.y])
    out = np.full(grid.shape, np.inf)
    for (rows, cols), (d,) in nearest_distance_windows([lonlat], [dmax], grid, **kw):
        if d is not None:
            out[rows, cols] = d
    return out


def assert_same_within_dmax(ours: np.ndarray, ref: np.ndarray, dmax: float, tol: float) -> None:
    """Equal where either is below dmax (beyond it both only have to be >= dmax)."""
    near = (ref < dmax) | (ours < dmax)
    assert np.all(np.isfinite(ours[ref < dmax]))
    if near.any():
        assert np.abs(ours[near] - ref[near]).max() <= tol


def pois_at(xy: np.ndarray, categories, crs=UTM) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"category": list(categories)}, geometry=shapely.points(xy[:, 0], xy[:, 1]), crs=crs
    )


def test_maps_match_brute_force_haversine_on_a_utm_grid() -> None:
    rng = np.random.default_rng(7)
    grid = RasterGrid.from_bounds(500000, 3000000, 500000 + 37 * 7.3, 3000000 + 23 * 7.3, 7.3, UTM)
    # POIs inside and around the grid, some well outside
    xy = rng.uniform([499900, 2999900], [500400, 3000270], size=(60, 2))
    cats = rng.choice(["a", "b"], size=60)
    dmax = {"a": 80.0, "b": 150.0}
    maps = poi_probability_maps(pois_at(xy, cats), grid, dmax=dmax)
    assert maps.dtype == np.float32 and maps.shape == (2, 23, 37)
    expected = reference_maps(grid, pois_at(xy, cats), dmax)
    for band, d in enumerate(dmax.values()):
        assert np.abs(maps[band] - expected[band]).max() * d < EXACT_PROJECTED_M + P_ROUNDING * d
    assert maps.max() <= 1 and maps.min() >= 0


def test_utm_grid_distance_differs_from_haversine_by_the_scale_factor() -> None:
    """Why we do not measure in the grid plane: near Wuhan (UTM 50N, ~60 km west of the
    central meridian) the plane distance is ~0.04 % shorter than on the sphere, plus
    ~0.1 % by direction: about 0.1-0.5 m at 300 m."""
    x0, y0 = 560000.0, 3370000.0
    grid = RasterGrid.from_bounds(x0, y0, x0 + 300, y0 + 300, 10, UTM)
    xy = np.array([[x0 + 5.0, y0 + 5.0]])
    d = engine_distances(grid, pois_at(xy, ["a"]), 1000.0)
    xs, ys = grid.pixel_centres()
    px, py = np.meshgrid(xs, ys)
    plane = np.hypot(px - xy[0, 0], py - xy[0, 1])
    far = plane > 200
    rel = d[far] / plane[far] - 1
    assert 1e-4 < np.abs(rel).max() < 5e-3  # real but well under a metre at 300 m
    assert_same_within_dmax(d, reference_distances(grid, pois_at(xy, ["a"])), 1000, 1e-4)


utm_grids = st.builds(
    lambda x0, y0, res, w, h: RasterGrid.from_bounds(x0, y0, x0 + w * res, y0 + h * res, res, UTM),
    st.floats(300_000, 700_000),
    st.floats(0, 5_000_000),
    st.sampled_from([0.5, 1.0, 3.7, 10.0, 30.0]),
    st.integers(1, 40),
    st.integers(1, 40),
)


@settings(max_examples=25, deadline=None)
@given(
    grid=utm_grids,
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 25),
    dmax=st.floats(5, 1500),
    tile=st.sampled_from([1, 2, 3, 7, 64]),
)
def test_utm_distances_equal_brute_force_haversine(grid, seed, n, dmax, tile) -> None:
    rng = np.random.default_rng(seed)
    left, bottom, right, top = grid.bounds
    pad = dmax * rng.uniform(0, 1.2)  # POIs outside the grid too, within and beyond dmax
    xy = rng.uniform([left - pad, bottom - pad], [right + pad, top + pad], size=(n, 2))
    if n > 3:  # several POIs in one pixel, one duplicated
        xy[1] = xy[0] + rng.uniform(-0.2, 0.2, 2) * grid.res[0]
        xy[2] = xy[0]
    pois = pois_at(xy, ["a"] * n)
    ours = engine_distances(grid, pois, dmax, tile=tile, block_pixels=tile * 3)
    assert_same_within_dmax(ours, reference_distances(grid, pois), dmax, EXACT_PROJECTED_M)


lonlat_grids = st.builds(
    lambda lon0, lat0, res, w, h: RasterGrid.from_bounds(
        lon0, lat0, lon0 + w * res, lat0 + h * res, res, "EPSG:4326"
    ),
    st.floats(-179.9, 179.0),
    st.floats(-80, 79),
    st.sampled_from([2e-6, 1e-5, 1e-4, 1e-3]),
    st.integers(1, 40),
    st.integers(1, 40),
)


@settings(max_examples=25, deadline=None)
@given(
    grid=lonlat_grids,
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 25),
    dmax=st.floats(5, 3000),
    tile=st.sampled_from([1, 2, 5, 64]),
)
def test_lonlat_distances_equal_the_haversine_formula(grid, seed, n, dmax, tile) -> None:
    rng = np.random.default_rng(seed)
    left, bottom, right, top = grid.bounds
    pad = rng.uniform(0, 1.2) * dmax / 111_000 / np.cos(np.radians(max(abs(bottom), abs(top))))
    lonlat = rng.uniform([left - pad, bottom - pad], [right + pad, top + pad], size=(n, 2))
    if n > 2:
        lonlat[1] = lonlat[0]  # two POIs at one place
    pois = pois_at(lonlat, ["a"] * n, crs="EPSG:4326")
    ours = engine_distances(grid, pois, dmax, tile=tile, block_pixels=tile * 3)
    assert_same_within_dmax(ours, reference_distances(grid, pois), dmax, EXACT_GEOGRAPHIC_M)


def test_tiny_windows_give_the_one_window_result() -> None:
    rng = np.random.default_rng(11)
    grid = RasterGrid.from_bounds(500000, 3000000, 500000 + 47 * 2.5, 3000000 + 29 * 2.5, 2.5, UTM)
    xy = rng.uniform([499900, 2999900], [500220, 3000170], size=(40, 2))
    pois = pois_at(xy, rng.choice(["a", "b"], size=40))
    dmax = {"a": 60.0, "b": 200.0}
    whole = poi_probability_maps(pois, grid, dmax=dmax, tile=128, block_pixels=1 << 20)
    for tile, block in [(1, 1), (3, 7), (16, 40), (64, 64)]:
        tiny = poi_probability_maps(pois, grid, dmax=dmax, tile=tile, block_pixels=block)
        # the PROJ lattice follows the tile, so only the 1e-4 m exactness is shared
        assert np.abs(tiny - whole).max() * 200 < 2 * EXACT_PROJECTED_M + 1e-4
    one = poi_probability_maps(pois, grid, dmax=dmax, tile=16, block_pixels=40, workers=1)
    for workers in (2, 3, -1):  # threads, in order, a bounded number of windows ahead
        threaded = poi_probability_maps(
            pois, grid, dmax=dmax, tile=16, block_pixels=40, workers=workers
        )
        np.testing.assert_array_equal(threaded, one)


def test_pixels_beyond_dmax_are_zero_and_a_poi_pixel_is_one() -> None:
    grid = RasterGrid.from_bounds(500000, 3000000, 500100, 3000100, 10, UTM)
    maps = poi_probability_maps(
        pois_at(np.array([[500005.0, 3000095.0]]), ["a"]), grid, dmax={"a": 50}
    )
    assert maps[0, 0, 0] == pytest.approx(1.0, abs=1e-6)
    assert maps[0, -1, -1] == 0 and maps[0, 6:, 6:].max() == 0


def test_pois_outside_the_grid_count_within_dmax() -> None:
    grid = RasterGrid.from_bounds(500000, 3000000, 500100, 3000100, 10, UTM)
    near = np.array([[499950.0, 3000055.0]])  # 50 m left of the grid
    maps = poi_probability_maps(pois_at(near, ["a"]), grid, dmax={"a": 100.0})
    assert maps[0, 4, 0] == pytest.approx(1 - 55 / 100, abs=1e-3)  # row 4: centre (5, 55)
    assert maps[0, :, -1].max() == 0  # right column is > 100 m away
    far = np.array([[499850.0, 3000055.0]])
    assert poi_probability_maps(pois_at(far, ["a"]), grid, dmax={"a": 100.0}).max() == 0


def test_a_class_without_pois_is_zeros_with_a_warning() -> None:
    grid = RasterGrid.from_bounds(500000, 3000000, 500100, 3000100, 10, UTM)
    pois = pois_at(np.array([[500050.0, 3000050.0]]), ["a"])
    with pytest.warns(UserWarning, match="no POI of class 'b'"):
        maps = poi_probability_maps(pois, grid, dmax={"a": 100.0, "b": 100.0})
    assert maps[1].max() == 0 and maps[0].max() > 0.9
    with pytest.warns(UserWarning, match="no POI of class 'c'"):
        assert poi_probability_maps(pois, grid, dmax={"c": 100.0}).max() == 0


def test_pois_in_lonlat_on_a_projected_grid() -> None:
    grid = RasterGrid.from_bounds(500000, 3000000, 500200, 3000200, 10, UTM)
    xy = np.array([[500033.0, 3000077.0], [500180.0, 3000020.0]])
    lonlat = pois_at(xy, ["a", "a"]).to_crs(4326)
    maps = poi_probability_maps(lonlat, grid, dmax={"a": 120.0})
    expected = reference_maps(grid, pois_at(xy, ["a", "a"]), {"a": 120.0})
    assert np.abs(maps - expected).max() < 1e-5


def test_geographic_grid_uses_great_circle_distance() -> None:
    rng = np.random.default_rng(3)
    grid = RasterGrid.from_bounds(24.93, 60.16, 24.96, 60.18, 0.001, "EPSG:4326")
    lonlat = rng.uniform([24.92, 60.155], [24.97, 60.185], size=(25, 2))
    maps = poi_probability_maps(pois_at(lonlat, ["a"] * 25, crs=4326), grid, dmax={"a": 400.0})
    xs, ys = grid.pixel_centres()
    px, py = np.meshgrid(xs, ys)
    d = haversine(px[..., None], py[..., None], lonlat[:, 0], lonlat[:, 1]).min(axis=-1)
    assert np.abs(maps[0] - (1 - np.minimum(d / 400.0, 1))).max() < 1e-6


def test_near_the_pole_across_the_antimeridian_and_far() -> None:
    cases = [(179.99, 10.0, 1e-4, 2000.0), (-20.0, 88.5, 1e-3, 2000.0), (10.0, 45.0, 0.1, 4e5)]
    for lon0, lat0, res, dmax in cases:  # the last ones take the sin() path
        grid = RasterGrid.from_bounds(lon0, lat0, lon0 + 30 * res, lat0 + 20 * res, res, 4326)
        rng = np.random.default_rng(5)
        lonlat = rng.uniform([lon0 - 10 * res, lat0], [lon0 + 40 * res, lat0 + 20 * res], (8, 2))
        lonlat[:, 0] = (lonlat[:, 0] + 180) % 360 - 180  # POIs east of 180 as -179.99...
        pois = pois_at(lonlat, ["a"] * 8, crs=4326)
        ours = engine_distances(grid, pois, dmax, tile=8)
        ref = reference_distances(grid, pois)
        assert_same_within_dmax(ours, ref, dmax, EXACT_GEOGRAPHIC_M * max(1, dmax / 1e4))


def haversine(lon1, lat1, lon2, lat2):
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


class FakeRci:
    """A mapping with the taxonomy API subset the maps use (codes R/C/I)."""

    name = "fake_rci"

    def classes(self):
        from types import SimpleNamespace as C

        return [
            C(code="R", name="residential", value=1, aliases=()),
            C(code="C", name="commercial", value=2, aliases=()),
            C(code="I", name="industrial", value=3, aliases=()),
        ]

    def map_many(self, values):
        table = {"residence_lodging": "R", "catering": "C", "enterprises_companies": "I"}
        s = pd.Series(list(values), dtype=object)
        return pd.Series([table.get(v) for v in s], dtype=object), {}


@pytest.fixture(params=["fake", "gbt35648_rci"])
def rci_mapping(request):
    if request.param == "fake":
        return FakeRci()
    taxonomy = pytest.importorskip("landforge.taxonomy")
    try:
        return taxonomy.load_mapping("gbt35648_rci")
    except Exception as exc:
        pytest.skip(f"gbt35648_rci not available: {exc}")


def test_classes_by_name_or_code_through_a_mapping(rci_mapping) -> None:
    grid = RasterGrid.from_bounds(0, 0, 100, 100, 10, UTM)
    xy = np.array([[10.0, 10.0], [90.0, 90.0], [50.0, 50.0]])
    pois = pois_at(xy, ["residence_lodging", "catering", "enterprises_companies"])
    by_name = poi_probability_maps(
        pois,
        grid,
        dmax={"residential": 100, "commercial": 100, "industrial": 300},
        mapping=rci_mapping,
    )
    by_code = poi_probability_maps(
        pois, grid, dmax={"R": 100, "C": 100, "I": 300}, mapping=rci_mapping
    )
    np.testing.assert_array_equal(by_name, by_code)
    expected = reference_maps(grid, pois_at(xy, ["r", "c", "i"]), {"r": 100, "c": 100, "i": 300})
    np.testing.assert_allclose(by_name, expected, atol=1e-5)
    with pytest.raises(InputError, match="no class 'public'"):
        resolve_classes({"public": 100}, rci_mapping)


def test_write_poi_maps_names_the_bands(tmp_path) -> None:
    grid = RasterGrid.from_bounds(0, 0, 100, 100, 10, UTM)
    maps = poi_probability_maps(pois_at(np.array([[50.0, 50.0]]), ["a"]), grid, dmax={"a": 50.0})
    path = write_poi_maps(
        tmp_path / "poi.tif",
        np.concatenate([maps, maps]),
        grid,
        ["residential", "commercial"],
        {"residential": 50, "commercial": 50},
    )
    with rasterio.open(path) as src:
        assert src.descriptions == ("residential", "commercial")
        assert src.dtypes[0] == "float32" and src.crs.to_epsg() == 32650
        np.testing.assert_array_equal(src.read(1), maps[0])
        assert "residential=50" in src.tags()["dmax_m"]


def test_parse_dmax() -> None:
    assert parse_dmax("residential=300, commercial=300,industrial=800") == {
        "residential": 300.0,
        "commercial": 300.0,
        "industrial": 800.0,
    }
    for bad, message in [
        ("", "give CLASS=METRES"),
        ("residential", "expected CLASS=METRES"),
        ("r=abc", "not a number"),
        ("r=-3", "must be > 0"),
        ("r=1,r=2", "given twice"),
    ]:
        with pytest.raises(OptionError, match=message) as info:
            parse_dmax(bad)
        assert info.value.field == "dmax"
        # the options model parses a dmax text the same way
        with pytest.raises(OptionError, match=message) as info:
            PoiMapOptions.build(dmax=bad)
        assert info.value.field == "dmax"


def test_options_take_dmax_as_text_or_mapping() -> None:
    text = PoiMapOptions.build(dmax="residential=300,industrial=800")
    assert text == PoiMapOptions(dmax={"residential": 300, "industrial": 800.0})
    assert list(text.dmax) == ["residential", "industrial"]  # the band order
    with pytest.raises(OptionError, match="must be > 0") as info:
        PoiMapOptions.build(dmax={"residential": 0})
    assert info.value.field == "dmax"
    with pytest.raises(OptionError) as info:
        PoiMapOptions.build(dmax={"a": 1}, tile=0)
    assert info.value.field == "tile"


def test_options_object_and_keywords_give_the_same_maps() -> None:
    grid = RasterGrid.from_bounds(0, 0, 100, 100, 10, UTM)
    pois = pois_at(np.array([[50.0, 50.0], [10.0, 80.0]]), ["a", "b"])
    opts = PoiMapOptions(dmax={"a": 60, "b": 40}, tile=4)
    np.testing.assert_array_equal(
        poi_probability_maps(pois, grid, opts),
        poi_probability_maps(pois, grid, dmax="a=60,b=40", tile=4),
    )
    # keywords override the options object
    assert poi_probability_maps(pois, grid, opts, dmax={"b": 40}).shape == (1, 10, 10)


def test_an_unknown_taxonomy_names_the_option() -> None:
    grid = RasterGrid.from_bounds(0, 0, 100, 100, 10, UTM)
    pois = pois_at(np.array([[50.0, 50.0]]), ["a"])
    with pytest.raises(OptionError, match="no_such_taxonomy") as info:
        poi_probability_maps(pois, grid, dmax={"a": 10}, taxonomy="no_such_taxonomy")
    assert info.value.field == "taxonomy"


def test_missing_category_column_or_crs() -> None:
    grid = RasterGrid.from_bounds(0, 0, 100, 100, 10, UTM)
    pois = pois_at(np.array([[50.0, 50.0]]), ["a"])
    with pytest.raises(OptionError, match="no category column 'kind'") as info:
        poi_probability_maps(pois, grid, dmax={"a": 10}, category_col="kind")
    assert info.value.field == "category_col"
    with pytest.raises(InputError, match="no CRS"):
        poi_probability_maps(pois.set_crs(None, allow_override=True), grid, dmax={"a": 10})


def test_a_rotated_grid_is_measured_at_its_true_pixel_centres() -> None:
    from affine import Affine

    grid = RasterGrid(
        rasterio.crs.CRS.from_user_input(UTM),
        Affine.translation(500000, 3000300) @ Affine.rotation(20) @ Affine.scale(4, -4),
        35,
        27,
    )
    rng = np.random.default_rng(2)
    xy = rng.uniform([499900, 2999900], [500300, 3000400], size=(15, 2))
    pois = pois_at(xy, ["a"] * 15)
    t = grid.transform
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    px, py = t.c + t.a * cols + t.b * rows, t.f + t.d * cols + t.e * rows
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(px, py)
    ll = pois.to_crs(4326)
    ref = haversine_m(lon[..., None], lat[..., None], ll.geometry.x.values, ll.geometry.y.values)
    ours = engine_distances(grid, pois, 150.0, tile=8)
    assert_same_within_dmax(ours, ref.min(axis=-1), 150.0, EXACT_PROJECTED_M)


@pytest.mark.parametrize("block_pixels", [1 << 19, 32 * 40])
def test_streamed_cog_equals_in_memory_maps(tmp_path, block_pixels):
    """Written window by window (bounded memory) == the whole array, also when windows
    split the width into several pieces."""
    import geopandas as gpd
    import rasterio
    from shapely.geometry import Point

    from landforge.features.poi_maps import poi_probability_maps, write_poi_probability_maps
    from landforge.io.raster import RasterGrid

    grid = RasterGrid.from_bounds(
        400000, 3400000, 400000 + 150 * 2.0, 3400000 + 70 * 2.0, 2.0, 32650
    )
    rng = np.random.default_rng(3)
    xy = rng.uniform([400000, 3400000], [400300, 3400140], size=(30, 2))
    pois = gpd.GeoDataFrame(
        {"category": rng.choice(["a", "b"], 30)},
        geometry=[Point(x, y) for x, y in xy],
        crs=32650,
    )
    dmax = {"a": 80.0, "b": 40.0}
    maps = poi_probability_maps(pois, grid, dmax=dmax, block_pixels=block_pixels)
    out = write_poi_probability_maps(
        tmp_path / "p.tif", pois, grid, dmax=dmax, block_pixels=block_pixels
    )
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(), maps)
        assert src.descriptions == ("a", "b")
    assert [p.name for p in tmp_path.iterdir()] == ["p.tif"]  # no staging file left
    empty = pois.iloc[:0]
    with pytest.warns(UserWarning, match="all zeros"):
        zero = write_poi_probability_maps(tmp_path / "z.tif", empty, grid, dmax=dmax)
    with rasterio.open(zero) as src:
        assert not src.read().any()
