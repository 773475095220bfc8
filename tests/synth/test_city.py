"""The synthetic city: a user generates it and every file opens in a GIS, consistently."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely

from landforge.errors import InputError
from landforge.io.raster import check_same_grid, read_grid
from landforge.synth import make_city
from landforge.synth.labels import RCI_VALUE
from landforge.synth.pois import GAODE_TO_GBT
from landforge.synth.roads import road_buffers

from .conftest import SMALL

GAODE_IDS = {
    "auto_service",
    "auto_dealers",
    "auto_repair",
    "motorcycle_service",
    "food_beverages",
    "shopping",
    "daily_life_service",
    "sports_recreation",
    "medical_service",
    "accommodation",
    "tourist_attraction",
    "commercial_house",
    "government_organization",
    "science_culture_education",
    "transportation_service",
    "finance_insurance",
    "enterprises",
    "road_furniture",
    "place_name_address",
    "public_facility",
    "incidents_events",
    "indoor_facilities",
    "pass_facilities",
}
GBT_IDS = {
    "residence_lodging",
    "resident_services",
    "catering",
    "wholesale_retail",
    "vehicle_sales_service",
    "finance_insurance",
    "education_culture",
    "healthcare_social",
    "sports_leisure",
    "government_public",
    "commercial_facilities",
    "research_institutes",
    "primary_sector_services",
    "place_names_addresses",
    "enterprises_companies",
    "transportation_warehousing",
}
ROAD_CLASSES = {"motorway", "trunk", "primary", "secondary", "tertiary", "residential", "service"}
RASTERS = [
    "image.tif",
    "labels/landuse.tif",
    "labels/footprint.tif",
    "labels/building_use.tif",
    "t2/image.tif",
    "t2/labels/landuse.tif",
    "t2/labels/footprint.tif",
    "t2/labels/building_use.tif",
    "t2/change.tif",
]
VECTORS = [
    "boundary.gpkg",
    "roads.gpkg",
    "parcels.gpkg",
    "buildings.gpkg",
    "t2/parcels.gpkg",
    "t2/buildings.gpkg",
]


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_every_contract_file_is_written_and_opens_with_a_metric_crs(small_city_dir: Path) -> None:
    for name in VECTORS:
        gdf = gpd.read_file(small_city_dir / name, layer=0)
        assert len(gdf) > 0, name
        assert gdf.crs.to_epsg() == 32650, name
    for name in RASTERS:
        with rasterio.open(small_city_dir / name) as src:
            assert src.crs.to_epsg() == 32650, name
            assert src.profile["tiled"], name
    pois = gpd.read_parquet(small_city_dir / "pois.parquet")
    assert pois.crs.to_epsg() == 4326
    assert {"poi_id", "lon", "lat", "name", "gaode_category", "gbt_category", "parcel_id"} <= set(
        pois.columns
    )
    assert len(list((small_city_dir / "s2").glob("*.tif"))) == SMALL["months"]
    assert len(list((small_city_dir / "s1").glob("*.tif"))) == SMALL["months"]
    meta = json.loads((small_city_dir / "city.json").read_text())
    assert meta["seed"] == 3 and meta["crs"] == "EPSG:32650"
    assert set(meta["files"]) == {
        str(p.relative_to(small_city_dir)) for p in small_city_dir.rglob("*") if p.is_file()
    }
    assert {"core", "periphery"} == set(meta["stats"])


def test_image_is_a_4_band_uint8_cog_and_all_rasters_share_its_grid(small_city_dir: Path) -> None:
    with rasterio.open(small_city_dir / "image.tif") as src:
        assert src.count == 4 and src.dtypes[0] == "uint8"
        assert src.descriptions == ("red", "green", "blue", "nir")
        assert src.res == (SMALL["gsd"], SMALL["gsd"])
        img = src.read()
    grid = read_grid(small_city_dir / "image.tif")
    for name in RASTERS[1:]:
        check_same_grid(grid, small_city_dir / name)
    # roofs, roads, vegetation and water differ: NIR of vegetation well above roads
    landuse = rasterio.open(small_city_dir / "labels/landuse.tif").read(1)
    road_nir = img[3][landuse == 6].mean()
    assert img[3].std() > 20 and img[3].max() > road_nir + 60


def test_parcels_are_valid_disjoint_and_clear_of_the_roads(small_city_dir: Path) -> None:
    parcels = gpd.read_file(small_city_dir / "parcels.gpkg")
    roads = gpd.read_file(small_city_dir / "roads.gpkg")
    boundary = gpd.read_file(small_city_dir / "boundary.gpkg", layer="boundary").geometry.iloc[0]
    assert parcels.is_valid.all()
    assert parcels["parcel_id"].is_unique
    assert set(parcels["use_primary"]) <= set("RBAMESX")
    assert (
        parcels["value"]
        == parcels["use_primary"].map({"R": 1, "B": 2, "A": 3, "M": 4, "E": 5, "S": 6, "X": 7})
    ).all()
    assert (parcels["mixed"] == parcels["use_secondary_2"].notna()).all()
    geoms = parcels.geometry.to_numpy()
    overlap = sum(
        shapely.area(shapely.intersection(geoms[i], geoms[i + 1 :])).sum()
        for i in range(len(geoms) - 1)
    )
    assert overlap < 1.0  # m², precision-rounding slivers only
    roadbed = shapely.union_all(road_buffers(roads))
    assert shapely.intersection(shapely.union_all(geoms), roadbed).area < 5.0
    assert set(roads["road_class"]) <= ROAD_CLASSES
    assert (roads["width_m"] > 0).all()
    assert (
        abs(parcels.area.sum() + roadbed.intersection(boundary).area - boundary.area)
        < 0.02 * boundary.area
    )


def test_buildings_stand_inside_their_parcels(small_city_dir: Path) -> None:
    parcels = gpd.read_file(small_city_dir / "parcels.gpkg").set_index("parcel_id")
    buildings = gpd.read_file(small_city_dir / "buildings.gpkg")
    assert len(buildings) > 10
    assert buildings["building_id"].is_unique
    assert set(buildings["use"]) <= set(RCI_VALUE)
    assert (buildings["height_m"] >= 3).all()
    own = parcels.geometry.loc[buildings["parcel_id"]].to_numpy()
    assert shapely.contains(shapely.buffer(own, 0.01), buildings.geometry.to_numpy()).all()
    empty_uses = parcels.index[parcels["use_secondary"].isin(["E1", "E9"])]
    assert not buildings["parcel_id"].isin(empty_uses).any()


def test_label_rasters_agree_with_the_vectors(small_city_dir: Path) -> None:
    buildings = gpd.read_file(small_city_dir / "buildings.gpkg")
    parcels = gpd.read_file(small_city_dir / "parcels.gpkg")
    gsd = SMALL["gsd"]
    foot = rasterio.open(small_city_dir / "labels/footprint.tif").read(1)
    use = rasterio.open(small_city_dir / "labels/building_use.tif").read(1)
    landuse = rasterio.open(small_city_dir / "labels/landuse.tif")
    assert landuse.nodata == 0
    lu = landuse.read(1)
    assert set(np.unique(foot)) <= {0, 1}
    assert abs(foot.sum() * gsd**2 / buildings.area.sum() - 1) < 0.05
    assert ((use > 0) == (foot > 0)).all()
    for name, value in RCI_VALUE.items():
        expected = buildings.area[buildings["use"] == name].sum()
        assert abs((use == value).sum() * gsd**2 - expected) <= 0.05 * expected + 50
    assert set(np.unique(lu)) <= {0, 1, 2, 3, 4, 5, 6, 7}
    for value in parcels["value"].unique():
        expected = parcels.area[parcels["value"] == value].sum()
        got = (lu == value).sum() * gsd**2
        if value != 6:  # roads add to S
            assert abs(got - expected) <= 0.03 * expected + 100


def test_pois_use_the_contract_vocabularies_with_noise(small_city_dir: Path) -> None:
    pois = gpd.read_parquet(small_city_dir / "pois.parquet")
    assert len(pois) > 0
    assert set(pois["gaode_category"]) <= GAODE_IDS
    assert set(pois["gbt_category"]) <= GBT_IDS
    assert set(GAODE_TO_GBT) == GAODE_IDS and set(GAODE_TO_GBT.values()) <= GBT_IDS
    assert pois["poi_id"].is_unique
    assert np.allclose(pois["lon"], pois.geometry.x, atol=1e-6)
    assert ((pois["parcel_id"] == -1) | (pois["parcel_id"] > 0)).all()


def test_poi_noise_rates_on_a_larger_city(tmp_path: Path) -> None:
    from landforge.synth.buildings import place_buildings
    from landforge.synth.layout import component_rng, make_frame
    from landforge.synth.parcels import assign_uses, make_lake, make_parcels
    from landforge.synth.pois import make_pois
    from landforge.synth.roads import make_roads

    frame = make_frame(1, 1500.0, 400000.0, 3400000.0)
    roads = make_roads(frame, 1)
    parcels = assign_uses(
        make_parcels(frame, road_buffers(roads), make_lake(frame, 1)), roads, frame, 1
    )
    buildings = place_buildings(parcels, component_rng(1, "buildings"))
    pois = make_pois(parcels, buildings, frame.boundary, component_rng(1, "pois"), "EPSG:32650")
    pois = pois.to_crs("EPSG:32650")
    own = parcels.set_index("parcel_id").geometry
    assigned = pois[pois["parcel_id"] > 0]
    inside = shapely.contains(
        own.loc[assigned["parcel_id"]].to_numpy(), assigned.geometry.to_numpy()
    )
    outside_share = 1 - inside.mean()
    assert 0.05 < outside_share < 0.16  # ~10 % displaced onto the street
    near = shapely.distance(own.loc[assigned["parcel_id"]].to_numpy(), assigned.geometry.to_numpy())
    assert near.max() < 15
    assert 0.005 < (pois["parcel_id"] == -1).mean() < 0.06
    with_poi = set(pois["parcel_id"])
    assert len(set(parcels["parcel_id"]) - with_poi) > 0.1 * len(parcels)  # missing POIs


def test_the_centre_builds_densely_and_the_outskirts_do_not() -> None:
    from landforge.synth.buildings import centrality, place_buildings
    from landforge.synth.layout import component_rng, make_frame
    from landforge.synth.parcels import assign_uses, make_lake, make_parcels
    from landforge.synth.roads import make_roads

    frame = make_frame(0, 3000.0, 400000.0, 3400000.0)
    roads = make_roads(frame, 0)
    parcels = assign_uses(
        make_parcels(frame, road_buffers(roads), make_lake(frame, 0)), roads, frame, 0
    )
    dense = centrality(parcels, frame)
    assert dense.max() == 1.0 and dense.min() == 0.0
    inner = parcels[dense == 1.0]
    plain = place_buildings(inner, component_rng(0, "buildings"))
    packed = place_buildings(inner, component_rng(0, "buildings"), frame=frame)
    assert packed.area.sum() > 1.2 * plain.area.sum()
    assert packed.area.sum() / inner.area.sum() > 0.3  # a city centre, not a suburb
    # still rectangles, each inside its own parcel
    own = inner.set_index("parcel_id").geometry.loc[packed["parcel_id"]].to_numpy()
    assert shapely.contains(own, packed.geometry.to_numpy()).all()
    assert (shapely.get_num_coordinates(packed.geometry.to_numpy()) == 5).all()


def test_population_is_high_at_night_in_homes_and_by_day_in_offices(small_city_dir: Path) -> None:
    pop = pd.read_parquet(small_city_dir / "population.parquet")
    parcels = gpd.read_file(small_city_dir / "parcels.gpkg")
    assert list(pop.columns) == ["parcel_id", "day", "hour", "density"]
    assert len(pop) == len(parcels) * 7 * 24
    assert (pop["density"] >= 0).all()
    pop = pop.merge(parcels[["parcel_id", "use_primary", "mixed"]], on="parcel_id")
    pop = pop[~pop["mixed"]]
    weekday = pop[pop["day"] < 5]
    night = weekday[weekday["hour"].isin([1, 2, 3])]
    day = weekday[weekday["hour"].isin([10, 11, 14])]
    res_night = night[night["use_primary"] == "R"]["density"].mean()
    res_day = day[day["use_primary"] == "R"]["density"].mean()
    assert res_night > 1.3 * res_day
    from landforge.synth.population import daily_profile

    office = daily_profile("B2", weekend=False)
    assert office[11] > 5 * office[3]
    assert daily_profile("B2", weekend=True)[11] < office[11]


def test_second_epoch_changes_some_parcels_and_marks_them(small_city_dir: Path) -> None:
    p1 = gpd.read_file(small_city_dir / "parcels.gpkg")
    p2 = gpd.read_file(small_city_dir / "t2/parcels.gpkg")
    changes = pd.read_csv(small_city_dir / "t2/changes.csv")
    assert len(p1) == len(p2) and len(changes) >= 1
    differs = (p1["use_secondary"] != p2["use_secondary"]).sum()
    assert differs == len(changes)
    change = rasterio.open(small_city_dir / "t2/change.tif").read(1)
    lu1 = rasterio.open(small_city_dir / "labels/landuse.tif").read(1)
    lu2 = rasterio.open(small_city_dir / "t2/labels/landuse.tif").read(1)
    assert ((change == 1) == ((lu1 != lu2) & (lu2 > 0))).all()
    assert change.sum() > 0


def test_sentinel_stacks_have_the_bands_and_vegetation_season(small_city_dir: Path) -> None:
    files = sorted((small_city_dir / "s2").glob("*.tif"))
    with rasterio.open(files[0]) as src:
        assert src.count == 13 and src.dtypes[0] == "uint16"
        assert src.descriptions[:12] == (
            "B01",
            "B02",
            "B03",
            "B04",
            "B05",
            "B06",
            "B07",
            "B08",
            "B8A",
            "B09",
            "B11",
            "B12",
        )
        assert src.descriptions[12] == "cloud"
        assert src.res == (10.0, 10.0)
    with rasterio.open(sorted((small_city_dir / "s1").glob("*.tif"))[0]) as src:
        assert src.count == 2 and src.dtypes[0] == "float32"
        vv = src.read(1)
        assert -35 < vv.mean() < 0


def test_ndvi_of_cropland_peaks_in_summer() -> None:
    from landforge.synth.sentinel import _SPECTRA, _vigour

    def ndvi(month: int) -> float:
        v = _vigour(month)[2]
        s = _SPECTRA[3] * (1 - v) + _SPECTRA[6] * v
        return float((s[7] - s[3]) / (s[7] + s[3]))

    assert ndvi(8) > 0.6 > 0.3 > ndvi(1)


def test_same_seed_same_bytes_other_seed_other_city(small_city_dir: Path, tmp_path: Path) -> None:
    opts = dict(SMALL, s1=False, quiet=True)
    again = make_city(tmp_path / "again", seed=3, **opts)
    other = make_city(
        tmp_path / "other",
        seed=4,
        t2=False,
        s2=False,
        population=False,
        **{k: v for k, v in opts.items() if k not in ("s1",)},
        s1=False,
    )
    a, b = _digest(small_city_dir), _digest(again.out_dir)
    shared = [k for k in b if k != "city.json"]
    assert all(a[k] == b[k] for k in shared), [k for k in shared if a[k] != b[k]]
    c = _digest(other.out_dir)
    for name in ["parcels.gpkg", "buildings.gpkg", "image.tif", "pois.parquet"]:
        assert a[name] != c[name]


def test_user_mistakes_raise_input_error(tmp_path: Path) -> None:
    for kwargs in (
        {"size_m": 0},
        {"size_m": -3},
        {"gsd": 0},
        {"gsd": -1},
        {"crs": "EPSG:4326"},
        {"mixed_rate": 2},
    ):
        with pytest.raises(InputError):
            make_city(tmp_path / "x", **kwargs)
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(InputError):
        make_city(blocker / "city", size_m=300)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(InputError):
        make_city(precious, size_m=300)
    assert (precious / "thesis.tex").exists()
    assert not (tmp_path / "x").exists()


def test_series_shows_each_changed_parcel_from_its_own_month() -> None:
    from landforge.io.raster import RasterGrid
    from landforge.synth.sentinel import SeriesChange, cover_fractions, monthly_fractions

    crs = "EPSG:32650"
    grid = RasterGrid.from_bounds(0, 0, 200, 100, 10.0, crs)
    squares = [shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)]
    p1 = gpd.GeoDataFrame(
        {"parcel_id": [1, 2], "use_secondary": ["E2", "E2"]}, geometry=squares, crs=crs
    )
    p2 = p1.assign(use_secondary=["E2", "R2"])
    b1 = gpd.GeoDataFrame({"parcel_id": []}, geometry=[], crs=crs)
    b2 = gpd.GeoDataFrame({"parcel_id": [2]}, geometry=[shapely.box(120, 20, 180, 80)], crs=crs)
    roads = np.array([], dtype=object)
    before = cover_fractions(grid, p1, roads, b1)
    after = cover_fractions(grid, p2, roads, b2)
    assert not np.allclose(before[:, :, 10:], after[:, :, 10:])  # parcel 2 differs
    change = SeriesChange(p2, b2, {2: 2})
    months = list(monthly_fractions(grid, p1, roads, b1, 4, change))
    for k, frac in enumerate(months):
        np.testing.assert_allclose(frac, before if k < 2 else after)
    assert all(np.array_equal(f, before) for f in monthly_fractions(grid, p1, roads, b1, 3, None))


def test_changes_record_the_month_the_series_first_shows_them(small_city_dir: Path) -> None:
    from landforge.synth.sentinel import month_names

    changes = pd.read_csv(small_city_dir / "t2/changes.csv")
    months = month_names("2023-01", SMALL["months"])
    # never the first month (the first date), always one of the series' months
    assert changes["series_month"].isin(months[1:]).all()
