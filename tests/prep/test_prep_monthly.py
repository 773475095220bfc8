"""`landforge prep monthly`: per-month means of clear observations with a count band."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from prep_helpers import assert_one_error, read, run_cli, write_tif

from landforge.prep.monthly import monthly_composites, scene_date


def _s2_folder(tmp_path):
    """Four 2-band 20 m scenes with a cloud band: two in May, one in June (all cloud), one in July."""
    d = tmp_path / "scenes"
    d.mkdir()
    shape = (6, 8)
    cloud = np.zeros(shape, np.uint16)
    cloud[:, :4] = 1  # left half cloudy in the first May scene
    scenes = {
        "S2_20200503.tif": (100, cloud),
        "S2_2020-05-20.tif": (300, np.zeros(shape, np.uint16)),
        "S2_20200611.tif": (500, np.ones(shape, np.uint16)),
        "S2_20200702.tif": (700, np.zeros(shape, np.uint16)),
    }
    for name, (value, cl) in scenes.items():
        bands = np.stack(
            [np.full(shape, value, np.uint16), np.full(shape, value + 1, np.uint16), cl]
        )
        write_tif(d / name, bands, res=20.0, descriptions=["B04", "B08", "cloud"])
    return d


def test_month_means_counts_and_all_cloud_month(tmp_path) -> None:
    d = _s2_folder(tmp_path)
    s = monthly_composites(d, tmp_path / "out")
    assert s["months"] == ["2020-05", "2020-06", "2020-07"]
    assert s["months_without_clear"] == ["2020-06"]
    may = read(tmp_path / "out" / "2020-05.tif")
    assert may.shape == (3, 12, 16)  # 20 m -> 10 m by nearest; bands + count
    assert np.allclose(may[0][:, :8], 300) and np.allclose(may[0][:, 8:], 200)
    assert np.allclose(may[1][:, 8:], 201)
    assert (may[2][:, :8] == 1).all() and (may[2][:, 8:] == 2).all()
    june = read(tmp_path / "out" / "2020-06.tif")
    assert np.isnan(june[0]).all() and (june[2] == 0).all()
    with rasterio.open(tmp_path / "out" / "2020-05.tif") as src:
        assert src.descriptions == ("B04", "B08", "count") and src.res == (10.0, 10.0)


def test_stack_with_dates_as_band_descriptions(tmp_path, capsys) -> None:
    d = _s2_folder(tmp_path)
    out = tmp_path / "stack.tif"
    code, stdout, err = run_cli(
        ["prep", "monthly", d, "--stack", "--bands", "1", "--out", out], capsys
    )
    assert code == 0, err
    assert "1 months without a clear observation" in stdout
    with rasterio.open(out) as src:
        assert src.descriptions == ("2020-05", "2020-06", "2020-07")
    with rasterio.open(tmp_path / "stack.count.tif") as src:
        assert src.read(3).min() == 1 and src.read(2).max() == 0
    # the series loader of the change stages reads the stack's dates
    from landforge.change.series import open_series

    series = open_series(out)
    assert [str(d) for d in series.dates] == ["2020-05-01", "2020-06-01", "2020-07-01"]
    series.close()


def test_s1_means_in_linear_power(tmp_path) -> None:
    d = tmp_path / "s1"
    d.mkdir()
    for day, db in (("01", -10.0), ("15", -20.0)):
        arr = np.full((2, 4, 4), db, np.float32)
        write_tif(d / f"S1_2021-03-{day}.tif", arr, descriptions=["VV", "VH"], tags={"units": "dB"})
    monthly_composites(d, tmp_path / "lin", sensor="s1")
    lin = read(tmp_path / "lin" / "2021-03.tif")
    assert np.allclose(lin[0], (0.1 + 0.01) / 2)
    monthly_composites(d, tmp_path / "db", sensor="s1", db=True)
    assert np.allclose(read(tmp_path / "db" / "2021-03.tif")[0], 10 * np.log10(0.055), atol=1e-4)


def test_scene_dates_from_names_and_tags() -> None:
    assert str(scene_date("T33_20170216T101021_B04.tif")) == "2017-02-16"
    assert str(scene_date("2021-07.tif")) == "2021-07-01"
    assert str(scene_date("x.tif", {"TIFFTAG_DATETIME": "2019:04:02 10:00:00"})) == "2019-04-02"
    assert scene_date("scene_a.tif", {}) is None


def test_bad_input_one_error_line_no_output(tmp_path, capsys) -> None:
    d = _s2_folder(tmp_path)
    write_tif(d / "undated.tif", np.zeros((3, 6, 8), np.uint16))
    out = tmp_path / "out"
    code, _, err = run_cli(["prep", "monthly", d, "--out", out], capsys)
    assert_one_error(code, err, "undated.tif", "no date")
    assert not out.exists()
    (d / "undated.tif").unlink()
    masks = tmp_path / "masks"
    masks.mkdir()
    for p in d.iterdir():
        write_tif(masks / p.name, np.zeros((6, 8), np.uint8), res=20.0)
    write_tif(masks / "S2_20200702.tif", np.zeros((3, 4), np.uint8), res=40.0)
    code, _, err = run_cli(["prep", "monthly", d, "--masks", masks, "--out", out], capsys)
    assert_one_error(code, err, "S2_20200702.tif", "differs")
    assert not out.exists()
    code, _, err = run_cli(["prep", "monthly", d, "--bands", "9", "--out", out], capsys)
    assert_one_error(code, err, "--bands", "band 9 does not exist")
    assert not out.exists()


def test_synthetic_city_sentinel_stacks(tmp_path) -> None:
    from landforge.synth import make_city

    info = make_city(
        tmp_path / "city",
        seed=2,
        size_m=300.0,
        gsd=2.0,
        months=3,
        t2=False,
        population=False,
        quiet=True,
    )
    s2 = monthly_composites(info.out_dir / "s2", tmp_path / "s2m")
    assert s2["bands"][:2] == ["B01", "B02"] and len(s2["bands"]) == 12  # cloud band left out
    assert len(s2["months"]) == 3
    s1 = monthly_composites(info.out_dir / "s1", tmp_path / "s1m", sensor="s1")
    vv = read(tmp_path / "s1m" / f"{s1['months'][0]}.tif")[0]
    assert 0 < np.nanmedian(vv) < 1  # linear power, converted from the dB input


@pytest.mark.realdata
def test_slovenia_ndvi_series_with_its_cloud_masks(shared_data, tmp_path) -> None:
    src = shared_data / "slovenia_s2" / "derived_geotiff"
    ndvi, clm = src / "NDVI_68dates.tif", src / "CLM_cloudmask_68dates.tif"
    scenes, masks = tmp_path / "ndvi", tmp_path / "clm"
    scenes.mkdir()
    masks.mkdir()
    with rasterio.open(ndvi) as a, rasterio.open(clm) as m:
        dates = a.descriptions[:12]
        profile = {**a.profile, "count": 1}
        expected: dict[str, list[float]] = {}
        for i, date in enumerate(dates, start=1):
            name = date.replace(":", "") + ".tif"
            with rasterio.open(scenes / name, "w", **profile) as dst:
                dst.write(a.read(i), 1)
            with rasterio.open(masks / name, "w", **{**m.profile, "count": 1}) as dst:
                dst.write(m.read(i), 1)
            clear = m.read(i) == 0
            expected.setdefault(date[:7], []).append(float(clear.sum()))
    s = monthly_composites(scenes, tmp_path / "stack.tif", masks=str(masks), stack=True)
    assert s["months"] == sorted(expected)
    counts = read(tmp_path / "stack.count.tif")
    for k, month in enumerate(s["months"]):
        # the 10 m output grid of the ~9.995 m input: counts agree to a row/column
        assert abs(counts[k].sum() - sum(expected[month])) <= 0.03 * 100 * 101 * len(
            expected[month]
        )
    json.dumps(s)


def _band_files(d, date: str, value: int, masks=None) -> None:
    """One Sentinel-2 scene as SAFE-style band files: B02 at 10 m, B05 at 20 m, B01 at 60 m."""
    d.mkdir(exist_ok=True)
    for band, res, v in (("B02", 10.0, value), ("B05", 20.0, value + 1), ("B01", 60.0, value + 2)):
        n = int(120 / res)
        arr = np.arange(n * n, dtype=np.uint16).reshape(n, n) + v
        write_tif(d / f"T33UUU_{date}T102101_{band}.tif", arr, res=res)
    write_tif(d / f"T33UUU_{date}T102101_B10.tif", np.zeros((2, 2), np.uint16), res=60.0)


def test_band_files_are_one_scene_stacked_in_fusu_order_on_the_finest_grid(tmp_path) -> None:
    d = tmp_path / "IMG_DATA"
    _band_files(d, "20200503", 100)
    _band_files(d, "20200525", 300)
    s = monthly_composites(d, tmp_path / "out")
    assert s["scenes"] == 2 and s["months"] == ["2020-05"]
    assert s["bands"] == ["B01", "B02", "B05"]  # FUSU order; B10 (cirrus) left out
    may = read(tmp_path / "out" / "2020-05.tif")
    assert may.shape == (4, 12, 12)  # 10 m grid of B02
    b02 = np.arange(144).reshape(12, 12) + 200  # mean of 100 and 300
    b05 = np.arange(36).reshape(6, 6) + 201
    assert np.allclose(may[1], b02)
    assert np.allclose(may[2], np.kron(b05, np.ones((2, 2))))  # nearest from 20 m
    assert np.allclose(may[0], np.kron(np.arange(4).reshape(2, 2) + 202, np.ones((6, 6))))
    assert (may[3] == 2).all()


def test_band_files_take_their_mask_by_prefix_and_need_one_extent(tmp_path, capsys) -> None:
    d = tmp_path / "IMG_DATA"
    _band_files(d, "20200503", 100)
    masks = tmp_path / "masks"
    masks.mkdir()
    cloud = np.zeros((12, 12), np.uint8)
    cloud[:, :6] = 1
    write_tif(masks / "T33UUU_20200503T102101.tif", cloud, res=10.0)
    s = monthly_composites(d, tmp_path / "out", masks=str(masks))
    count = read(tmp_path / "out" / "2020-05.tif")[-1]
    assert (count[:, :6] == 0).all() and (count[:, 6:] == 1).all()
    assert s["mean_clear_per_pixel"] == {"2020-05": 0.5}
    # a band file on another extent: one error naming it, nothing written
    write_tif(d / "T33UUU_20200503T102101_B05.tif", np.zeros((5, 5), np.uint16), res=20.0)
    code, _, err = run_cli(["prep", "monthly", d, "--out", tmp_path / "bad"], capsys)
    assert_one_error(code, err, "B05.tif", "extent")
    assert not (tmp_path / "bad").exists()


@pytest.mark.realdata
def test_brandenburg_l1c_band_files(shared_data, tmp_path) -> None:
    img = shared_data / "brandenburg_s2" / "IMG_DATA"
    s = monthly_composites(img, tmp_path / "out")
    assert s["months"] == ["2017-02"] and s["scenes"] == 1
    assert s["bands"][8] == "B8A" and len(s["bands"]) == 12
    out = read(tmp_path / "out" / "2017-02.tif")
    assert out.shape == (13, 768, 1536)  # the 10 m grid of the 15.4 x 7.7 km subset
    with rasterio.open(img / "T33UUU_20170216T102101_B05.jp2") as src:
        b05 = src.read(1)
    assert np.array_equal(out[4][::2, ::2], b05)  # 20 m band repeated by nearest
