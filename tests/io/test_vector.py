"""Vector I/O round trips and clear errors."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import Point

from landforge.errors import InputError
from landforge.io.vector import read_vector, to_metric, write_vector


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet", ".geojson"])
def test_round_trip(tmp_path, suffix):
    gdf = gpd.GeoDataFrame({"a": [1, 2]}, geometry=[Point(0, 0), Point(1, 1)], crs=32650)
    path = write_vector(gdf, tmp_path / f"x{suffix}")
    back = read_vector(path)
    assert back.crs.to_epsg() == 32650 and list(back["a"]) == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == [f"x{suffix}"]


@pytest.mark.filterwarnings("ignore:.crs. was not provided")
def test_missing_file_and_missing_crs(tmp_path):
    with pytest.raises(InputError, match="nope.gpkg: vector file does not exist"):
        read_vector(tmp_path / "nope.gpkg")
    gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[Point(0, 0)])
    gdf.to_file(tmp_path / "nocrs.gpkg")
    with pytest.raises(InputError, match="no CRS"):
        read_vector(tmp_path / "nocrs.gpkg")


def test_geographic_layers_go_to_local_utm():
    gdf = gpd.GeoDataFrame(geometry=[Point(24.94, 60.17)], crs=4326)
    assert to_metric(gdf).crs.to_epsg() == 32635
