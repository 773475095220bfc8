"""`landforge prep retinex`: the paper's single-scale Retinex, windowed like whole-image."""

from __future__ import annotations

import numpy as np
import pytest
from prep_helpers import assert_one_error, read, run_cli, smooth_field, write_tif

from landforge.errors import OptionError
from landforge.prep.retinex import retinex, retinex_array


def _shaded_rgb(shape=(150, 170)) -> tuple[np.ndarray, np.ndarray]:
    """An RGB 'scene' (reflectance x a strong illumination ramp) and the ramp."""
    refl = np.stack([smooth_field(shape, s, 2.0) * 0.6 + 0.2 for s in (1, 2, 3)])
    ramp = np.linspace(0.2, 1.0, shape[1])[None, None, :] * np.ones((1, shape[0], 1))
    return np.round(refl * ramp * 250).astype(np.uint8), ramp[0]


def test_windowed_output_equals_whole_image_output(tmp_path) -> None:
    image, _ = _shaded_rgb()
    src = write_tif(tmp_path / "in.tif", image)
    retinex(src, tmp_path / "win.tif", sigma=6, block=64)
    retinex(src, tmp_path / "whole.tif", sigma=6, block=4096)
    win, whole = read(tmp_path / "win.tif"), read(tmp_path / "whole.tif")
    m = 18  # away from the raster edge (3 sigmas): equal there by construction
    assert np.array_equal(win[:, m:-m, m:-m], whole[:, m:-m, m:-m])
    assert win.dtype == np.uint8 and win.shape == image.shape


def test_one_illumination_field_for_all_bands_removes_the_ramp(tmp_path) -> None:
    image, ramp = _shaded_rgb()
    valid = np.ones(image.shape[1:], bool)
    out = retinex_array(image, valid, sigma=20)
    # the same field is subtracted from every band: log band ratios are kept exactly
    ratio_in = np.log1p(image[0].astype(float)) - np.log1p(image[1].astype(float))
    assert np.allclose(out[0] - out[1], ratio_in)
    # the illumination ramp is (mostly) gone: the log column means no longer spread
    col_in = np.log1p(image.astype(float)).mean(axis=(0, 1))
    col_out = out.mean(axis=(0, 1))
    assert np.corrcoef(col_in, ramp[0])[0, 1] > 0.9
    assert np.std(col_out) < 0.25 * np.std(col_in)


def test_restretch_maps_to_the_input_range(tmp_path) -> None:
    image, _ = _shaded_rgb()
    src = write_tif(tmp_path / "in.tif", image)
    s = retinex(src, tmp_path / "out.tif", sigma=10)
    out = read(tmp_path / "out.tif")
    for b in range(3):
        assert out[b].min() == image[b].min() and out[b].max() == image[b].max()
        assert s["stretch"][b]["min"] == image[b].min()


def test_multiscale_option_per_band(tmp_path) -> None:
    image, _ = _shaded_rgb((80, 90))
    valid = np.ones(image.shape[1:], bool)
    single = retinex_array(image, valid, sigma=5)
    multi = retinex_array(image, valid, multiscale=[3, 10])
    assert not np.allclose(single, multi)
    src = write_tif(tmp_path / "in.tif", image)
    s = retinex(src, tmp_path / "ms.tif", multiscale="3,10", block=64)
    assert s["multiscale"] and s["margin_px"] == 30


def test_nodata_stays_nodata_and_an_all_nodata_window_is_fine(tmp_path) -> None:
    image, _ = _shaded_rgb((130, 140))
    image = np.maximum(image, 1)
    image[:, :64, :64] = 0  # one whole 64 x 64 window is nodata
    src = write_tif(tmp_path / "in.tif", image, nodata=0)
    retinex(src, tmp_path / "out.tif", sigma=5, block=64)
    out = read(tmp_path / "out.tif")
    assert (out[:, :64, :64] == 0).all()
    assert (out[:, 64:, 64:] > 0).all()


def test_cli_runs_and_bad_sigma_is_one_error_line(tmp_path, capsys) -> None:
    image, _ = _shaded_rgb((60, 70))
    src = write_tif(tmp_path / "in.tif", image)
    out = tmp_path / "out.tif"
    code, stdout, err = run_cli(["prep", "retinex", src, "--sigma", "8", "--out", out], capsys)
    assert code == 0, err
    assert "single-scale Retinex" in stdout and out.exists()
    bad = tmp_path / "bad.tif"
    code, _, err = run_cli(["prep", "retinex", src, "--sigma", "500", "--out", bad], capsys)
    assert_one_error(code, err, "--sigma", "larger than the raster")
    assert not bad.exists()
    code, _, err = run_cli(["prep", "retinex", src, "--rgb", "1,2,7", "--out", bad], capsys)
    assert_one_error(code, err, "--rgb", "band 7 does not exist")
    assert not bad.exists()
    with pytest.raises(OptionError, match="multiscale"):
        retinex(src, bad, multiscale=[5, 900])
