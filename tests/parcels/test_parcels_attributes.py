"""Parcel attributes: district id, and the city centre estimated from road/POI density."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from parcel_helpers import CRS, X0, Y0, box, road_grid

from landforge.cli import main
from landforge.errors import InputError, OptionError
from landforge.parcels.generate import ParcelConfig, estimate_centre, generate_parcels
from landforge.synth import make_city


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    out = tmp_path_factory.mktemp("city")
    return make_city(
        out,
        size_m=600,
        seed=0,
        gsd=1.0,
        t2=False,
        s2=False,
        s1=False,
        population=False,
        quiet=True,
    )


def _city_centre(city) -> tuple[float, float]:
    x0, y0, x1, y1 = json.loads(city.path("city.json").read_text())["extent"]
    return (x0 + x1) / 2, (y0 + y1) / 2


def test_parcels_get_the_district_holding_them(city) -> None:
    roads = gpd.read_file(city.path("roads.gpkg"))
    boundary = gpd.read_file(city.path("boundary.gpkg"))
    districts = gpd.read_file(city.path("districts.gpkg"))
    parcels = generate_parcels(roads, boundary, districts=districts.to_crs(4326))
    assert parcels["district_id"].notna().all()
    assert set(parcels["district_id"]) <= set(districts["district_id"])
    # each parcel's representative point lies in the district it was given
    points = shapely.point_on_surface(parcels.geometry.values)
    polys = districts.set_index("district_id").geometry.reindex(parcels["district_id"]).values
    assert shapely.dwithin(polys, points, 1e-6).all()
    # without districts there is no district_id column
    assert "district_id" not in generate_parcels(roads, boundary).columns


def test_district_ids_fall_back_to_row_number_and_nearest_district() -> None:
    roads = road_grid([0, 100, 200, 300], [0, 100, 200, 300])
    # two districts covering only the west and east thirds: the middle blocks are in none
    west = shapely.box(X0 - 100, Y0 - 100, X0 + 100, Y0 + 400)
    east = shapely.box(X0 + 200, Y0 - 100, X0 + 400, Y0 + 400)
    districts = gpd.GeoDataFrame({"name": ["w", "e"]}, geometry=[west, east], crs=CRS)
    parcels = generate_parcels(roads, box(0, 0, 300, 300), districts=districts)
    x = shapely.get_x(shapely.centroid(parcels.geometry.values)) - X0
    assert (parcels["district_id"][x < 100] == 1).all()
    assert (parcels["district_id"][x > 200] == 2).all()
    middle = parcels["district_id"][(x > 100) & (x < 200)]
    assert len(middle) == 3 and middle.isin([1, 2]).all()  # the nearest of the two
    named = generate_parcels(
        roads, box(0, 0, 300, 300), ParcelConfig(district_col="name"), districts=districts
    )
    assert set(named["district_id"]) == {"w", "e"}


def test_estimated_centre_is_near_the_synthetic_city_centre(city) -> None:
    roads = gpd.read_file(city.path("roads.gpkg"))
    cx, cy = _city_centre(city)
    x, y = estimate_centre(roads)
    assert np.hypot(x - cx, y - cy) < 300
    pois = gpd.read_parquet(city.path("pois.parquet")).to_crs(roads.crs)
    x, y = estimate_centre(roads, pois)
    assert np.hypot(x - cx, y - cy) < 300
    parcels = generate_parcels(roads, gpd.read_file(city.path("boundary.gpkg")))
    assert parcels.attrs["centre_method"] == "density"
    px, py = parcels.attrs["centre"]
    assert np.hypot(px - cx, py - cy) < 300


def test_estimated_centre_follows_the_dense_corner() -> None:
    # a 2 km grid with 400 m spacing, plus a 40 m grid in the north-east 400 m corner
    coarse = road_grid(range(0, 2001, 400), range(0, 2001, 400), overhang=0)
    fine = [
        shapely.LineString([(X0 + x, Y0 + 1600), (X0 + x, Y0 + 2000)])
        for x in range(1600, 2001, 40)
    ] + [
        shapely.LineString([(X0 + 1600, Y0 + y), (X0 + 2000, Y0 + y)])
        for y in range(1600, 2001, 40)
    ]
    lines = list(coarse.geometry) + fine
    roads = gpd.GeoDataFrame({"road_class": ["residential"] * len(lines)}, geometry=lines, crs=CRS)
    x, y = estimate_centre(roads, cell_m=50, bandwidth_m=200)
    assert 1600 <= x - X0 <= 2000 and 1600 <= y - Y0 <= 2000
    # POIs piled in the south-west corner pull the peak there when they dominate
    pois = gpd.GeoSeries([shapely.Point(X0 + 100, Y0 + 100)] * 50, crs=CRS)
    x, y = estimate_centre(roads, pois, cell_m=50, bandwidth_m=200)
    assert x - X0 < 400 and y - Y0 < 400
    # the old default stays available
    parcels = generate_parcels(roads, None, ParcelConfig(centre_method="centroid"))
    assert parcels.attrs["centre"] == pytest.approx((X0 + 1000, Y0 + 1000))
    dense = generate_parcels(roads, None)
    assert dense.attrs["centre_method"] == "density"
    assert dense.attrs["centre"][0] - X0 >= 1600


def test_a_symmetric_grid_peaks_at_its_middle() -> None:
    roads = road_grid([0, 100, 200, 300, 400], [0, 100, 200, 300, 400])
    assert estimate_centre(roads) == pytest.approx((X0 + 200, Y0 + 200))


def test_given_centre_and_bad_settings() -> None:
    roads = road_grid([0, 100, 200], [0, 100, 200])
    parcels = generate_parcels(roads, None, ParcelConfig(centre=(X0, Y0)))
    assert parcels.attrs == {"centre": (X0, Y0), "centre_method": "given"}
    with pytest.raises(OptionError, match="centre_method"):
        generate_parcels(roads, None, centre_method="median")
    with pytest.raises(OptionError, match="centre"):
        generate_parcels(roads, None, centre="1,2,3")
    with pytest.raises(OptionError, match="centre_bandwidth_m"):
        estimate_centre(roads, bandwidth_m=0)
    with pytest.raises(InputError):
        estimate_centre(roads.iloc[:0])
    # the centre in another CRS, given as text (as the CLI and a pipeline give it)
    lonlat = gpd.GeoSeries([shapely.Point(X0, Y0)], crs=CRS).to_crs(4326).iloc[0]
    given = generate_parcels(roads, None, centre=f"{lonlat.x},{lonlat.y}", centre_crs="4326")
    assert given.attrs["centre"] == pytest.approx((X0, Y0))


def test_cli_districts_centre_and_poi(city, tmp_path, capsys) -> None:
    out = tmp_path / "parcels.parquet"
    base = ["parcels", "generate", "--roads", str(city.path("roads.gpkg"))]
    base += ["--boundary", str(city.path("boundary.gpkg")), "--out", str(out)]
    assert main([*base, "--districts", str(city.path("districts.gpkg"))]) == 0
    parcels = gpd.read_parquet(out)
    assert parcels["district_id"].between(1, 4).all()
    assert "centre (density)" in capsys.readouterr().out

    assert main([*base, "--poi", str(city.path("pois.parquet"))]) == 0
    assert "centre (density)" in capsys.readouterr().out

    cx, cy = _city_centre(city)
    lonlat = gpd.GeoSeries([shapely.Point(cx, cy)], crs=parcels.crs).to_crs(4326).iloc[0]
    assert main([*base, "--centre", f"{lonlat.x},{lonlat.y}", "--centre-crs", "4326"]) == 0
    text = capsys.readouterr().out
    assert "centre (given)" in text and f"{cx:.1f}" in text

    assert (
        main(
            [
                *base,
                "--centre-method",
                "centroid",
                "--district-col",
                "name",
                "--districts",
                str(city.path("districts.gpkg")),
            ]
        )
        == 0
    )
    assert "centre (centroid)" in capsys.readouterr().out
    assert set(gpd.read_parquet(out)["district_id"]) <= {
        "Old Town",
        "Riverside",
        "Hillside",
        "Harbour",
    }
    assert main([*base, "--centre", "1;2"]) != 0
