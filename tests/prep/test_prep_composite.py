"""`landforge prep composite`: band order and a global p2-p98 stretch to uint8."""

from __future__ import annotations

import numpy as np
import rasterio
from prep_helpers import assert_one_error, read, run_cli, smooth_field, write_tif

from landforge.prep.composite import composite


def _four_bands(shape=(130, 150)) -> np.ndarray:
    return np.stack(
        [(smooth_field(shape, s, 3.0) * 1000 * (s + 1)).astype(np.uint16) for s in range(4)]
    )


def test_false_colour_order_and_percentile_stretch(tmp_path) -> None:
    img = _four_bands()
    src = write_tif(tmp_path / "in.tif", img, descriptions=["B02", "B03", "B04", "B08"])
    s = composite(src, tmp_path / "fc.tif", bands=[4, 3, 2])
    out = read(tmp_path / "fc.tif")
    assert out.dtype == np.uint8 and out.shape == (3, *img.shape[1:])
    for k, band in enumerate([4, 3, 2]):
        lo, hi = np.percentile(img[band - 1], [2, 98])
        assert s["limits"][k]["low"] == lo and s["limits"][k]["high"] == hi
        # about 2 % of pixels at each end are clipped to 1 and 255
        assert 0.01 < (out[k] == 255).mean() < 0.04
        assert 0.01 < (out[k] == 1).mean() < 0.04
        # monotone: brighter input, brighter output
        order = np.argsort(img[band - 1].ravel(), kind="stable")
        assert (np.diff(out[k].ravel()[order].astype(int)) >= 0).all()
    with rasterio.open(tmp_path / "fc.tif") as f:
        assert f.descriptions == ("B08", "B04", "B03") and f.nodata == 0


def test_stretch_is_global_not_per_window(tmp_path) -> None:
    img = _four_bands()
    src = write_tif(tmp_path / "in.tif", img)
    composite(src, tmp_path / "a.tif", bands=[1, 2, 3], block=64)
    composite(src, tmp_path / "b.tif", bands=[1, 2, 3], block=4096)
    assert np.array_equal(read(tmp_path / "a.tif"), read(tmp_path / "b.tif"))


def test_cli_and_a_band_that_does_not_exist(tmp_path, capsys) -> None:
    src = write_tif(tmp_path / "in.tif", _four_bands((40, 50)))
    out = tmp_path / "fc.tif"
    code, stdout, err = run_cli(
        ["prep", "composite", src, "--bands", "4,3,2", "--percentiles", "1,99", "--out", out],
        capsys,
    )
    assert code == 0, err and "uint8 composite" in stdout
    bad = tmp_path / "bad.tif"
    code, _, err = run_cli(["prep", "composite", src, "--bands", "5,3,2", "--out", bad], capsys)
    assert_one_error(code, err, "--bands", "band 5 does not exist")
    assert not bad.exists()
    code, _, err = run_cli(
        ["prep", "composite", src, "--percentiles", "98,2", "--out", bad], capsys
    )
    assert_one_error(code, err, "--percentiles")
