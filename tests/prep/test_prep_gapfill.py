"""`landforge prep gapfill`: ordinary kriging of cloud gaps, beside simple baselines."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import rasterio
from prep_helpers import assert_one_error, read, run_cli, smooth_field, write_tif

from landforge.prep.gapfill import fill_gaps_array, gapfill


def _field_and_mask(shape=(64, 72), seed=0):
    truth = (smooth_field(shape, seed, 5.0) * 200 + 20).astype(np.float32)
    gap = np.zeros(shape, bool)
    gap[10:18, 12:22] = True
    gap[40:47, 45:52] = True
    return truth[None], gap


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def test_kriging_beats_mean_fill_on_a_smooth_field() -> None:
    truth, gap = _field_and_mask()
    valid = ~gap
    stats: Counter[str] = Counter()
    krig = fill_gaps_array(truth, gap, valid, method="kriging", stats=stats)
    mean = fill_gaps_array(truth, gap, valid, method="mean")
    assert stats["gaps"] == 2 and stats["gap_pixels"] == gap.sum()
    assert sum(v for k, v in stats.items() if k.startswith("model_")) == 2
    assert _rmse(krig[0][gap], truth[0][gap]) < 0.5 * _rmse(mean[0][gap], truth[0][gap])
    # pixels outside the gaps are untouched
    assert np.array_equal(krig[0][~gap], truth[0][~gap])


@pytest.mark.parametrize("method", ["idw", "linear", "mean"])
def test_baselines_fill_every_gap_pixel(method: str) -> None:
    truth, gap = _field_and_mask()
    out = fill_gaps_array(truth, gap, ~gap, method=method)
    assert np.isfinite(out).all()
    lo, hi = truth.min(), truth.max()
    assert (out[0][gap] >= lo - 1e-6).all() and (out[0][gap] <= hi + 1e-6).all()


def test_cli_fills_a_raster_by_windows(tmp_path, capsys) -> None:
    truth, gap = _field_and_mask()
    img = np.concatenate([truth, truth[:, ::-1]]).astype(np.uint8)
    cloudy = img.copy()
    cloudy[:, gap] = 255
    src = write_tif(tmp_path / "in.tif", cloudy)
    mask = write_tif(tmp_path / "mask.tif", gap.astype(np.uint8))
    out = tmp_path / "filled.tif"
    args = ["prep", "gapfill", src, "--mask", mask, "--block", "64", "--max-points", "80"]
    args += ["--out", out]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    assert "2 gaps" in stdout or "gaps" in stdout
    filled = read(out)
    assert filled.dtype == np.uint8
    assert np.array_equal(filled[:, ~gap], img[:, ~gap])
    assert np.abs(filled[:, gap].astype(float) - img[:, gap].astype(float)).mean() < 10


def test_mask_on_another_grid_and_missing_band_are_errors(tmp_path, capsys) -> None:
    truth, gap = _field_and_mask()
    src = write_tif(tmp_path / "in.tif", truth)
    other = write_tif(tmp_path / "other.tif", gap.astype(np.uint8), res=20.0)
    out = tmp_path / "out.tif"
    code, _, err = run_cli(["prep", "gapfill", src, "--mask", other, "--out", out], capsys)
    assert_one_error(code, err, "other.tif", "differs")
    assert not out.exists()
    mask = write_tif(tmp_path / "mask.tif", gap.astype(np.uint8))
    args = ["prep", "gapfill", src, "--mask", mask, "--bands", "2", "--out", out]
    code, _, err = run_cli(args, capsys)
    assert_one_error(code, err, "--bands", "band 2 does not exist (the raster has 1 band)")
    assert not out.exists()
    # an image without CRS and a mask with one: the image is named, nothing written
    bare = tmp_path / "bare.tif"
    with rasterio.open(src) as a:
        profile = {**a.profile, "crs": None}
        data = a.read()
    with rasterio.open(bare, "w", **profile) as dst:
        dst.write(data)
    code, _, err = run_cli(["prep", "gapfill", bare, "--mask", mask, "--out", out], capsys)
    assert_one_error(code, err, "bare.tif", "no CRS")
    assert not out.exists()


def test_a_gap_without_neighbours_is_left_and_counted(tmp_path) -> None:
    truth, _ = _field_and_mask((20, 20))
    gap = np.ones((20, 20), bool)
    src = write_tif(tmp_path / "in.tif", truth, nodata=-1.0)
    mask = write_tif(tmp_path / "m.tif", gap.astype(np.uint8))
    s = gapfill(src, mask, tmp_path / "out.tif")
    assert s["unfilled_pixels"] == 400
    assert (read(tmp_path / "out.tif") == -1).all()


def test_windowed_fill_equals_whole_image_fill(tmp_path) -> None:
    truth, gap = _field_and_mask((80, 90))
    src = write_tif(tmp_path / "in.tif", truth)
    mask = write_tif(tmp_path / "m.tif", gap.astype(np.uint8))
    gapfill(src, mask, tmp_path / "win.tif", method="idw", block=64)
    gapfill(src, mask, tmp_path / "whole.tif", method="idw", block=4096)
    assert np.array_equal(read(tmp_path / "win.tif"), read(tmp_path / "whole.tif"))
