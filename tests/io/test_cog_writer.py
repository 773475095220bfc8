"""The COG writer: valid COGs (rio-cogeo's validator), per-dtype compression, failures.

Every raster output of landforge goes through :func:`landforge.io.raster.write_cog` or
:class:`~landforge.io.raster.StagedCOG`; these tests check the layout a COG reader
relies on (IFDs first, tiled, overviews), the values, and that a failed write leaves
nothing behind and says so once.
"""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS

from landforge.errors import InputError
from landforge.features.poi_maps import write_poi_probability_maps
from landforge.io import raster as raster_mod
from landforge.io.raster import RasterGrid, StagedCOG, cog_options, write_cog

cogeo = pytest.importorskip("rio_cogeo.cogeo")


def _grid(width: int, height: int, res: float = 2.0) -> RasterGrid:
    return RasterGrid(CRS.from_epsg(32650), Affine(res, 0, 560000, 0, -res, 3370000), width, height)


def assert_valid_cog(path: Path) -> None:
    """rio-cogeo's validator, strict: warnings (e.g. no overviews) fail as well."""
    valid, errors, warns = cogeo.cog_validate(path, strict=True, quiet=True)
    assert valid, (errors, warns)


def _smooth(bands: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / 97.0
    out = [np.sin(x * (b + 1)) * np.cos(y) + rng.normal(0, 0.01, x.shape) for b in range(bands)]
    return np.clip(np.stack(out) * 0.5 + 0.5, 0, 1).astype(np.float32)


def test_float_cog_is_valid_zstd_with_floating_point_predictor(tmp_path: Path) -> None:
    grid = _grid(1100, 700)  # > one 512 tile each way: overviews are required
    data = _smooth(3, 700, 1100)
    data[1, :5, :5] = np.nan
    path = write_cog(tmp_path / "f.tif", data, grid, nodata=float("nan"), band_descriptions="abc")
    assert_valid_cog(path)
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2, 4]  # down to one 512 tile
        assert (
            src.profile["compress"] == "zstd" and src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
        )
        assert src.descriptions == ("a", "b", "c")
        np.testing.assert_array_equal(src.read(), data)  # lossless, NaN included
        ovr = src.read(1, out_shape=(350, 550))
    # the overview is the 2 x 2 average of the full resolution
    np.testing.assert_allclose(ovr, data[0].reshape(350, 2, 550, 2).mean((1, 3)), atol=1e-6)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries


def test_integer_cog_keeps_colours_and_uses_horizontal_predictor(tmp_path: Path) -> None:
    grid = _grid(600, 530)
    classes = (np.arange(600)[None, :] // 100 + np.arange(530)[:, None] // 100) % 4
    path = write_cog(
        tmp_path / "c.tif", classes.astype(np.uint8), grid, nodata=255,
        colormap={1: (255, 0, 0), 2: (0, 255, 0)},
    )  # fmt: skip
    assert_valid_cog(path)
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
        assert src.colormap(1)[1][:3] == (255, 0, 0)
        assert (src.read(1) == classes).all()


def test_tiny_raster_is_a_valid_cog_without_overviews(tmp_path: Path) -> None:
    path = write_cog(tmp_path / "t.tif", np.ones((2, 5, 7), np.int16), _grid(7, 5))
    assert_valid_cog(path)


def test_poi_maps_output_is_a_valid_cog(tmp_path: Path) -> None:
    grid = _grid(1030, 600, res=1.0)
    rng = np.random.default_rng(3)
    xy = rng.uniform([560000, 3369400], [561030, 3370000], (60, 2))
    pois = gpd.GeoDataFrame(
        {"category": np.repeat(["residential", "commercial", "industrial"], 20)},
        geometry=shapely.points(xy),
        crs="EPSG:32650",
    )
    dmax = {"residential": 150.0, "commercial": 150.0, "industrial": 300.0}
    path = write_poi_probability_maps(tmp_path / "poi.tif", pois, grid, dmax=dmax, tile=32)
    assert_valid_cog(path)
    with rasterio.open(path) as src:
        assert src.count == 3 and src.dtypes[0] == "float32"
        assert src.read().max() == pytest.approx(1.0, abs=0.02)


def test_writes_are_byte_identical(tmp_path: Path) -> None:
    """Threaded compression must not change the bytes (kill/resume compares outputs)."""
    data = _smooth(2, 900, 1300, seed=5)
    a = write_cog(tmp_path / "a.tif", data, _grid(1300, 900))
    b = write_cog(tmp_path / "b.tif", data, _grid(1300, 900))
    assert a.read_bytes() == b.read_bytes()


def test_lerc_needs_a_stated_error_and_keeps_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_z_error"):
        cog_options(np.float32, "LERC_ZSTD")
    with pytest.raises(ValueError, match="LERC"):
        cog_options(np.float32, "ZSTD", max_z_error=0.01)
    data = _smooth(1, 600, 600)
    path = write_cog(
        tmp_path / "l.tif", data, _grid(600, 600), compress="LERC_ZSTD", max_z_error=1e-3
    )
    assert_valid_cog(path)
    with rasterio.open(path) as src:
        err = np.abs(src.read() - data).max()
    assert 0 < err <= 1e-3 + 1e-5  # the stated error, up to float32 rounding


def test_defaults_by_dtype() -> None:
    f = cog_options(np.float32)
    i = cog_options(np.uint8)
    assert (f["compress"], f["predictor"], f["overview_resampling"]) == ("ZSTD", 3, "average")
    assert (i["compress"], i["predictor"], i["overview_resampling"]) == ("ZSTD", 2, "nearest")
    assert f["level"] == raster_mod.COG_COMPRESSION["float"][1]
    assert "level" not in cog_options(np.float32, "DEFLATE")  # GDAL's default level
    assert cog_options(np.float32, "deflate", level=6)["level"] == 6


def _failing_copy(real_copy):  # noqa: ANN001, ANN202 - test helper
    """rasterio.shutil.copy that writes part of the file, then fails as a full disk."""

    def copy(src, dst, **kwargs):  # noqa: ANN001, ANN003, ANN202
        Path(dst).write_bytes(b"II*\x00" + b"\x00" * 4096)  # a partial TIFF
        Path(f"{dst}.ovr.tmp").write_bytes(b"\x00" * 128)  # GDAL's own temporary
        raise rasterio.errors.RasterioIOError(
            f"{dst}: Write failed: No space left on device (ENOSPC)"
        )

    return copy


def test_failing_disk_leaves_no_partial_file_and_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(raster_mod.rasterio.shutil, "copy", _failing_copy(rasterio.shutil.copy))
    out = tmp_path / "out" / "map.tif"
    with pytest.raises(InputError) as info:
        write_cog(out, np.ones((1, 600, 600), np.uint8), _grid(600, 600))
    text = str(info.value)
    assert str(out) in text and "No space left on device" in text
    assert "\n" not in text
    assert list(out.parent.iterdir()) == []  # no output, no staging, no GDAL temporaries


def test_failing_staging_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged = StagedCOG(tmp_path / "s.tif", _grid(50, 40), 1, np.float32, None)

    def fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise rasterio.errors.RasterioIOError("Write failed: No space left on device")

    monkeypatch.setattr(staged.ds, "write", fail)
    with pytest.raises(InputError, match="No space left on device"):
        staged.write(np.zeros((1, 40, 50), np.float32), 0)
    staged.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere"
)
def test_read_only_directory_is_one_error_before_any_work(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(InputError, match="not writable"):
            write_cog(ro / "x.tif", np.ones((1, 8, 8), np.uint8), _grid(8, 8))
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)
