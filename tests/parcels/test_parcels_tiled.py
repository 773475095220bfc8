"""Tiled parcel generation gives the parcels of the untiled run, however it is cut up."""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import pytest
import shapely
from parcel_helpers import CRS, box, road_grid

import landforge.parcels.tiled as tiled
from landforge.errors import InputError
from landforge.parcels.generate import generate_parcels
from landforge.parcels.tiled import generate_parcels_tiled
from landforge.synth.layout import make_frame
from landforge.synth.roads import make_roads


def sorted_geoms(parcels: gpd.GeoDataFrame) -> np.ndarray:
    geoms = parcels.geometry.values
    pts = shapely.centroid(geoms)  # the order of generate_parcels_tiled
    order = np.lexsort((np.round(shapely.get_y(pts), 3), np.round(shapely.get_x(pts), 3)))
    return geoms[order]


def assert_same_parcels(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> None:
    """Same count, and each parcel equal up to buffer discretisation (< 1 cm).

    Tiles buffer the joined roads clipped to their surroundings; GEOS simplifies each
    buffered line as a whole, so vertices can move by millimetres (measured <= 6 mm).
    """
    assert len(a) == len(b)
    ga, gb = sorted_geoms(a), sorted_geoms(b)
    assert shapely.hausdorff_distance(ga, gb).max() < 1e-2
    sym = shapely.area(shapely.symmetric_difference(ga, gb))
    assert (sym <= 1e-2 * shapely.length(ga)).all()  # at most a 1 cm strip along the edge


@pytest.fixture(scope="module")
def city() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A 1.6 km synthetic road network (about 100 blocks) and its irregular boundary."""
    frame = make_frame(3, 1600.0, 500_000.0, 3_000_000.0)
    roads = make_roads(frame, 3).set_crs(CRS)
    return roads, gpd.GeoDataFrame(geometry=[frame.boundary], crs=CRS)


@pytest.fixture(scope="module")
def untiled(city: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    return generate_parcels(*city)


def test_tiled_parcels_equal_the_untiled_run_in_process(city, untiled) -> None:
    roads, boundary = city
    # small tiles and a margin smaller than many blocks: exercises the margin growth
    parcels = generate_parcels_tiled(roads, boundary, tile_m=400, overlap_m=60)
    assert_same_parcels(parcels, untiled)
    assert list(parcels["parcel_id"]) == list(range(1, len(parcels) + 1))
    assert parcels.crs == untiled.crs
    np.testing.assert_allclose(
        np.sort(parcels["dist_centre_m"]), np.sort(untiled["dist_centre_m"]), atol=1e-3
    )


def test_ids_do_not_depend_on_the_tiling(city) -> None:
    roads, boundary = city
    a = generate_parcels_tiled(roads, boundary, tile_m=700)
    b = generate_parcels_tiled(roads, boundary, tile_m=10_000)  # one tile
    assert len(a) == len(b)
    # ids follow the centroid, so the same id is the same parcel
    assert shapely.hausdorff_distance(a.geometry.values, b.geometry.values).max() < 1e-3


def test_a_parcel_larger_than_the_overlap_is_still_complete() -> None:
    # 100 m blocks, except one 600 x 600 m park in the middle; tiles of 200 m and a 30 m
    # margin cut the park into many pieces, none of which may survive on its own
    xs = [0, 100, 200, 300, 900, 1000, 1100, 1200]
    roads = road_grid(xs, xs)
    boundary = box(0, 0, 1200, 1200)
    untiled = generate_parcels(roads, boundary)
    parcels = generate_parcels_tiled(roads, boundary, tile_m=200, overlap_m=30)
    assert_same_parcels(parcels, untiled)
    park = parcels.loc[parcels["area_m2"].idxmax()]
    assert park["area_m2"] == pytest.approx(592.0 * 592.0, rel=1e-9)
    assert len(parcels) == len(untiled) == 7 * 7


def test_tiled_on_a_dask_client_equals_the_untiled_run(city, untiled) -> None:
    # an in-thread cluster starts in ~1 s and runs the same Dask code path
    distributed = pytest.importorskip("dask.distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        parcels = generate_parcels_tiled(*city, tile_m=500, overlap_m=80, scheduler=client)
    assert_same_parcels(parcels, untiled)


@pytest.mark.slow  # each worker process imports landforge (torch via _compat): ~5-15 s
def test_tiled_on_a_local_dask_cluster_equals_the_untiled_run(city, untiled) -> None:
    roads, boundary = city
    parcels = generate_parcels_tiled(
        roads, boundary, tile_m=500, overlap_m=80, scheduler="local", workers=2
    )
    assert_same_parcels(parcels, untiled)


def test_a_scheduler_that_does_not_answer_is_an_input_error(city, monkeypatch) -> None:
    monkeypatch.setattr(tiled, "_CONNECT_TIMEOUT_S", 1.0)
    roads, boundary = city
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="no Dask scheduler answers"):
        generate_parcels_tiled(roads, boundary, scheduler="tcp://127.0.0.1:9")
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"tile_m": 0}, "tile_m"), ({"overlap_m": -1}, "overlap_m"), ({"scheduler": 3}, "scheduler")],
)
def test_bad_settings_are_input_errors(city, kwargs, field) -> None:
    with pytest.raises(InputError, match=field):
        generate_parcels_tiled(*city, **kwargs)


def test_tiled_parcels_carry_the_same_districts(tmp_path):
    from landforge.io.vector import read_vector
    from landforge.parcels import generate_parcels, generate_parcels_tiled
    from landforge.synth import make_city

    city = tmp_path / "c"
    make_city(
        city,
        size_m=600,
        seed=0,
        gsd=1.0,
        t2=False,
        s2=False,
        s1=False,
        population=False,
        quiet=True,
    )
    roads, boundary = read_vector(city / "roads.gpkg"), read_vector(city / "boundary.gpkg")
    districts = read_vector(city / "districts.gpkg")

    def by_position(g):
        c = g.geometry.centroid
        return g.assign(cx=c.x.round(2), cy=c.y.round(2)).sort_values(["cx", "cy"])

    whole = by_position(generate_parcels(roads, boundary, districts=districts))
    tiled = by_position(generate_parcels_tiled(roads, boundary, districts=districts, tile_m=250))
    assert whole["district_id"].notna().all()
    assert list(whole["district_id"]) == list(tiled["district_id"])
