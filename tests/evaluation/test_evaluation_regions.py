"""Evaluating inside a mask or the blocks of one split (held-out evaluation)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from evaluation_data import truth_array
from shapely.geometry import Point, box

from landforge.cli import main
from landforge.errors import InputError
from landforge.evaluation.evaluate import evaluate_prediction, evaluate_rasters, evaluate_tables
from landforge.evaluation.report import build_report
from landforge.io.raster import write_cog

X0, Y0 = 500000, 3500000  # the tiny grid: 48 x 40 px of 1 m, top at Y0 + 40


@pytest.fixture
def halves(tmp_path: Path) -> Path:
    """Blocks: the left 24 columns are train, the right 24 test (plus an empty val)."""
    blocks = gpd.GeoDataFrame(
        {"split": ["train", "test"], "block_row": [0, 0], "block_col": [0, 1]},
        geometry=[box(X0, Y0, X0 + 24, Y0 + 40), box(X0 + 24, Y0, X0 + 48, Y0 + 40)],
        crs="EPSG:32650",
    )
    path = tmp_path / "split_blocks.gpkg"
    blocks.to_file(path)
    return path


@pytest.fixture
def wrong_on_train(tmp_path: Path, grid) -> tuple[Path, Path]:
    """(prediction, truth): perfect on the right (test) half, all 3 on the left half."""
    truth = truth_array(grid)
    pred = truth.copy()
    pred[:, :24] = 3
    t = write_cog(tmp_path / "truth.tif", truth, grid, nodata=0)
    p = write_cog(tmp_path / "pred.tif", pred, grid, nodata=255)
    return p, t


def test_only_the_test_blocks_count(wrong_on_train, halves, grid) -> None:
    pred, truth = wrong_on_train
    everywhere = evaluate_rasters(pred, truth, quiet=True)
    assert everywhere["overall_accuracy"] < 0.6 and "evaluated_on" not in everywhere
    m = evaluate_rasters(pred, truth, split_blocks=halves, quiet=True)
    assert m["overall_accuracy"] == 1.0 and m["kappa"] == 1.0
    assert m["n"] == 24 * 36  # right half, below the 4 nodata rows
    assert m["n_ignored"] == 24 * 4  # nodata inside the region only
    assert m["evaluated_on"] == {
        "split": "test",
        "split_blocks": str(halves),
        "blocks": 1,
        "pixels": 24 * 40,
    }
    # the majority baseline is computed on the same (test) pixels
    truth_right = truth_array(grid)[4:, 24:]
    values, counts = np.unique(truth_right, return_counts=True)
    assert m["baseline"]["overall_accuracy"] == pytest.approx(counts.max() / counts.sum())
    train = evaluate_rasters(pred, truth, split_blocks=halves, split="train", quiet=True)
    assert train["overall_accuracy"] < 0.5 and train["evaluated_on"]["split"] == "train"


def test_window_size_does_not_change_the_region(wrong_on_train, halves) -> None:
    pred, truth = wrong_on_train
    a = evaluate_rasters(pred, truth, split_blocks=halves, block=7, quiet=True)
    b = evaluate_rasters(pred, truth, split_blocks=halves, block=4096, quiet=True)
    assert a["confusion_matrix"] == b["confusion_matrix"]
    assert a["evaluated_on"] == b["evaluated_on"]


def test_blocks_in_another_crs_are_reprojected(wrong_on_train, halves, tmp_path) -> None:
    pred, truth = wrong_on_train
    lonlat = tmp_path / "blocks_4326.gpkg"
    gpd.read_file(halves).to_crs("EPSG:4326").to_file(lonlat)
    a = evaluate_rasters(pred, truth, split_blocks=halves, quiet=True)
    b = evaluate_rasters(pred, truth, split_blocks=lonlat, quiet=True)
    assert a["confusion_matrix"] == b["confusion_matrix"]


def test_mask_and_blocks_together(wrong_on_train, halves, tmp_path, grid) -> None:
    pred, truth = wrong_on_train
    mask = np.zeros(grid.shape, np.uint8)
    mask[20:, :] = 1  # the bottom half
    mask_path = write_cog(tmp_path / "mask.tif", mask, grid)
    m = evaluate_rasters(pred, truth, mask=mask_path, quiet=True)
    assert m["n"] == 48 * 20 and m["evaluated_on"] == {"mask": str(mask_path), "pixels": 48 * 20}
    both = evaluate_rasters(pred, truth, mask=mask_path, split_blocks=halves, quiet=True)
    assert both["n"] == 24 * 20 and both["overall_accuracy"] == 1.0
    assert both["evaluated_on"]["mask"] == str(mask_path)
    assert both["evaluated_on"]["split"] == "test"


def test_bad_regions_are_input_errors_naming_the_file(wrong_on_train, halves, tmp_path) -> None:
    pred, truth = wrong_on_train
    with pytest.raises(InputError, match=r"no block of split 'val' \(splits: test, train\)") as e:
        evaluate_rasters(pred, truth, split_blocks=halves, split="val", quiet=True)
    assert e.value.source == str(halves)
    nocol = tmp_path / "nocol.gpkg"
    gpd.read_file(halves).rename(columns={"split": "subset"}).to_file(nocol)
    with pytest.raises(InputError, match="no column 'split'") as e:
        evaluate_rasters(pred, truth, split_blocks=nocol, quiet=True)
    assert e.value.source == str(nocol)
    from landforge.io.raster import RasterGrid

    other = RasterGrid.from_bounds(X0, Y0, X0 + 40, Y0 + 40, 1.0, "EPSG:32650")
    small = write_cog(tmp_path / "small_mask.tif", np.ones((40, 40), np.uint8), other)
    with pytest.raises(InputError, match="small_mask.tif"):
        evaluate_rasters(pred, truth, mask=small, quiet=True)
    with pytest.raises(InputError, match="missing.gpkg"):
        evaluate_rasters(pred, truth, split_blocks=tmp_path / "missing.gpkg", quiet=True)


def _parcels(tmp_path: Path) -> tuple[Path, Path]:
    """Six parcels: three left (train), three right (test); wrong only on the left."""
    centres = [(X0 + 6, Y0 + 10), (X0 + 12, Y0 + 20), (X0 + 18, Y0 + 30)]
    centres += [(X0 + 30, Y0 + 10), (X0 + 36, Y0 + 20), (X0 + 42, Y0 + 30)]
    geoms = [Point(x, y).buffer(2) for x, y in centres]
    truth = gpd.GeoDataFrame(
        {"parcel_id": range(6), "use": ["res", "com", "ind", "res", "com", "res"]},
        geometry=geoms,
        crs="EPSG:32650",
    )
    pred = truth.copy()
    pred.loc[:2, "use"] = "ind"  # wrong on the train side (except the last)
    t, p = tmp_path / "truth.parquet", tmp_path / "pred.gpkg"
    truth.to_parquet(t)
    pred.to_file(p)
    return p, t


def test_table_rows_count_by_representative_point(halves, tmp_path) -> None:
    pred, truth = _parcels(tmp_path)
    m = evaluate_tables(pred, truth, "use", "use", key="parcel_id", split_blocks=halves)
    assert m["n"] == 3 and m["overall_accuracy"] == 1.0
    assert m["evaluated_on"] == {
        "split": "test",
        "split_blocks": str(halves),
        "blocks": 1,
        "rows": 3,
    }
    assert m["unmatched"] == {"truth": 0, "prediction": 0}
    # the majority baseline of the three test parcels: res, com, res
    assert m["baseline"]["overall_accuracy"] == pytest.approx(2 / 3)
    train = evaluate_tables(pred, truth, "use", "use", key="parcel_id", split_blocks=halves,
                            split="train")  # fmt: skip
    assert train["overall_accuracy"] == pytest.approx(1 / 3)


def test_a_table_without_geometry_follows_the_other_on_the_key(halves, tmp_path) -> None:
    pred, truth = _parcels(tmp_path)
    plain = tmp_path / "truth.csv"
    pd.DataFrame(gpd.read_parquet(truth).drop(columns="geometry")).to_csv(plain, index=False)
    m = evaluate_prediction(
        pred, plain, pred_col="use", truth_col="use", key="parcel_id", split_blocks=halves
    )
    assert m["n"] == 3 and m["overall_accuracy"] == 1.0
    neither = tmp_path / "pred.csv"
    pd.DataFrame(gpd.read_file(pred).drop(columns="geometry")).to_csv(neither, index=False)
    with pytest.raises(InputError, match="no geometry") as e:
        evaluate_tables(neither, plain, "use", "use", key="parcel_id", split_blocks=halves)
    assert e.value.source == str(plain)


def test_table_rows_on_a_mask(tmp_path, grid) -> None:
    pred, truth = _parcels(tmp_path)
    mask = np.zeros(grid.shape, np.uint8)
    mask[:, 24:] = 1  # the right half: rows 0..39 are y from Y0+40 down to Y0
    mask_path = write_cog(tmp_path / "mask.tif", mask, grid)
    m = evaluate_tables(pred, truth, "use", "use", key="parcel_id", mask=mask_path)
    assert m["n"] == 3 and m["overall_accuracy"] == 1.0
    assert m["evaluated_on"] == {"mask": str(mask_path), "rows": 3}


def test_cli_split_flags_and_labelled_output(wrong_on_train, halves, tmp_path, capsys) -> None:
    pred, truth = wrong_on_train
    out = tmp_path / "m.json"
    code = main(
        ["evaluate", "--pred", str(pred), "--truth", str(truth), "--split-blocks", str(halves)]
        + ["--split", "train", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Accuracy (train split)" in printed
    flat = "".join(printed.split())  # rich wraps the note anywhere in a long path
    assert re.search(r"evaluatedintrainsplit\(1blockof\S*split_blocks.gpkg\)", flat)
    assert json.loads(out.read_text())["evaluated_on"]["split"] == "train"


def test_report_puts_the_test_split_first_and_labels_train(
    wrong_on_train, halves, tmp_path
) -> None:
    pred, truth = wrong_on_train
    run = tmp_path / "run"
    run.mkdir()
    # "a_train.json" sorts before "b_test.json": the report still leads with the test split
    evaluate_rasters(pred, truth, split_blocks=halves, split="train", out=run / "a_train.json")
    evaluate_rasters(pred, truth, split_blocks=halves, out=run / "b_test.json")
    html = build_report(run).read_text()
    headline = html[
        html.index("<h2>Headline</h2>") : html.index("</section>", html.index("Headline"))
    ]
    assert headline.index("b_test.json") < headline.index("a_train.json")
    assert "test split (1 block of" in headline
    assert "train split (1 block of" in headline and "seen in training" in headline
    assert html.index("Metrics: <code>b_test.json</code> · test split") < html.index(
        "Metrics: <code>a_train.json</code> · train split (seen in training"
    )


def test_chip_store_blocks_hold_the_test_pixels(tmp_path) -> None:
    """The split blocks a chip store writes: the test region is exactly its test blocks."""
    from landforge.datasets.chips import build_chips, read_index
    from landforge.synth.toy import make_toy_scene

    scene = make_toy_scene(tmp_path / "scene", size=96, seed=4)
    store = build_chips(
        scene["image"],
        {"use": scene["use"]},
        tmp_path / "chips",
        size=16,
        split={"train": 0.6, "val": 0.2, "test": 0.2, "block_size": 2},
        seed=1,
    )
    index = read_index(store)
    n_test_chips = int((index["split"] == "test").sum())
    m = evaluate_rasters(
        scene["use"], scene["use"], split_blocks=store / "split_blocks.gpkg", quiet=True
    )
    assert m["evaluated_on"]["pixels"] == n_test_chips * 16 * 16  # blocks tile the raster
    assert m["evaluated_on"]["blocks"] == n_test_chips // 4
