"""io/ turns unreadable inputs into InputError naming the file; outputs never clobber."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from shapely.geometry import box

from landforge.errors import InputError
from landforge.io.atomic import atomic_dir, check_writable, ensure_dir
from landforge.io.poi import read_pois
from landforge.io.raster import (
    RasterGrid,
    check_same_grid,
    open_raster,
    read_raster,
    resample_to_grid,
    write_cog,
)
from landforge.io.vector import read_vector


def _grid(w: int = 300, h: int = 300) -> RasterGrid:
    return RasterGrid.from_bounds(400000, 3400000, 400000 + w, 3400000 + h, 1.0, 32650)


@pytest.fixture
def truncated(tmp_path):
    """A real COG of noise cut in half: the header is whole, the pixels end early."""
    data = np.random.default_rng(0).integers(0, 255, size=(3, 300, 300), dtype=np.uint8)
    cog = write_cog(tmp_path / "full.tif", data, _grid(), nodata=0)  # masks read pixels
    raw = cog.read_bytes()
    bad = tmp_path / "half.tif"
    bad.write_bytes(raw[: len(raw) // 2])
    return bad


def test_truncated_raster_opens_and_fails_mid_read_naming_the_file(truncated):
    with open_raster(truncated) as src:
        assert src.count == 3 and src.crs.to_epsg() == 32650  # the header reads fine
        for read in (lambda: src.read(1), lambda: src.read_masks(1), src.dataset_mask):
            with pytest.raises(InputError) as err:
                read()
            assert err.value.source == str(truncated)
            assert "cannot read pixels" in err.value.problem
            assert err.value.problem.endswith("is the file truncated or corrupt?")
            assert "See previous exception" not in err.value.problem  # GDAL's own reason
    with pytest.raises(InputError, match="half.tif: cannot read pixels"):
        read_raster(truncated)
    with pytest.raises(InputError, match="half.tif: cannot read pixels"):
        resample_to_grid(truncated, _grid(100, 100))


def test_checked_reader_is_still_a_rasterio_dataset(tmp_path):
    path = write_cog(tmp_path / "a.tif", np.ones((1, 50, 50), np.uint8), _grid(50, 50))
    with open_raster(path) as src:
        assert isinstance(src, DatasetReader)
        with WarpedVRT(src, crs="EPSG:4326") as vrt:  # C-level consumers accept it
            assert vrt.read(1).any()
        np.testing.assert_array_equal(src.read(), 1)
    assert src.closed


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "file is empty (0 bytes)"), (b"just text\n", "not a readable raster")],
    ids=["empty", "text"],
)
def test_empty_and_text_rasters(tmp_path, content, problem):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(content)
    with pytest.raises(InputError) as err, open_raster(bad):
        pass
    assert err.value.source == str(bad) and err.value.problem.startswith(problem)
    assert str(bad) not in err.value.problem  # the path leads the line, once


def test_same_grid_without_crs_is_an_error(tmp_path):
    grid = _grid(20, 20)
    ref = write_cog(tmp_path / "ref.tif", np.zeros((1, 20, 20), np.uint8), grid)
    with rasterio.open(ref) as src:
        profile = {**src.profile, "driver": "GTiff", "crs": None}
    other = tmp_path / "nocrs.tif"
    with rasterio.open(other, "w", **profile) as dst:
        dst.write(np.zeros((1, 20, 20), np.uint8))
    with pytest.raises(InputError, match="nocrs.tif: raster has no CRS .*EPSG:32650"):
        check_same_grid(ref, other)


def _polygons(tmp_path, geoms, name="p.gpkg"):
    path = tmp_path / name
    gpd.GeoDataFrame({"k": range(len(geoms))}, geometry=geoms, crs=32650).to_file(path)
    return path


def test_vector_empty_file_and_empty_layer(tmp_path):
    empty = tmp_path / "empty.gpkg"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.gpkg: file is empty"):
        read_vector(empty)
    layer = _polygons(tmp_path, [], "layer.gpkg")
    with pytest.raises(InputError, match="layer.gpkg: layer has no features"):
        read_vector(layer)
    assert len(read_vector(layer, allow_empty=True)) == 0


def test_invalid_polygons_repaired_with_one_counted_warning(tmp_path):
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    path = _polygons(tmp_path, [box(0, 0, 5, 5), bowtie, bowtie])
    with pytest.warns(UserWarning) as record:
        gdf = read_vector(path)
    assert len(record) == 1
    assert str(record[0].message).startswith(f"{path}: 2 of 3 polygons invalid")
    assert shapely.is_valid(gdf.geometry.values).all()
    assert gdf.geometry.iloc[0].equals(box(0, 0, 5, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = read_vector(path, repair=False)
        assert not shapely.is_valid(raw.geometry.values[1])
        read_vector(_polygons(tmp_path, [box(0, 0, 1, 1)], "ok.gpkg"))  # valid: silent


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "file is empty"), ("\n\n", "cannot read CSV"), ("lon,lat,category\n", "no POIs")],
    ids=["empty", "blank-lines", "header-only"],
)
def test_empty_poi_tables(tmp_path, text, problem):
    path = tmp_path / "pois.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=f"pois.csv: .*{problem}"):
        read_pois(path)


def test_atomic_dir_replaces_an_earlier_output_only(tmp_path):
    out = tmp_path / "store"
    for _ in range(2):  # an earlier version of the same output is replaced
        with atomic_dir(out) as tmp:
            (tmp / "meta.json").write_text("{}")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("keep")
    refused = pytest.raises(InputError, match="mine: exists and holds files .*thesis.txt")
    with refused, atomic_dir(mine) as tmp:
        (tmp / "meta.json").write_text("{}")
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.txt"]
    marked = tmp_path / "city"
    marked.mkdir()
    (marked / "city.json").write_text("{}")
    (marked / "old_extra.tif").write_text("")
    with atomic_dir(marked, marker="city.json") as tmp:
        (tmp / "city.json").write_text("{}")
    assert sorted(p.name for p in marked.iterdir()) == ["city.json"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(InputError, match="afile: exists and is not a directory"), atomic_dir(afile):
        pass
    assert afile.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "city", "mine", "store"]


def test_check_writable_creates_nothing(tmp_path):
    check_writable(tmp_path / "a" / "b" / "out.tif")
    assert not (tmp_path / "a").exists()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="out.tif: cannot create output directory: .*is a file"):
        check_writable(tmp_path / "afile" / "sub" / "out.tif")
    with pytest.raises(InputError, match="cannot create the run directory"):
        ensure_dir(tmp_path / "afile" / "run", "run directory")
    assert ensure_dir(tmp_path / "new" / "run").is_dir()
