"""Built-up masks: union of settlement rasters at any CRS/resolution, 'any pixel' rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from inference_helpers import TinyFCN, make_card, write_image
from rasterio.crs import CRS

from landforge.cli import main
from landforge.errors import OptionError
from landforge.inference.builtup import builtup_mask, parse_values
from landforge.inference.predictor import predict_raster
from landforge.io.raster import RasterGrid, write_cog
from landforge.models.checkpoint import save_checkpoint

UTM = CRS.from_epsg(32650)
X0, Y0 = 500000.0, 3400000.0


def _grid(res: float, w: int, h: int, x0: float = X0, y0: float = Y0, crs=UTM) -> RasterGrid:
    return RasterGrid(crs, Affine(res, 0, x0, 0, -res, y0), w, h)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_coarse_source_marks_every_target_pixel_it_touches(tmp_path: Path) -> None:
    target = _grid(1.0, 40, 40)
    # 10 m source shifted by 0.5 m: target column 9 straddles source columns 0 and 1
    src = np.zeros((1, 4, 4), np.uint8)
    src[0, 0, 1] = 1
    write_cog(tmp_path / "ghsl.tif", src, _grid(10.0, 4, 4, x0=X0 - 0.5))
    s = builtup_mask([tmp_path / "ghsl.tif"], target, tmp_path / "m.tif")
    m = _read(tmp_path / "m.tif")
    built_cols = np.flatnonzero(m[0] == 1)
    assert built_cols.min() == 9 and built_cols.max() == 19  # straddling pixels included
    assert (m[:10, 9:20] == 1).all() and (m[10:] == 0).all()
    # the source ends at x0 + 39.5: target column 39 is half covered, so still 0 not 255
    assert s["nodata_pixels"] == 0 and s["builtup_pixels"] == 10 * 11


def test_fine_source_keeps_a_single_built_pixel(tmp_path: Path) -> None:
    target = _grid(10.0, 4, 4)
    src = np.zeros((1, 80, 80), np.uint8)
    src[0, 23, 57] = 50  # WorldCover-like class 50 = built-up, one 0.5 m pixel
    src[0, 0:10, 0:10] = 40
    write_cog(tmp_path / "wc.tif", src, _grid(0.5, 80, 80))
    builtup_mask([tmp_path / "wc.tif"], target, tmp_path / "m.tif", values="50")
    m = _read(tmp_path / "m.tif")
    expected = np.zeros((4, 4), np.uint8)
    expected[23 // 20, 57 // 20] = 1
    assert (m == expected).all()


def test_union_of_inputs_in_other_crs_with_coverage_nodata(tmp_path: Path) -> None:
    target = _grid(2.0, 50, 50)  # 100 m x 100 m in UTM 50N
    # input A in WGS84 covering the western half, built where value is 1 or 2
    lon0, lat0 = rasterio.warp.transform(UTM, "EPSG:4326", [X0], [Y0])
    deg = 1e-5  # about 1 m
    a = np.zeros((1, 120, 55), np.uint8)
    a[0, 10:20, 10:20] = 2
    a[0, 30:40, 30:40] = 3  # not selected
    grid_a = _grid(deg, 55, 120, x0=lon0[0] - 5 * deg, y0=lat0[0] + 5 * deg, crs="EPSG:4326")
    write_cog(tmp_path / "a.tif", a, grid_a, nodata=255)
    # input B in UTM at 5 m covering the eastern half, float probability thresholded
    b = np.zeros((1, 20, 10), np.float32)
    b[0, 15:, 5:] = 0.8
    write_cog(tmp_path / "b.tif", b, _grid(5.0, 10, 20, x0=X0 + 50), nodata=float("nan"))
    s = builtup_mask(
        [tmp_path / "a.tif", tmp_path / "b.tif"], target, tmp_path / "m.tif", values="1,2;>=0.5"
    )
    m = _read(tmp_path / "m.tif")
    assert s["builtup_pixels"] > 0 and set(np.unique(m)) <= {0, 1, 255}
    assert (m[37:, 38:] == 1).all()  # from B (rows 75..100 m, cols 75..100 m)
    assert m[:, :20].max() == 1  # from A's value 2 block near the origin
    east_top = m[:30, 30:]
    assert (east_top[:, 5:] == 0).all()  # B covers it, nothing built
    with rasterio.open(tmp_path / "m.tif") as src:
        assert src.nodata == 255 and src.dtypes[0] == "uint8" and src.crs == UTM


def test_predict_mask_from_builtup_of_another_crs_skips_windows(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ckpt = save_checkpoint(TinyFCN(), make_card(), tmp_path / "tiny")
    image = write_image(tmp_path / "image.tif", 128, 128)  # 0.5 m UTM grid from the helpers
    lon0, lat0 = rasterio.warp.transform(UTM, "EPSG:4326", [X0], [Y0])
    deg = 5e-5  # about 5 m
    settle = np.zeros((1, 20, 20), np.uint8)
    settle[0, 1:3, 1:3] = 1  # about 5..15 m from the north-west corner: first window only
    write_cog(
        tmp_path / "settle.tif", settle,
        _grid(deg, 20, 20, x0=lon0[0] - deg, y0=lat0[0] + deg, crs="EPSG:4326"),
    )  # fmt: skip
    code = main(
        ["builtup", "--inputs", str(tmp_path / "settle.tif"), "--like", str(image),
         "--out", str(tmp_path / "mask.tif")]
    )  # fmt: skip
    assert code == 0
    summary = predict_raster(
        ckpt, image, tmp_path / "map.tif", window=64, overlap=8, mask=tmp_path / "mask.tif",
        quiet=True,
    )  # fmt: skip
    assert summary["windows"] == 9 and summary["windows_skipped"] == 8


@pytest.mark.parametrize(
    ("text", "n", "ok"),
    [("1;1,2;>0", 3, True), (">=0.5", 2, True), (None, 2, True), ("1;2", 3, False),
     ("abc", 1, False)],
)  # fmt: skip
def test_parse_values(text, n, ok) -> None:
    if ok:
        assert len(parse_values(text, n)) == n
    else:
        with pytest.raises(OptionError, match="^values: "):
            parse_values(text, n)


def test_builtup_cli_takes_several_inputs(tmp_path: Path, capsys) -> None:
    for name in ("a", "b", "c"):
        write_cog(tmp_path / f"{name}.tif", np.ones((1, 4, 4), np.uint8), _grid(10.0, 4, 4))
    image = write_image(tmp_path / "image.tif", 20, 20)
    code = main(
        ["builtup", *(a for n in "abc" for a in ("--inputs", str(tmp_path / f"{n}.tif"))),
         "--values", "1;>5;1", "--like", str(image), "--out", str(tmp_path / "m.tif")]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert (_read(tmp_path / "m.tif") == 1).all()
    code = main(
        ["builtup", "--inputs", str(tmp_path / "a.tif"), "--inputs", str(tmp_path / "b.tif"),
         "--values", "1;2;3", "--like", str(image), "--out", str(tmp_path / "m2.tif")]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --values:")
    assert not (tmp_path / "m2.tif").exists()


import rasterio.warp  # noqa: E402
