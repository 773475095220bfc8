"""Raster I/O: COG round trips, grid checks, atomic writes, errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from landforge.errors import InputError
from landforge.io.raster import (
    RasterGrid,
    check_same_grid,
    iter_blocks,
    read_grid,
    read_raster,
    resample_to_grid,
    write_cog,
)


def _grid(w: int = 300, h: int = 200, res: float = 0.5) -> RasterGrid:
    return RasterGrid.from_bounds(400000, 3400000, 400000 + w * res, 3400000 + h * res, res, 32650)


def test_cog_round_trip_keeps_crs_nodata_descriptions_and_colours(tmp_path):
    grid = _grid()
    data = np.random.default_rng(0).integers(0, 4, size=(1, 200, 300), dtype=np.uint8)
    path = write_cog(
        tmp_path / "map.tif",
        data,
        grid,
        nodata=255,
        band_descriptions=["use"],
        colormap={0: (0, 0, 0), 1: (230, 0, 0)},
    )
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32650
        assert src.nodata == 255
        assert src.descriptions == ("use",)
        assert src.colormap(1)[1][:3] == (230, 0, 0)
        assert src.profile["tiled"]
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    np.testing.assert_array_equal(read_raster(path), data)
    assert read_grid(path) == grid


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(ValueError):
        write_cog(tmp_path / "bad.tif", np.zeros((1, 5, 5), np.uint8), _grid())
    assert list(tmp_path.iterdir()) == []


def test_missing_and_corrupt_rasters_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.tif: raster does not exist"):
        read_grid(tmp_path / "missing.tif")
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(InputError, match="corrupt.tif: not a readable raster"):
        read_raster(bad)


def test_check_same_grid_detects_shift_and_size(tmp_path):
    grid = _grid()
    a = write_cog(tmp_path / "a.tif", np.zeros((1, 200, 300), np.uint8), grid)
    shifted = RasterGrid(grid.crs, grid.transform @ grid.transform.translation(1, 0), 300, 200)
    b = write_cog(tmp_path / "b.tif", np.zeros((1, 200, 300), np.uint8), shifted)
    c = write_cog(tmp_path / "c.tif", np.zeros((1, 100, 300), np.uint8), _grid(300, 100))
    check_same_grid(a, a)
    with pytest.raises(InputError, match="misaligned"):
        check_same_grid(a, b)
    with pytest.raises(InputError, match="300x100"):
        check_same_grid(a, c)


def test_blocks_cover_grid_exactly():
    grid = _grid(1000, 700)
    seen = np.zeros(grid.shape, int)
    for w in iter_blocks(grid, 256):
        seen[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
    assert (seen == 1).all()


def test_resample_to_coarser_grid(tmp_path):
    fine = _grid(400, 400, 0.5)
    data = np.zeros((1, 400, 400), np.uint8)
    data[:, :200, :] = 1  # top half
    src = write_cog(tmp_path / "fine.tif", data, fine)
    coarse = _grid(100, 100, 2.0)
    out = resample_to_grid(src, coarse)
    assert out.shape == (100, 100)
    assert out[:50].all() and not out[50:].any()
