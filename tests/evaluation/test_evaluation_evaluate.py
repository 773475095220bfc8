"""Evaluating class rasters and attribute tables end to end."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from evaluation_data import COLOURS, truth_array
from shapely.geometry import box

import landforge.taxonomy
from landforge.errors import InputError
from landforge.evaluation.change_rasters import evaluate_change_rasters
from landforge.evaluation.evaluate import evaluate_rasters, evaluate_tables
from landforge.io.raster import RasterGrid, write_cog


def test_perfect_prediction_scores_one_and_ignores_truth_nodata(class_rasters, tmp_path) -> None:
    pred, truth = class_rasters
    out = tmp_path / "metrics" / "m.json"
    m = evaluate_rasters(pred, truth, block=16, out=out, quiet=True)
    assert m["overall_accuracy"] == 1.0 and m["kappa"] == 1.0 and m["miou"] == 1.0
    assert m["classes"] == ["1", "2", "3"]  # 0 is the truth's nodata, never a class
    assert m["n"] == 48 * 36  # the 4 nodata rows are left out
    assert m["n_ignored"] == 48 * 4
    saved = json.loads(out.read_text())
    assert saved["kind"] == "landforge-metrics/1"
    assert saved["confusion_matrix"] == m["confusion_matrix"]
    assert saved["colors"]["2"] == list(COLOURS[2])


def test_block_size_does_not_change_the_matrix(class_rasters) -> None:
    pred, truth = class_rasters
    a = evaluate_rasters(pred, truth, block=7, quiet=True)
    b = evaluate_rasters(pred, truth, block=4096, quiet=True)
    assert a["confusion_matrix"] == b["confusion_matrix"]


def test_prediction_nodata_is_left_out_and_counted(tmp_path: Path, grid) -> None:
    truth = truth_array(grid)
    pred = truth.copy()
    pred[10:12] = 255  # holes in the prediction
    pred[20, :] = 1  # some errors
    t = write_cog(tmp_path / "t.tif", truth, grid, nodata=0)
    p = write_cog(tmp_path / "p.tif", pred, grid, nodata=255)
    m = evaluate_rasters(p, t, quiet=True)
    assert m["n_unpredicted"] == 2 * 48
    assert m["n"] == 48 * 34
    errors = int((truth[20] != 1).sum())
    assert m["overall_accuracy"] == pytest.approx(1 - errors / m["n"], abs=1e-12)
    assert m["nodata"] == {"truth": 0, "prediction": 255}


def test_misaligned_grid_is_an_input_error_naming_the_file(tmp_path: Path, grid) -> None:
    truth = truth_array(grid)
    t = write_cog(tmp_path / "t.tif", truth, grid, nodata=0)
    shifted = RasterGrid(
        grid.crs, grid.transform @ Affine.translation(3, 0), grid.width, grid.height
    )
    p = write_cog(tmp_path / "shifted.tif", truth, shifted, nodata=0)
    with pytest.raises(InputError) as err:
        evaluate_rasters(p, t, quiet=True)
    assert err.value.source == str(p) and "misaligned" in err.value.problem


def test_missing_prediction_is_an_input_error(class_rasters, tmp_path: Path) -> None:
    _pred, truth = class_rasters
    with pytest.raises(InputError) as err:
        evaluate_rasters(tmp_path / "nope.tif", truth, out=tmp_path / "m.json", quiet=True)
    assert err.value.source == str(tmp_path / "nope.tif")
    assert not (tmp_path / "m.json").exists()


def test_explicit_classes_name_the_values_and_reject_others(class_rasters) -> None:
    pred, truth = class_rasters
    m = evaluate_rasters(pred, truth, classes={1: "R", 2: "B", 3: "M", 4: "E"}, quiet=True)
    assert m["classes"] == ["R", "B", "M", "E"]
    assert (
        m["per_class"]["E"]["support"] == 0
        and m["per_class"]["E"]["iou"] != m["per_class"]["E"]["iou"]
    )
    assert m["miou"] == 1.0 and m["miou_all"] == pytest.approx(0.75)
    with pytest.raises(InputError) as err:
        evaluate_rasters(pred, truth, classes={1: "R", 2: "B"}, quiet=True)
    assert err.value.source == str(truth) and "3" in err.value.problem


def test_taxonomy_name_is_loaded_lazily(class_rasters, monkeypatch) -> None:
    system = SimpleNamespace(
        label_values=lambda: {0: "nodata", 1: "residential", 2: "commercial", 3: "industrial"},
        colormap=lambda: {1: (255, 0, 0), 2: (0, 0, 255), 3: (90, 90, 90)},
        nodata_value=0,
    )
    monkeypatch.setattr(landforge.taxonomy, "load_classes", lambda name: system, raising=False)
    pred, truth = class_rasters
    m = evaluate_rasters(pred, truth, taxonomy="rci", quiet=True)
    assert m["classes"] == ["residential", "commercial", "industrial"]
    assert m["taxonomy"] == "rci" and m["ignore"] == [0]
    assert m["colors"]["industrial"] == [90, 90, 90]


# ---- tables ---------------------------------------------------------------------------


def _parcels(n: int = 30, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    use = rng.choice(["residential", "commercial", "industrial"], n)
    return gpd.GeoDataFrame(
        {"parcel_id": np.arange(n) + 100, "use": use, "code": rng.integers(1, 4, n)},
        geometry=[box(i, 0, i + 1, 1) for i in range(n)],
        crs="EPSG:32650",
    )


def test_tables_joined_on_key_after_shuffling(tmp_path: Path) -> None:
    truth = _parcels()
    pred = truth.sample(frac=1.0, random_state=3).rename(columns={"use": "pred_use"})
    pred.loc[pred.index[:5], "pred_use"] = "industrial"
    truth.to_parquet(tmp_path / "truth.parquet")
    pred.drop(columns="geometry").pipe(pd.DataFrame).to_csv(tmp_path / "pred.csv", index=False)
    m = evaluate_tables(
        tmp_path / "pred.csv", tmp_path / "truth.parquet", "pred_use", "use", key="parcel_id"
    )
    joined = truth.merge(pd.DataFrame(pred.drop(columns="geometry")), on="parcel_id")
    expected = (joined["use"] == joined["pred_use"]).mean()
    assert m["overall_accuracy"] == pytest.approx(expected, abs=1e-12)
    assert m["classes"] == ["commercial", "industrial", "residential"]
    assert m["match"] == "key parcel_id" and m["n"] == 30


def test_tables_joined_on_geometry_and_same_file_row_order(tmp_path: Path) -> None:
    truth = _parcels()
    pred = truth.iloc[::-1].copy()
    pred["pred_code"] = pred["code"]
    pred.loc[pred.index[0], "pred_code"] = 3 if pred["code"].iloc[0] != 3 else 1
    truth.to_file(tmp_path / "truth.gpkg")
    pred.to_parquet(tmp_path / "pred.parquet")
    m = evaluate_tables(tmp_path / "pred.parquet", tmp_path / "truth.gpkg", "pred_code", "code")
    assert m["match"] == "geometry"
    assert m["overall_accuracy"] == pytest.approx(29 / 30, abs=1e-12)
    same = evaluate_tables(
        tmp_path / "pred.parquet", tmp_path / "pred.parquet", "pred_code", "code"
    )
    assert same["match"] == "row order" and same["overall_accuracy"] == pytest.approx(29 / 30)


def test_table_errors_name_the_file(tmp_path: Path) -> None:
    truth = _parcels()
    truth.to_parquet(tmp_path / "truth.parquet")
    truth.iloc[:10].to_parquet(tmp_path / "short.parquet")
    with pytest.raises(InputError, match="column 'nope' not found"):
        evaluate_tables(tmp_path / "truth.parquet", tmp_path / "truth.parquet", "nope", "use")
    pd.DataFrame({"use": ["residential"] * 3}).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(InputError) as err:
        evaluate_tables(tmp_path / "a.csv", tmp_path / "truth.parquet", "use", "use")
    assert err.value.source == str(tmp_path / "a.csv") and "key column" in err.value.problem
    with pytest.raises(InputError, match="does not exist"):
        evaluate_tables(tmp_path / "missing.csv", tmp_path / "truth.parquet", "use", "use")


def test_change_rasters_follow_the_second_protocol(tmp_path: Path, grid) -> None:
    t1 = truth_array(grid)
    t2 = t1.copy()
    t2[30:, :10] = 3  # residential -> industrial in one corner
    paths = {}
    for name, arr in {"t1": t1, "t2": t2, "p1": t1, "p2": t2}.items():
        paths[name] = write_cog(tmp_path / f"{name}.tif", arr, grid, nodata=0)
    m = evaluate_change_rasters(
        paths["p1"], paths["p2"], paths["t1"], paths["t2"], block=16, quiet=True
    )
    assert m["second"]["score"] == pytest.approx(1.0)
    assert list(m["transitions"]) == ["1->3"]
    missed = evaluate_change_rasters(paths["p1"], paths["p1"], paths["t1"], paths["t2"], quiet=True)
    assert missed["binary"]["change_iou"] == 0.0 and missed["second"]["sek"] == 0.0
