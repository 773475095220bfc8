"""Parcel samples: patches inside parcels, POI features, population series, flags, files."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.windows import Window

from landforge.datasets.parcel_dataset import ParcelDataset
from landforge.errors import InputError
from landforge.io.raster import RasterGrid, write_cog
from landforge.parcels.population_series import population_from_rasters
from landforge.parcels.samples import (
    build_parcel_samples,
    read_parcel_samples,
    write_parcel_samples,
)


def _parcels_plus_one_outside(city: Path) -> gpd.GeoDataFrame:
    """The city's parcels and one more 5 km away: no image, no POIs, no population."""
    parcels = gpd.read_file(city / "parcels.gpkg")
    x0, y0, _, _ = parcels.total_bounds
    far = shapely.box(x0 - 5000, y0 - 5000, x0 - 4900, y0 - 4900)
    extra = gpd.GeoDataFrame(
        {"parcel_id": [9999], "use_primary": ["R"]}, geometry=[far], crs=parcels.crs
    )
    return pd.concat([parcels, extra], ignore_index=True)


@pytest.fixture(scope="module")
def samples(tiny_city: Path):
    return build_parcel_samples(
        _parcels_plus_one_outside(tiny_city),
        image=tiny_city / "image.tif",
        poi_features=pd.read_parquet(tiny_city / "features.parquet"),
        population=tiny_city / "population.parquet",
        label_col="use_primary",
        patch_px=16,
        max_patches=3,
    )


def test_a_parcel_outside_every_source_keeps_its_row_with_flags_off(samples) -> None:
    f = samples.frame
    far = f[f["parcel_id"] == 9999].iloc[0]
    assert not far["has_image"] and not far["has_poi"] and not far["has_population"]
    assert far["n_patches"] == 0 and far["label"] == "R"
    inside = f[f["parcel_id"] != 9999]
    assert inside["has_population"].all()  # the synthetic table covers every true parcel
    assert inside["has_image"].mean() > 0.8
    assert (inside["has_poi"] == (inside["n_pois"] > 0)).all()
    assert samples.meta["population_matched"] == len(inside)
    assert (f["n_patches"] <= 3).all()


def test_patches_are_the_image_at_their_centres_inside_their_parcel(samples, tiny_city) -> None:
    f = samples.frame
    with rasterio.open(tiny_city / "image.tif") as src:
        inv = ~src.transform
        for i in np.flatnonzero(f["n_patches"].to_numpy() > 0)[:5]:
            lo = int(samples.patch_offsets[i])
            x, y = samples.patch_xy[lo]
            col, row = inv @ (x, y)
            win = Window(round(col) - 8, round(row) - 8, 16, 16)
            assert np.array_equal(src.read(window=win), samples.patches[lo])
            # the centre (snapped to the 2 m pixel grid) lies in the patch's own parcel
            assert f.geometry.iloc[i].distance(shapely.Point(x, y)) <= 2.0


def test_samples_round_trip_through_geoparquet_and_safetensors(samples, tmp_path) -> None:
    write_parcel_samples(samples, tmp_path / "s")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "chips.safetensors",
        "samples.json",
        "samples.parquet",
    ]
    back = read_parcel_samples(tmp_path / "s")
    for name in ("patches", "patch_xy", "patch_offsets", "poi"):
        assert np.array_equal(getattr(back, name), getattr(samples, name)), name
    assert np.array_equal(back.population, samples.population, equal_nan=True)
    cols = ["parcel_id", "label", "has_image", "has_poi", "has_population", "n_pois"]
    pd.testing.assert_frame_equal(back.frame[cols], samples.frame[cols])
    assert back.frame.crs == samples.frame.crs
    data = ParcelDataset(back)
    item = data[0]
    assert (
        item["image"].shape == (3, 4, 16, 16)
        and item["patch_mask"].dtype.is_floating_point is False
    )
    assert item["series"].shape == (24,) and item["poi"].shape == (back.poi.shape[1],)
    fig = data.plot(data[int(np.argmax(back.frame["n_patches"].to_numpy()))])
    assert len(fig.axes) >= 3


def test_population_raster_mean_is_weighted_by_the_overlap_area(tmp_path) -> None:
    # 2 x 2 pixels of 100 m: values 0, 10 / 20, 30 (row-major, north first)
    grid = RasterGrid.from_bounds(0, 0, 200, 200, 100, "EPSG:32650")
    files = []
    for t, scale in enumerate((1.0, 2.0)):
        path = tmp_path / f"h{t}.tif"
        write_cog(path, np.array([[0, 10], [20, 30]], np.float32) * scale, grid, nodata=-1)
        files.append(path)
    # 75 m x 100 m in the top-left pixel and 25 m x 100 m in the top-right one
    parcel = shapely.box(25, 100, 125, 200)
    frame = gpd.GeoDataFrame({"parcel_id": [1]}, geometry=[parcel], crs="EPSG:32650")
    series = population_from_rasters(files, frame)
    assert series[0] == pytest.approx([0.75 * 0 + 0.25 * 10, 2 * (0.25 * 10)])


def test_population_table_matching_no_parcel_says_how_many_matched(tiny_city, tmp_path) -> None:
    table = pd.DataFrame({"parcel_id": [70001, 70002], "hour": [0, 0], "density": [1.0, 2.0]})
    table.to_parquet(tmp_path / "pop.parquet")
    parcels = gpd.read_file(tiny_city / "parcels.gpkg")
    with pytest.raises(InputError, match=r"matches no parcel \(0 of \d+ parcel ids matched"):
        build_parcel_samples(parcels, population=tmp_path / "pop.parquet")


def test_synthetic_population_rasters_keep_the_people_of_the_table(tiny_city) -> None:
    """Pixel mean x pixel area summed = density x parcel area summed (day 0, each hour)."""
    parcels = gpd.read_file(tiny_city / "parcels.gpkg")
    table = pd.read_parquet(tiny_city / "population.parquet")
    files = sorted((tiny_city / "population").glob("hour_*.tif"))
    assert len(files) == 24
    area = parcels.set_index("parcel_id").geometry.area
    for hour in (3, 14):
        rows = table[(table["day"] == 0) & (table["hour"] == hour)].set_index("parcel_id")
        people = float((rows["density"] * area.reindex(rows.index)).sum())
        with rasterio.open(files[hour]) as src:
            cell = abs(src.transform.a * src.transform.e)
            total = float(src.read(1).astype(np.float64).sum() * cell)
        assert total == pytest.approx(people, rel=0.05)
