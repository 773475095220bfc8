"""LSI sample design: the landscape shape index, the allocation and the sites."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pylandstats as pls
import pytest
import rasterio
import shapely
from affine import Affine

from landforge.cli import main
from landforge.parcels.lsi import (
    allocate,
    class_lsi,
    design_samples,
    design_samples_array,
    largest_remainder,
    lsi,
    region_lsi,
)

CRS = "EPSG:32633"


def _random_landscape(seed: int, shape=(37, 41), k: int = 4, nodata_share: float = 0.1):
    rng = np.random.default_rng(seed)
    # blocky classes, so patches of several pixels exist, plus scattered nodata
    coarse = rng.integers(1, k + 1, (shape[0] // 3 + 1, shape[1] // 3 + 1))
    arr = np.kron(coarse, np.ones((3, 3), dtype=np.int64))[: shape[0], : shape[1]]
    flip = rng.random(shape) < 0.15
    arr[flip] = rng.integers(1, k + 1, int(flip.sum()))
    arr[rng.random(shape) < nodata_share] = 0
    return arr.astype(np.uint8)


def test_a_square_patch_has_lsi_one() -> None:
    for size in (1, 2, 5):
        mask = np.zeros((9, 9), dtype=bool)
        mask[2 : 2 + size, 3 : 3 + size] = True
        assert lsi(mask) == pytest.approx(1.0)
    assert lsi(np.ones((4, 4), dtype=bool)) == pytest.approx(1.0)  # touches the edge


def test_hand_computed_lsi_on_tiny_arrays() -> None:
    # a 1 x 3 bar: 8 sides, q = 3 -> 0.25 * 8 / sqrt(3)
    assert lsi(np.array([[1, 1, 1]], dtype=bool)) == pytest.approx(2 / np.sqrt(3))
    # two separate pixels: 8 sides, q = 2 -> 0.25 * 8 / sqrt 2 = sqrt 2
    assert lsi(np.array([[1, 0, 1]], dtype=bool)) == pytest.approx(np.sqrt(2))
    # an L of 3 pixels: 8 sides as well
    assert lsi(np.array([[1, 0], [1, 1]], dtype=bool)) == pytest.approx(2 / np.sqrt(3))
    # FRAGSTATS standard: min perimeter of 3 pixels is 8 -> 1
    assert lsi(np.array([[1, 1, 1]], dtype=bool), standard="fragstats") == pytest.approx(1.0)
    assert np.isnan(lsi(np.zeros((3, 3), dtype=bool)))

    labels = np.array([[1, 1, 2], [1, 1, 2], [0, 0, 2]])
    got = class_lsi(labels, nodata=0)
    assert got == {1: pytest.approx(1.0), 2: pytest.approx(0.25 * 8 / np.sqrt(3))}
    # region level: the 1|2 edges inside count once (2), plus the outline of the 7 valid
    # pixels: top 3, right 3, bottom 1, left 2, under class 1 (2), (2,2) facing nodata (1)
    r = region_lsi(labels, np.zeros_like(labels), 1, valid=labels != 0)
    assert r[0] == pytest.approx(0.25 * (2 + 12) / np.sqrt(7))


def test_lsi_agrees_with_pylandstats_on_random_arrays() -> None:
    for seed in range(4):
        arr = _random_landscape(seed)
        land = pls.Landscape(arr, res=(1, 1), nodata=0)
        ours = class_lsi(arr, nodata=0, standard="fragstats")
        for k, value in ours.items():
            assert value == pytest.approx(land.landscape_shape_index(class_val=k))
        whole = region_lsi(arr, np.zeros(arr.shape, int), 1, valid=arr != 0, standard="fragstats")
        assert whole[0] == pytest.approx(land.landscape_shape_index())


def test_lsi_agrees_with_pylandstats_on_the_slovenia_land_cover(shared_data) -> None:
    path = shared_data / "slovenia_s2" / "derived_geotiff" / "LULC.tif"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with rasterio.open(path) as src:
        arr = src.read(1)
        nodata = int(src.nodata)
    # pylandstats' own LSI uses the FRAGSTATS min-perimeter standard and counts the
    # landscape boundary and nodata sides as edge: our standard="fragstats"
    land = pls.Landscape(arr, res=(10, 10), nodata=nodata)
    ours = class_lsi(arr, nodata=nodata, standard="fragstats")
    assert set(ours) == {1, 2, 3, 4, 8}
    for k, value in ours.items():
        assert value == pytest.approx(land.landscape_shape_index(class_val=k), rel=1e-12)
    whole = region_lsi(arr, np.zeros(arr.shape, int), 1, valid=arr != nodata, standard="fragstats")
    assert whole[0] == pytest.approx(land.landscape_shape_index(), rel=1e-12)


def test_largest_remainder_keeps_the_total() -> None:
    assert largest_remainder(np.array([1.0, 1.0, 1.0]), 10).tolist() == [4, 3, 3]
    assert largest_remainder(np.array([0.5, 0.3, 0.2]), 7).sum() == 7
    assert largest_remainder(np.array([0.0, 0.0]), 5).tolist() == [0, 0]


def test_allocation_sums_to_n_and_follows_the_formula() -> None:
    arr = _random_landscape(1, shape=(40, 40))
    regions = np.zeros(arr.shape, dtype=np.int64)
    regions[:, 20:] = 1
    table = allocate(arr, regions, 333, nodata=0)
    assert table["n"].sum() == 333
    per_region = table.groupby("region")[["n", "n_region"]].agg({"n": "sum", "n_region": "first"})
    assert (per_region["n"] == per_region["n_region"]).all()
    first = table.drop_duplicates("region")
    weight = first["rLSI"] * first["region_pixels"]
    exact = 333 * weight / weight.sum()
    assert np.all(np.abs(first["n_region"] - exact) < 1)
    for _, group in table.groupby("region"):
        w = group["cLSI"] * group["share"]
        assert np.all(np.abs(group["n"] - group["n_region"] * w / w.sum()) < 1)


def test_sites_fall_on_their_class_inside_their_region_and_repeat_per_seed() -> None:
    arr = _random_landscape(2, shape=(50, 60))
    regions = np.full(arr.shape, -1, dtype=np.int64)
    regions[:25, :] = 0
    regions[25:, :40] = 1  # the lower right corner is in no region
    design = design_samples_array(arr, regions, 120, 10, nodata=0, seed=5)
    sites = design.sites
    assert len(sites) == 120 == design.allocation["n"].sum()
    r, c = sites["row"].to_numpy(), sites["col"].to_numpy()
    assert (arr[r, c] == sites["class"].to_numpy()).all()
    assert (regions[r, c] == sites["region"].to_numpy()).all()
    assert (r // 10 == sites["unit_row"]).all() and (c // 10 == sites["unit_col"]).all()
    # the sites of each (region, class) go down the uLSI curve
    for _, group in sites.groupby(["region", "class"]):
        assert group["uLSI"].is_monotonic_decreasing
    again = design_samples_array(arr, regions, 120, 10, nodata=0, seed=5).sites
    assert again.equals(sites)
    other = design_samples_array(arr, regions, 120, 10, nodata=0, seed=6).sites
    assert not other[["row", "col"]].equals(sites[["row", "col"]])


def test_sites_take_the_top_units_of_the_ulsi_curve() -> None:
    arr = _random_landscape(3, shape=(30, 30), nodata_share=0.0)
    regions = np.zeros(arr.shape, dtype=np.int64)
    design = design_samples_array(arr, regions, 40, 10, nodata=0, seed=0)
    # uLSI of each unit = the unit cut out as its own landscape
    curve = {
        (k, ur, uc): lsi(arr[ur * 10 : ur * 10 + 10, uc * 10 : uc * 10 + 10] == k)
        for k in np.unique(arr).tolist()
        for ur in range(3)
        for uc in range(3)
    }
    sites = design.sites.rename(columns={"class": "cls"})
    for row in sites.itertuples():
        assert row.uLSI == pytest.approx(curve[(row.cls, row.unit_row, row.unit_col)])
    for cls, group in sites.groupby("cls"):
        used = set(zip(group["unit_row"], group["unit_col"], strict=True))
        scores = {u[1:]: v for u, v in curve.items() if u[0] == cls and not np.isnan(v)}
        if len(used) < len(scores):  # one round: the chosen units outrank the others
            assert min(scores[u] for u in used) >= max(
                v for u, v in scores.items() if u not in used
            )


@pytest.fixture
def raster_and_regions(tmp_path):
    arr = _random_landscape(4, shape=(60, 80))
    path = tmp_path / "lc.tif"
    transform = Affine(10, 0, 500_000, 0, -10, 5_000_000)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=80,
        height=60,
        count=1,
        dtype="uint8",
        crs=CRS,
        transform=transform,
        nodata=0,
    ) as dst:
        dst.write(arr, 1)
    regions = gpd.GeoDataFrame(
        {"name": ["west", "east"]},
        geometry=[
            shapely.box(500_000, 4_999_400, 500_400, 5_000_000),
            shapely.box(500_400, 4_999_400, 500_800, 5_000_000),
        ],
        crs=CRS,
    )
    return path, arr, regions, transform


def test_design_samples_from_a_raster_and_region_polygons(raster_and_regions) -> None:
    path, arr, regions, transform = raster_and_regions
    sites, allocation = design_samples(
        path, regions.to_crs(4326), n=200, unit_size_m=100.0, region_col="name", seed=1
    )
    assert len(sites) == 200 and sites.crs.to_string() == CRS
    assert set(allocation["region"]) == {"west", "east"}
    assert allocation["n"].sum() == 200
    rows, cols = rasterio.transform.rowcol(transform, sites.geometry.x, sites.geometry.y)
    assert (arr[np.asarray(rows), np.asarray(cols)] == sites["class"].to_numpy()).all()
    west = sites.geometry.x < 500_400
    assert (sites.loc[west, "region"] == "west").all()
    assert (sites.loc[~west, "region"] == "east").all()


def test_sample_design_cli(raster_and_regions, tmp_path, capsys) -> None:
    path, _, regions, _ = raster_and_regions
    gpkg = tmp_path / "regions.gpkg"
    regions.to_file(gpkg)
    out = tmp_path / "sites.gpkg"
    args = ["sample-design", "--landcover", str(path), "--regions", str(gpkg)]
    assert main([*args, "--n", "50", "--unit-size-m", "100", "--out", str(out)]) == 0
    assert len(gpd.read_file(out)) == 50
    assert (tmp_path / "sites.allocation.csv").exists()
    assert "50 sites in 2 regions" in capsys.readouterr().out


def test_sample_design_cli_errors_are_one_line(raster_and_regions, tmp_path, capsys) -> None:
    path, _, regions, _ = raster_and_regions
    gpkg = tmp_path / "regions.gpkg"
    regions.to_file(gpkg)
    bare = tmp_path / "bare.gpkg"
    with pytest.warns(UserWarning):  # pyogrio warns when writing without a CRS
        regions.set_crs(None, allow_override=True).to_file(bare)
    out = str(tmp_path / "sites.gpkg")
    missing = str(tmp_path / "none.tif")
    cases = [
        (["--landcover", missing, "--regions", str(gpkg), "--n", "5"], "does not exist"),
        (["--landcover", str(path), "--regions", str(bare), "--n", "5"], "no CRS"),
        (["--landcover", str(path), "--regions", str(gpkg), "--n", "0"], "--n"),
    ]
    for args, message in cases:
        code = main(["sample-design", *args, "--unit-size-m", "100", "--out", out])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and len(err.splitlines()) == 1, err


# ---------------------------------------------------------------- windows
def _frames_equal(a, b) -> None:
    assert a.sites.drop(columns="geometry", errors="ignore").equals(
        b.sites.drop(columns="geometry", errors="ignore")
    )
    assert a.allocation.equals(b.allocation)


@pytest.mark.parametrize("unit", [1, 7, (5, 9), 10, 100])
def test_windowed_design_equals_the_whole_array_design(unit) -> None:
    arr = _random_landscape(7, shape=(37, 43), k=5, nodata_share=0.2)
    regions = np.full(arr.shape, -1, dtype=np.int64)
    regions[:20] = 0
    regions[20:, :30] = 1
    regions[:6, :6] = 2
    for standard, blocks in (("sqrt", (1, 13)), ("fragstats", (4,))):
        whole = design_samples_array(arr, regions, 300, unit, nodata=0, seed=3, standard=standard)
        for block in blocks:
            windowed = design_samples_array(
                arr, regions, 300, unit, nodata=0, seed=3, standard=standard, block=block
            )
            _frames_equal(windowed, whole)


def test_windowed_raster_design_equals_the_whole_raster_design(raster_and_regions) -> None:
    path, _, regions, _ = raster_and_regions
    blob = gpd.GeoDataFrame(
        {"name": ["blob"]}, geometry=[shapely.Point(500_333, 4_999_711).buffer(123)], crs=CRS
    )
    regions = pd.concat([regions, blob], ignore_index=True)
    kw = dict(n=150, unit_size_m=30.0, region_col="name", seed=2)
    whole = design_samples(path, regions, block=4096, **kw)
    assert len(whole.sites) == 150
    for block in (3, 16):
        windowed = design_samples(path, regions, block=block, **kw)
        _frames_equal(windowed, whole)
        assert (windowed.sites.geometry.x == whole.sites.geometry.x).all()


def test_design_on_dask_equals_the_in_process_design(raster_and_regions) -> None:
    distributed = pytest.importorskip("dask.distributed")
    path, _, regions, _ = raster_and_regions
    kw = dict(n=120, unit_size_m=100.0, region_col="name", seed=4, block=16)
    here = design_samples(path, regions, **kw)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        there = design_samples(path, regions, client=client, **kw)
    _frames_equal(there, here)


def test_more_sites_than_pixels_is_one_warning_with_a_count() -> None:
    arr = np.ones((6, 6), dtype=np.uint8)
    arr[0, 0] = arr[5, 5] = 2  # class 2: two pixels in two regions
    regions = np.zeros(arr.shape, dtype=np.int64)
    regions[3:] = 1
    with pytest.warns(UserWarning, match=r"more sites than pixels in \d+ \(region, class\)") as w:
        design_samples_array(arr, regions, 200, 3, seed=0)
    assert len(w) == 1


def test_regions_left_out_are_counted_in_one_warning_each(raster_and_regions) -> None:
    path, _, regions, _ = raster_and_regions
    extra = gpd.GeoDataFrame(
        {"name": ["far", "none", "void"]},
        geometry=[shapely.box(0, 0, 10, 10), None, shapely.Polygon()],
        crs=CRS,
    )
    regions = pd.concat([regions, extra], ignore_index=True)
    with pytest.warns(UserWarning) as caught:
        design = design_samples(path, regions, n=50, unit_size_m=100.0, region_col="name")
    messages = [str(w.message) for w in caught]
    assert "2 region(s) without geometry left out" in messages
    assert "1 region(s) cover no valid land-cover pixel and get no sites: far" in messages
    assert set(design.allocation["region"]) == {"west", "east"}
