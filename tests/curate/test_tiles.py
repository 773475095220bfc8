"""Patches of a frame with label and LBP histograms, written as GeoParquet."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.feature import local_binary_pattern

from landforge.cli import main
from landforge.curate.tiles import (
    describe_frame,
    label_bins,
    label_histogram,
    lbp_histogram,
    patch_windows,
    read_tiles,
    tile_frames,
)
from landforge.errors import InputError, OptionError

pytestmark = pytest.mark.filterwarnings("ignore:Applying `local_binary_pattern`:UserWarning")


def test_lbp_histogram_equals_skimage_directly():
    rng = np.random.default_rng(3)
    gray = rng.normal(100, 20, (70, 70))
    inner = (slice(5, 65), slice(5, 65))
    ours = lbp_histogram(gray, points=20, radius=3.0, inner=inner)
    codes = local_binary_pattern(gray, 20, 3.0, method="uniform")[inner]
    ref = np.bincount(codes.astype(int).ravel(), minlength=22) / codes.size
    assert ours.shape == (22,)  # P = 20 -> the paper's 22 bins
    assert np.allclose(ours, ref)
    # rotation invariance of the uniform codes: a 90-degree turn keeps the histogram
    turned = lbp_histogram(np.rot90(gray), points=8, radius=1.0, inner=inner)
    assert np.allclose(turned, lbp_histogram(gray, points=8, radius=1.0, inner=inner), atol=0.02)


@given(
    h=st.integers(1, 300), w=st.integers(1, 300), size=st.integers(8, 64),
    frac=st.floats(0.25, 1.0), edge=st.sampled_from(["drop", "shift", "partial"]),
)  # fmt: skip
@settings(max_examples=60, deadline=None)
def test_patch_windows_stay_inside_and_cover(h, w, size, frac, edge):
    stride = max(1, int(size * frac))
    wins = patch_windows(h, w, size, stride, edge)
    cover = np.zeros((h, w), bool)
    for r, c, ph, pw in wins:
        assert r >= 0 and c >= 0 and r + ph <= h and c + pw <= w
        assert (ph, pw) == (size, size) or edge == "partial"
        cover[r : r + ph, c : c + pw] = True
    if edge == "partial" or (edge == "shift" and h >= size and w >= size):
        assert cover.all()  # nothing left out
    if edge == "drop" and (h < size or w < size):
        assert wins == []


def test_label_histogram_rolls_up_to_first_level():
    names, lut = label_bins("ubgg", 10)
    assert names == ["UBS", "UGS", "UIS"]
    labels = np.array([[1, 2, 3, 4], [5, 5, 0, 0]])  # water, tree, grass, farmland, impervious x2
    hist, labelled = label_histogram(labels, np.ones_like(labels, bool), lut, 3)
    assert np.allclose(hist, [1 / 6, 3 / 6, 2 / 6])
    assert labelled == pytest.approx(6 / 8)
    names, lut = label_bins(None, 10)
    assert names == [str(v) for v in range(1, 11)] and 0 not in lut


def test_frame_patches_features_and_geoparquet(frame, tmp_path):
    image, labels = frame
    out = tmp_path / "patches.parquet"
    table = tile_frames([image], out, [labels], size=32, bins=2)
    assert len(table) == 16
    back = read_tiles(out)
    assert back.attrs["landforge"]["tiles"]["size"] == 32
    assert isinstance(gpd.read_parquet(out), gpd.GeoDataFrame) and back.crs.to_epsg() == 32633
    left = back[back["col"] < 64]
    right = back[back["col"] >= 64]
    assert np.allclose(left["label_1"], 1.0) and np.allclose(right["label_2"], 1.0)
    top = back[back["row"] == 0]
    assert np.allclose(top["labelled_fraction"], 24 / 32)
    lbp = [c for c in back.columns if c.startswith("lbp_")]
    assert len(lbp) == 22 and np.allclose(back[lbp].sum(axis=1), 1.0)
    # the footprint of a patch is its window on the grid
    first = back.iloc[0]
    assert first.geometry.bounds == pytest.approx((400_000, 5_801_280 - 320, 400_320, 5_801_280))


def test_windowed_patch_equals_skimage_on_the_whole_frame(frame):
    """A patch's LBP (read with a margin) equals the whole frame's codes inside it."""
    import rasterio

    image, _ = frame
    table = describe_frame(image, size=32, lbp_points=8, lbp_radius=1.0)
    with rasterio.open(image) as src:
        gray = src.read().astype(float).mean(axis=0)
    codes = local_binary_pattern(gray, 8, 1.0, method="uniform")
    rec = table[(table["row"] == 32) & (table["col"] == 32)].iloc[0]
    patch = codes[32:64, 32:64]
    ref = np.bincount(patch.astype(int).ravel(), minlength=10) / patch.size
    assert np.allclose(rec[[f"lbp_{k:02d}" for k in range(10)]].to_numpy(float), ref)


def test_bad_band_is_one_error_line_and_no_output(frame, tmp_path, capsys):
    image, labels = frame
    out = tmp_path / "p.parquet"
    code = main(["curate", "tiles", "--image", str(image), "--bands", "1,7", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: --bands: band 7 does not exist")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(OptionError, match="label_band"):
        describe_frame(image, labels, size=32, label_band=2)


def test_labels_on_another_grid_and_too_small_frames(frame, tmp_path):
    from landforge.io.raster import RasterGrid, write_cog

    image, _ = frame
    other = tmp_path / "other.tif"
    grid = RasterGrid.from_bounds(0, 0, 640, 640, 10.0, "EPSG:32633")
    write_cog(other, np.ones((64, 64), np.uint8), grid)
    with pytest.raises(InputError, match="differs"):
        describe_frame(image, other, size=32)
    with pytest.raises(InputError, match="smaller than one"):
        describe_frame(other, size=128)
    assert len(describe_frame(other, size=128, edge="partial")) == 1
