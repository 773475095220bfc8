"""Change chips and the series path: contents, footprints, splits, cloud, bad input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rasterio.vrt import WarpedVRT

from landforge.change.chips import IGNORE, build_change_chips, change_label, load_chip, save_chip
from landforge.change.dataset import ChangeChipDataset, plot
from landforge.change.options import pick_time_steps
from landforge.change.series import S2_CHANNELS, open_series, parse_date
from landforge.cli import main
from landforge.errors import InputError
from landforge.io.raster import RasterGrid, write_cog

from .conftest import CRS_, X0, Y0, make_scene


@given(
    arrays(np.uint8, (6, 7), elements=st.integers(0, 4)),
    arrays(np.uint8, (6, 7), elements=st.integers(0, 4)),
)
def test_change_label_rule(y1: np.ndarray, y2: np.ndarray) -> None:
    yc = change_label(y1, y2)
    one_zero = (y1 == 0) != (y2 == 0)
    assert (yc[one_zero] == IGNORE).all()
    assert (yc[~one_zero] == (y1 != y2)[~one_zero]).all()
    assert (yc[(y1 == 0) & (y2 == 0)] == 0).all()


@given(st.integers(1, 40), st.integers(0, 45))
def test_pick_time_steps(n: int, steps: int) -> None:
    idx = pick_time_steps(n, steps)
    assert idx == sorted(set(idx)) and all(0 <= i < n for i in idx)
    assert len(idx) == min(n, steps)
    if 2 <= steps <= n:
        assert idx[0] == 0 and idx[-1] == n - 1
    assert pick_time_steps(25, 9) == [0, 3, 6, 9, 12, 15, 18, 21, 24]


def test_parse_date() -> None:
    assert parse_date("S2_20230514_T50") == dt.date(2023, 5, 14)
    assert parse_date("2023-05") == dt.date(2023, 5, 1)
    assert parse_date("scene_final") is None


def test_chip_contents(scene: dict[str, Any], chips: Path) -> None:
    meta = json.loads((chips / "chips.json").read_text())
    assert meta["series_channels"] == [*S2_CHANNELS, "VV", "VH"]  # FUSU's order
    assert meta["chips"] == 16 and meta["dropped_cloud_frames"] == 16  # month 2 in every chip
    index = gpd.read_parquet(chips / "index.parquet")
    fps = gpd.read_parquet(chips / "footprints.parquet")
    assert set(index["split"]) == {"train", "val", "test"}
    row = index.iloc[0]
    a = load_chip(chips / row["chip"])
    assert a["t1"].shape == (4, 16, 16) and a["y1"].dtype == np.uint8
    # footprint: 5 x 64 m = 320 m = 32 px at 10 m, centred on the patch
    assert a["series"].shape == (4, 14, 32, 32)
    # month 2: Sentinel-2 all cloud, dropped; its Sentinel-1 frame stays (mask True)
    assert a["mask"].all() and a["days"].tolist() == [0, 31, 59, 90]
    assert not a["series"][1, :12].any() and a["series"][1, 12:].any()
    fp = fps.set_index("chip").loc[row["chip"], "geometry"]
    assert fp.area == pytest.approx(25 * row["geometry"].area)
    assert fp.centroid.distance(row["geometry"].centroid) < 1e-6
    r, c = int(row["row"]), int(row["col"])
    assert (a["y1"] == scene["y1"][r : r + 16, c : c + 16]).all()
    assert (a["yc"] == change_label(a["y1"], a["y2"])).all()
    # the series read equals GDAL's nearest-neighbour warp of the footprint
    with rasterio.open(Path(scene["series"]) / "s2" / "2023-01.tif") as src:
        b = fp.bounds
        tf = rasterio.transform.from_bounds(*b, 32, 32)
        with WarpedVRT(src, crs=src.crs, transform=tf, width=32, height=32) as vrt:
            ref = vrt.read(list(range(1, 13)))
    assert np.array_equal(a["series"][0, :12], ref.astype(np.float32))


def test_split_is_blocked(scene: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "c"
    build_change_chips(
        scene["t1"],
        scene["t2"],
        scene["label1"],
        scene["label2"],
        out,
        size=16,
        stride=8,
        taxonomy="mslu",
        split_block=2,
    )
    index = gpd.read_parquet(out / "index.parquet")
    block = (index["row"] // 16).astype(str) + "_" + (index["col"] // 16).astype(str)
    assert index.groupby(block)["split"].nunique().max() == 1
    assert "series" not in load_chip(out / index.iloc[0]["chip"])


def test_changed_only_and_safetensors(scene: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "c"
    s = build_change_chips(
        scene["t1"],
        scene["t2"],
        scene["label1"],
        scene["label2"],
        out,
        scene["series"],
        size=16,
        taxonomy="mslu",
        changed_only=True,
        format="safetensors",
    )
    assert 0 < s["chips"] < 16 and s["skipped"]["unchanged"] == 16 - s["chips"]
    index = gpd.read_parquet(out / "index.parquet")
    assert (index["changed_pixels"] > 0).all()
    a = load_chip(out / index.iloc[0]["chip"])
    assert a["mask"].dtype == bool and a["series"].shape == (4, 14, 32, 32)


def test_loader_and_plot(chips: Path, tmp_path: Path) -> None:
    ds = ChangeChipDataset(chips, "train", time_steps=3, s1=False)
    item = ds[0]
    assert item["series"].shape == (3, 12, 32, 32) and item["days"].tolist() == [0, 59, 90]
    assert item["img1"].dtype.is_floating_point and ds.series_channels == 12
    assert ChangeChipDataset(chips, None, time_steps=0)[0].keys() == {
        "img1",
        "img2",
        "y1",
        "y2",
        "yc",
    }
    raw = load_chip(chips / ds.chips[0])
    plot(raw, ds.meta, tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_series_stack_and_plain_folder(tmp_path: Path) -> None:
    grid = RasterGrid.from_bounds(X0 - 200, Y0 - 200, X0 + 500, Y0 + 500, 10.0, CRS_)
    data = np.stack([np.full(grid.shape, v, np.float32) for v in (0.2, 1.0, 0.4, 0.0, 0.6, 0.0)])
    desc = [
        "2023-03-02 ndvi",
        "2023-03-02 cloud",
        "2023-04-01 ndvi",
        "2023-04-01 cloud",
        "2023-05-09 ndvi",
        "2023-05-09 cloud",
    ]
    write_cog(tmp_path / "stack.tif", data, grid, band_descriptions=desc)
    with open_series(tmp_path / "stack.tif") as s:
        assert s.channels == ["ndvi"] and len(s.dates) == 3
        cut = s.read((X0, Y0, X0 + 100, Y0 + 100), CRS_, 10.0)
        assert cut.mask.tolist() == [False, True, True] and cut.dropped == 1
        assert cut.days.tolist() == [0, 30, 68] and cut.coverage == 1.0
        assert cut.data[2, 0].mean() == pytest.approx(0.6)
    plain = tmp_path / "plain"
    for d in ("2023-01-03", "2023-02-07"):
        write_cog(plain / f"ndvi_{d}.tif", data[:1], grid, band_descriptions=["ndvi"])
    with open_series(plain) as s:
        assert s.channels == ["ndvi"] and [d.isoformat() for d in s.dates] == [
            "2023-01-03",
            "2023-02-07",
        ]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def test_bad_input(
    scene: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [
        "change",
        "chips",
        "--t1",
        scene["t1"],
        "--label1",
        scene["label1"],
        "--label2",
        scene["label2"],
        "--size",
        "16",
        "--taxonomy",
        "mslu",
    ]
    out = tmp_path / "out"
    # T2 on another grid: one line naming both grids
    other = tmp_path / "t2_shifted.tif"
    with rasterio.open(scene["t2"]) as src:
        g = RasterGrid.from_bounds(X0 + 8, Y0, X0 + 8 + 256, Y0 + 256, 4.0, CRS_)
        write_cog(other, src.read(), g)
    code, err = _run([*base, "--t2", str(other), "--out", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {other}")
    assert "grid of T1" in err and "400008.0" in err and "400000.0" in err
    assert not out.exists()
    # labels outside the taxonomy
    bad = tmp_path / "bad_label.tif"
    write_cog(bad, np.full((64, 64), 9, np.uint8), scene["grid"])
    code, err = _run(
        [
            "change",
            "chips",
            "--t1",
            scene["t1"],
            "--t2",
            scene["t2"],
            "--label1",
            str(bad),
            "--label2",
            scene["label2"],
            "--size",
            "16",
            "--taxonomy",
            "mslu",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 2 and "outside taxonomy mslu (0..7)" in err and err.count("\n") == 1
    assert not out.exists()
    # a series that does not cover the 5x footprint
    small = make_scene(tmp_path / "small", series_margin=0.0, months=2)
    code, err = _run(
        [*base, "--t2", scene["t2"], "--series", small["series"], "--out", str(out)], capsys
    )
    assert code == 2 and "no patch left" in err and "uncovered" in err and not out.exists()
    # too few dates, unparseable date
    code, err = _run(
        [
            *base,
            "--t2",
            scene["t2"],
            "--series",
            scene["series"],
            "--min-dates",
            "12",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 2 and "4 date(s), fewer than the 12 needed" in err and not out.exists()
    nodate = tmp_path / "nodate"
    write_cog(
        nodate / "scene_a.tif",
        np.zeros((1, 40, 40), np.float32),
        RasterGrid.from_bounds(X0 - 200, Y0 - 200, X0 + 200, Y0 + 200, 10.0, CRS_),
    )
    code, err = _run(
        [*base, "--t2", scene["t2"], "--series", str(nodate), "--out", str(out)], capsys
    )
    assert code == 2 and "scene_a.tif: no date" in err and not out.exists()


def test_save_load_never_pickles(tmp_path: Path) -> None:
    p = tmp_path / "x.npz"
    save_chip(p, {"a": np.arange(3)})
    assert load_chip(p)["a"].tolist() == [0, 1, 2]
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        load_chip(tmp_path / "obj.npz")
    with pytest.raises(InputError):
        open_series(tmp_path / "missing")
