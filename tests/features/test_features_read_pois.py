"""POI files in: CSV with any lon/lat column names, GeoJSON, GeoParquet, GeoPackage."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from landforge.errors import InputError
from landforge.io.poi import read_pois


def write_csv(path, **cols) -> str:
    pd.DataFrame(cols).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    "lon, lat", [("lon", "lat"), ("Longitude", "Latitude"), ("lng", "lat"), ("x", "y")]
)
def test_csv_coordinate_columns_are_detected(tmp_path, lon, lat) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        **{lon: [116.3, 116.4], lat: [39.9, 40.0], "category": ["catering", "residence_lodging"]},
    )
    pois = read_pois(path)
    assert pois.crs.to_epsg() == 4326
    np.testing.assert_allclose(shapely.get_x(pois.geometry.values), [116.3, 116.4])
    np.testing.assert_allclose(shapely.get_y(pois.geometry.values), [39.9, 40.0])
    assert list(pois["category"]) == ["catering", "residence_lodging"]


def test_explicit_columns_and_projected_csv(tmp_path) -> None:
    path = write_csv(tmp_path / "p.csv", E=[500000.0], N=[3000000.0], kind=["a"])
    pois = read_pois(path, lon_col="E", lat_col="N", category_col="kind", crs="EPSG:32650")
    assert pois.crs.to_epsg() == 4326
    assert shapely.get_x(pois.geometry.values)[0] == pytest.approx(117.0, abs=1e-6)


@pytest.mark.parametrize("suffix", [".geojson", ".parquet", ".gpkg"])
def test_vector_formats(tmp_path, suffix) -> None:
    gdf = gpd.GeoDataFrame(
        {"category": ["a", "b"]},
        geometry=shapely.points([500000, 500100], [3000000, 3000000]),
        crs="EPSG:32650",
    )
    path = tmp_path / f"p{suffix}"
    if suffix == ".parquet":
        gdf.to_parquet(path)
    else:
        gdf.to_file(path)
    pois = read_pois(path)
    assert pois.crs.to_epsg() == 4326 and len(pois) == 2


def test_polygon_pois_become_points(tmp_path) -> None:
    gdf = gpd.GeoDataFrame(
        {"category": ["mall"]}, geometry=[shapely.box(10, 50, 10.01, 50.01)], crs=4326
    )
    path = tmp_path / "p.gpkg"
    gdf.to_file(path)
    pois = read_pois(path)
    assert (pois.geom_type == "Point").all()


@pytest.mark.parametrize(
    "lon, lat, message",
    [
        (
            [116.3, np.nan, 116.5],
            [39.9, 40.0, 40.1],
            r"invalid coordinates in 1 of 3 POIs: 1 missing",
        ),
        ([116.3, 190.0, 116.5], [39.9, 40.0, 40.1], r"1 of 3 POIs: 1 out of range"),
        ([39.9, 40.0, 116.5], [116.3, 116.4, 40.1], r"2 of 3 POIs: 2 out of range.*swapped"),
    ],
)
def test_bad_coordinates_are_rejected_with_the_count(tmp_path, lon, lat, message) -> None:
    path = write_csv(tmp_path / "p.csv", lon=lon, lat=lat, category=["a", "b", "c"])
    with pytest.raises(InputError, match=message):
        read_pois(path)


def test_text_in_coordinate_column_is_counted(tmp_path) -> None:
    path = write_csv(
        tmp_path / "p.csv", lon=["116.3", "oops"], lat=[39.9, 40.0], category=["a", "b"]
    )
    with pytest.raises(InputError, match="1 of 2 POIs: 1 missing or non-numeric"):
        read_pois(path)


def test_missing_category_column_names_file_and_columns(tmp_path) -> None:
    path = write_csv(tmp_path / "p.csv", lon=[116.3], lat=[39.9], type=["a"])
    with pytest.raises(InputError) as info:
        read_pois(path, category_col="gbt_category")
    text = str(info.value)
    assert "p.csv" in text and "'gbt_category'" in text and "lon, lat, type" in text


def test_no_coordinate_columns(tmp_path) -> None:
    path = write_csv(tmp_path / "p.csv", a=[1.0], b=[2.0], category=["a"])
    with pytest.raises(InputError, match="no longitude/x column found; the file has: a, b"):
        read_pois(path)
    with pytest.raises(InputError, match="does not exist"):
        read_pois(tmp_path / "none.csv")
