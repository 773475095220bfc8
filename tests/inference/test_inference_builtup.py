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
from landforge.errors import InputError, OptionError
from landforge.inference.builtup import builtup_mask, parse_values
from landforge.inference.options import BuiltupOptions
from landforge.inference.predictor import predict_raster
from landforge.inference.windows import sliding_windows
from landforge.io.raster import RasterGrid, read_grid, write_cog
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
    # the 8 skipped windows' kept regions: the image (0.5 m pixels) less the first one's
    first = sliding_windows(128, 128, 64, 8)[0]
    kept_px = 128 * 128 - first.keep_height * first.keep_width
    assert summary["skipped_km2"] == pytest.approx(kept_px * 0.25 / 1e6)


def test_predict_mask_line_says_windows_and_area_skipped(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    ckpt = save_checkpoint(TinyFCN(), make_card(), tmp_path / "tiny")
    image = write_image(tmp_path / "image.tif", 128, 128)
    mask = np.zeros((1, 128, 128), np.uint8)
    mask[0, 100:, 100:] = 1  # last window only
    write_cog(tmp_path / "mask.tif", mask, read_grid(image), nodata=255)
    args = ["predict", "--model", str(ckpt), "--image", str(image), "--window", "64",
            "--overlap", "8", "--mask", str(tmp_path / "mask.tif")]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "map.tif")]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "9 windows, 8 skipped by mask (" in line and " km²)" in line


# ---------------------------------------------------------------- unreadable inputs
def _inputs(tmp_path: Path) -> dict[str, Path]:
    """A good input, a text file named .tif, a missing file and a truncated COG."""
    write_cog(tmp_path / "good.tif", np.ones((1, 8, 8), np.uint8), _grid(10.0, 8, 8))
    (tmp_path / "text.tif").write_text("not a raster\n")
    rng = np.random.default_rng(0)  # incompressible: the tiles fill the file
    noise = rng.integers(0, 255, (1, 1024, 1024), dtype=np.uint8)
    write_cog(tmp_path / "full.tif", noise, _grid(0.1, 1024, 1024))
    data = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) * 2 // 3])
    return {
        "good": tmp_path / "good.tif",
        "text": tmp_path / "text.tif",
        "missing": tmp_path / "missing.tif",
        "cut": tmp_path / "cut.tif",
    }


@pytest.mark.parametrize("bad", ["text", "missing", "cut"])
def test_an_unreadable_input_is_an_error_naming_it(tmp_path: Path, capsys, bad: str) -> None:
    paths = _inputs(tmp_path)
    image = write_image(tmp_path / "image.tif", 160, 160)  # 0.5 m: 80 m x 80 m
    out = tmp_path / "out" / "m.tif"
    code = main(
        ["builtup", "--inputs", str(paths["good"]), "--inputs", str(paths[bad]),
         "--like", str(image), "--out", str(out), "--block", "64"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {paths[bad]}: ")
    assert not out.parent.exists() or not list(out.parent.iterdir())  # no output, no stage


def test_skip_unreadable_counts_them_in_one_warning(tmp_path: Path, capsys) -> None:
    paths = _inputs(tmp_path)
    image = write_image(tmp_path / "image.tif", 160, 160)
    args = ["builtup", "--inputs", str(paths["good"]), "--like", str(image), "--block", "64"]
    assert main([*args, "--out", str(tmp_path / "ref.tif")]) == 0
    capsys.readouterr()
    bad = ["--inputs", str(paths["text"]), "--inputs", str(paths["cut"]), "--skip-unreadable"]
    assert main([*args, *bad, "--out", str(tmp_path / "m.tif")]) == 0
    captured = capsys.readouterr()
    warns = [x for x in captured.err.splitlines() if x.startswith("warning:")]
    assert len(warns) == 1, captured.err
    assert "2 unreadable input(s) counted as no data" in warns[0]
    assert str(paths["text"]) in warns[0] and str(paths["cut"]) in warns[0]
    assert "all of 9 blocks" in warns[0]  # the text file: every block
    assert "2 unreadable input(s) skipped" in captured.out
    # the truncated input covers the first 100 m x 100 m: its readable tiles may add
    # nothing built-up (the good input is 1 everywhere) -> same mask as the good input
    assert (_read(tmp_path / "m.tif") == _read(tmp_path / "ref.tif")).all()
    with rasterio.open(tmp_path / "m.tif") as src:
        assert src.tags()["LANDFORGE_BUILTUP_UNREADABLE"] == f"{paths['text']};{paths['cut']}"


def test_skip_unreadable_reports_the_blocks_a_truncated_input_lost(tmp_path: Path) -> None:
    paths = _inputs(tmp_path)
    target = _grid(0.1, 1024, 1024)  # the truncated raster's own grid
    with pytest.warns(UserWarning, match=r"1 unreadable input\(s\)") as caught:
        s = builtup_mask(
            [paths["good"], paths["cut"]], target, tmp_path / "m.tif", block=128,
            skip_unreadable=True,
        )  # fmt: skip
    assert len(caught) == 1
    lost = s["unreadable"][str(paths["cut"])]
    assert 0 < lost["blocks"] < s["blocks"] == 64 and "corrupt" in lost["problem"]
    with pytest.raises(InputError, match="no input can be read"):
        builtup_mask(
            [paths["text"], paths["missing"]], target, tmp_path / "n.tif", skip_unreadable=True
        )
    assert not (tmp_path / "n.tif").exists()


def test_blocks_do_not_change_the_union_of_aligned_inputs(tmp_path: Path) -> None:
    # inputs on the target grid: the mask is the same whatever the block size
    rng = np.random.default_rng(3)
    grid = _grid(1.0, 300, 200)
    a = rng.integers(0, 3, (1, 200, 300)).astype(np.uint8)
    write_cog(tmp_path / "a.tif", a, grid, nodata=0)
    whole = builtup_mask([tmp_path / "a.tif"], grid, tmp_path / "w.tif", values="2", block=4096)
    small = builtup_mask([tmp_path / "a.tif"], grid, tmp_path / "s.tif", values="2", block=48)
    assert small["blocks"] == 7 * 5 and whole["blocks"] == 1
    assert (_read(tmp_path / "w.tif") == _read(tmp_path / "s.tif")).all()
    expected = np.where(a[0] == 0, 255, (a[0] == 2).astype(np.uint8))
    assert (_read(tmp_path / "s.tif") == expected).all()
    assert (tmp_path / "w.tif").read_bytes() == (tmp_path / "s.tif").read_bytes()


def test_blocks_on_dask_equal_the_in_process_run(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    rng = np.random.default_rng(4)
    write_cog(
        tmp_path / "a.tif", rng.integers(0, 2, (1, 30, 30)).astype(np.uint8), _grid(3.0, 30, 30)
    )
    target = _grid(1.0, 90, 90)
    ref = builtup_mask([tmp_path / "a.tif"], target, tmp_path / "ref.tif", block=32)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        got = builtup_mask(
            [tmp_path / "a.tif"], target, tmp_path / "d.tif", block=32, client=client
        )
    assert got["builtup_pixels"] == ref["builtup_pixels"]
    assert (tmp_path / "d.tif").read_bytes() == (tmp_path / "ref.tif").read_bytes()


def test_builtup_options_reject_two_clusters() -> None:
    with pytest.raises(OptionError, match="^workers: give either"):
        BuiltupOptions.build(workers=2, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(OptionError, match="^scheduler: "):
        BuiltupOptions.build(scheduler="not an address")
    assert BuiltupOptions.build(scheduler="none").scheduler is None


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


def test_an_input_far_from_the_grid_is_an_error_or_one_warning(tmp_path: Path) -> None:
    target = _grid(1.0, 40, 40)
    write_cog(tmp_path / "near.tif", np.ones((1, 4, 4), np.uint8), _grid(10.0, 4, 4))
    far_grid = _grid(10.0, 4, 4, x0=X0 + 50_000)
    for name in ("far1.tif", "far2.tif"):
        write_cog(tmp_path / name, np.ones((1, 4, 4), np.uint8), far_grid)
    with pytest.raises(InputError, match="does not overlap the target grid") as err:
        builtup_mask([tmp_path / "far1.tif"], target, tmp_path / "m.tif")
    assert err.value.source == str(tmp_path / "far1.tif")
    assert not (tmp_path / "m.tif").exists()
    inputs = [tmp_path / "far1.tif", tmp_path / "near.tif", tmp_path / "far2.tif"]
    with pytest.warns(UserWarning, match="2 of 3 inputs do not overlap") as caught:
        s = builtup_mask(inputs, target, tmp_path / "m.tif")
    assert len(caught) == 1 and s["builtup_pixels"] == 40 * 40
