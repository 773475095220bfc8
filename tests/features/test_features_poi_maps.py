"""POI distance-decay probability maps: p = 1 - min(d / dmax, 1), d exact."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely

from landforge.errors import InputError
from landforge.features.poi_maps import (
    EARTH_RADIUS_M,
    parse_dmax,
    poi_probability_maps,
    resolve_classes,
    write_poi_maps,
)
from landforge.io.raster import RasterGrid

UTM = "EPSG:32650"


def brute_force(grid: RasterGrid, xy: np.ndarray, dmax: float) -> np.ndarray:
    xs, ys = grid.pixel_centres()
    px, py = np.meshgrid(xs, ys)
    d = np.sqrt((px[..., None] - xy[:, 0]) ** 2 + (py[..., None] - xy[:, 1]) ** 2).min(axis=-1)
    return 1 - np.minimum(d / dmax, 1)


def pois_at(xy: np.ndarray, categories, crs=UTM) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"category": list(categories)}, geometry=shapely.points(xy[:, 0], xy[:, 1]), crs=crs
    )


def test_maps_match_brute_force_euclidean_distance() -> None:
    rng = np.random.default_rng(7)
    grid = RasterGrid.from_bounds(500000, 3000000, 500000 + 37 * 7.3, 3000000 + 23 * 7.3, 7.3, UTM)
    # POIs inside and around the grid, some well outside
    xy = rng.uniform([499900, 2999900], [500400, 3000270], size=(60, 2))
    cats = rng.choice(["a", "b"], size=60)
    maps = poi_probability_maps(pois_at(xy, cats), grid, {"a": 80.0, "b": 150.0})
    assert maps.dtype == np.float32 and maps.shape == (2, 23, 37)
    for band, (cat, dmax) in enumerate([("a", 80.0), ("b", 150.0)]):
        expected = brute_force(grid, xy[cats == cat], dmax)
        assert np.abs(maps[band] - expected).max() < 1e-6
    assert maps.max() <= 1 and maps.min() >= 0


def test_pois_outside_the_grid_count_within_dmax() -> None:
    grid = RasterGrid.from_bounds(0, 0, 100, 100, 10, UTM)
    near = np.array([[-50.0, 55.0]])  # 50 m left of the grid
    maps = poi_probability_maps(pois_at(near, ["a"]), grid, {"a": 100.0})
    assert maps[0, 4, 0] == pytest.approx(1 - 55 / 100, abs=1e-6)  # row 4: centre (5, 55)
    assert maps[0, :, -1].max() == 0  # right column is > 100 m away
    far = np.array([[-150.0, 55.0]])
    assert poi_probability_maps(pois_at(far, ["a"]), grid, {"a": 100.0}).max() == 0


def test_a_class_without_pois_is_zeros_with_a_warning() -> None:
    grid = RasterGrid.from_bounds(0, 0, 100, 100, 10, UTM)
    pois = pois_at(np.array([[50.0, 50.0]]), ["a"])
    with pytest.warns(UserWarning, match="no POI of class 'b'"):
        maps = poi_probability_maps(pois, grid, {"a": 100.0, "b": 100.0})
    assert maps[1].max() == 0 and maps[0].max() > 0.9


def test_pois_in_lonlat_on_a_projected_grid() -> None:
    grid = RasterGrid.from_bounds(500000, 3000000, 500200, 3000200, 10, UTM)
    xy = np.array([[500033.0, 3000077.0], [500180.0, 3000020.0]])
    lonlat = pois_at(xy, ["a", "a"]).to_crs(4326)
    maps = poi_probability_maps(lonlat, grid, {"a": 120.0})
    assert np.abs(maps[0] - brute_force(grid, xy, 120.0)).max() < 1e-5


def haversine(lon1, lat1, lon2, lat2):
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


def test_geographic_grid_uses_great_circle_distance() -> None:
    rng = np.random.default_rng(3)
    grid = RasterGrid.from_bounds(24.93, 60.16, 24.96, 60.18, 0.001, "EPSG:4326")
    lonlat = rng.uniform([24.92, 60.155], [24.97, 60.185], size=(25, 2))
    maps = poi_probability_maps(pois_at(lonlat, ["a"] * 25, crs=4326), grid, {"a": 400.0})
    xs, ys = grid.pixel_centres()
    px, py = np.meshgrid(xs, ys)
    d = haversine(px[..., None], py[..., None], lonlat[:, 0], lonlat[:, 1]).min(axis=-1)
    assert np.abs(maps[0] - (1 - np.minimum(d / 400.0, 1))).max() < 1e-6


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
        pois, grid, {"residential": 100, "commercial": 100, "industrial": 300}, mapping=rci_mapping
    )
    by_code = poi_probability_maps(pois, grid, {"R": 100, "C": 100, "I": 300}, mapping=rci_mapping)
    np.testing.assert_array_equal(by_name, by_code)
    np.testing.assert_allclose(by_name[0], brute_force(grid, xy[:1], 100), atol=1e-6)
    np.testing.assert_allclose(by_name[2], brute_force(grid, xy[2:], 300), atol=1e-6)
    with pytest.raises(InputError, match="no class 'public'"):
        resolve_classes({"public": 100}, rci_mapping)


def test_write_poi_maps_names_the_bands(tmp_path) -> None:
    grid = RasterGrid.from_bounds(0, 0, 100, 100, 10, UTM)
    maps = poi_probability_maps(pois_at(np.array([[50.0, 50.0]]), ["a"]), grid, {"a": 50.0})
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
        with pytest.raises(InputError, match=message):
            parse_dmax(bad)


def test_missing_category_column_or_crs() -> None:
    grid = RasterGrid.from_bounds(0, 0, 100, 100, 10, UTM)
    pois = pois_at(np.array([[50.0, 50.0]]), ["a"])
    with pytest.raises(InputError, match="no category column 'kind'"):
        poi_probability_maps(pois, grid, {"a": 10}, category_col="kind")
    with pytest.raises(InputError, match="no CRS"):
        poi_probability_maps(pois.set_crs(None, allow_override=True), grid, {"a": 10})
