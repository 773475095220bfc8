"""Roads, POIs and land use from OSM extracts, and parcels from real road networks."""

from __future__ import annotations

import time

import pytest
import shapely

from landforge.errors import InputError
from landforge.io.osm import read_osm_landuse, read_osm_pois, read_osm_roads
from landforge.parcels import generate_parcels, label_parcels

pytestmark = pytest.mark.realdata


def test_parcels_from_the_monaco_road_network(shared_data) -> None:
    pbf = shared_data / "osm" / "monaco.osm.pbf"
    roads = read_osm_roads(pbf)
    assert len(roads) > 500
    assert (roads["road_class"] == roads["highway"]).all()
    assert roads.crs.to_epsg() == 4326

    start = time.perf_counter()
    parcels = generate_parcels(roads)
    seconds = time.perf_counter() - start
    assert parcels.crs.to_epsg() == 32632  # UTM 32N
    assert len(parcels) > 30
    assert seconds < 10
    geoms = parcels.geometry.values
    assert shapely.is_valid(geoms).all()
    assert shapely.union_all(geoms).area == pytest.approx(shapely.area(geoms).sum(), rel=1e-6)
    assert (parcels["area_m2"] >= 100).all()


def test_helsinki_pois_and_landuse_label_its_parcels(shared_data) -> None:
    pbf = shared_data / "osm" / "helsinki.osm.pbf"
    pois = read_osm_pois(pbf)
    assert len(pois) > 1000
    assert (pois.geom_type == "Point").all()
    assert pois["category"].str.contains("=").all()
    assert {"amenity=restaurant", "shop=clothes"} <= set(pois["category"])

    landuse = read_osm_landuse(pbf)
    assert set(landuse.geom_type) <= {"Polygon", "MultiPolygon"}
    assert shapely.is_valid(landuse.geometry.values).all()

    parcels = generate_parcels(read_osm_roads(pbf))
    labelled = label_parcels(parcels, landuse, "landuse")
    assert labelled["label"].notna().sum() > len(parcels) // 3


def test_a_pbf_without_highways_is_an_input_error(shared_data, monkeypatch) -> None:
    import pyrosm

    monkeypatch.setattr(pyrosm.OSM, "get_network", lambda self, **kw: None)
    with pytest.raises(InputError, match="no highways"):
        read_osm_roads(shared_data / "osm" / "aguascalientes.osm.pbf")


def test_osm_reader_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_osm_roads(tmp_path / "missing.osm.pbf")
    with pytest.raises(InputError, match="unknown network"):
        read_osm_roads(tmp_path / "missing.osm.pbf", network="flying")
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"this is not a protobuf file at all")
    with pytest.raises(InputError, match="bad.osm.pbf"):
        read_osm_roads(bad)
