"""`landforge grade`: a predictions file in, a level column, tables (JSON + CSV), the
correct/incorrect layer and a report section out; bad input is one `error:` line."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from quality_data import CLASSES, features_frame, parcels_frame, write_inputs

from landforge.cli import main
from landforge.quality import softprob_levels


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    return write_inputs(tmp_path)


def _outs(tmp_path: Path) -> list[str]:
    return ["--out", str(tmp_path / "g.parquet"), "--tables", str(tmp_path / "g.json")]


def test_grade_predictions_end_to_end(inputs, tmp_path, capsys) -> None:
    pred, _ = inputs
    code = main(["grade", "--predictions", str(pred), *_outs(tmp_path),
                 "--errors-out", str(tmp_path / "errors.gpkg")])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    src = gpd.read_parquet(pred)
    graded = gpd.read_parquet(tmp_path / "g.parquet")
    assert graded.crs == src.crs and len(graded) == len(src)
    # level 0: no label or no POIs; the rest: the soft-probability rule on prob_<class>
    lacks = src["label"].isna().to_numpy() | ~src["has_poi"].to_numpy()
    assert (graded["level"].to_numpy()[lacks] == 0).all()
    probs = src[[f"prob_{c}" for c in CLASSES]].to_numpy()
    expected = softprob_levels(probs[~lacks])
    assert graded["level"].to_numpy()[~lacks].tolist() == expected.tolist()
    tables = json.loads((tmp_path / "g.json").read_text())
    assert tables["kind"] == "landforge-tables/1" and tables["classes"] == list(CLASSES)
    by_class = {t["name"]: t for t in tables["tables"]}["levels_by_class"]["rows"]
    total = next(r for r in by_class if r["level"] == "total")
    assert total["total"] == len(src) and total["unlabelled"] == 1
    assert sum(r["total"] for r in by_class if r["level"] != "total") == len(src)
    csv = pd.read_csv(tmp_path / "g_levels_by_class.csv")
    assert csv["total"].iloc[-1] == len(src)
    # the given pred column is the held-out prediction: per-parcel correct/incorrect
    layer = gpd.read_file(tmp_path / "errors.gpkg", layer="parcels")
    labelled = src[src["label"].notna()]
    assert len(layer) == len(labelled)
    assert layer["correct"].astype(bool).sum() == (labelled["label"] == labelled["pred"]).sum()
    assert (tmp_path / "errors.png").is_file() and tables["images"] == ["errors.png"]
    # the report shows the tables and embeds the map
    from landforge.evaluation.report import build_report

    html = build_report(tmp_path).read_text()
    assert "Dataset quality levels (softprob)" in html and "Samples per level" in html


def test_grade_cascade_on_parcels_with_features(inputs, tmp_path, capsys) -> None:
    pred, feats = inputs
    plain = gpd.read_parquet(pred).drop(columns=["pred", *[f"prob_{c}" for c in CLASSES]])
    plain.to_parquet(tmp_path / "parcels.parquet")
    code = main(["grade", "--parcels", str(tmp_path / "parcels.parquet"), "--features",
                 str(feats), "--method", "cascade", "--tier-sizes", "0.2,0.5",
                 "--tier-models", "logistic,logistic,hgb",  # one text, or a repeated flag
                 "--require", "poi,image", *_outs(tmp_path)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    options = json.loads((tmp_path / "g.json").read_text())["options"]
    assert options["tier_models"] == ["logistic", "logistic", "hgb"]
    assert options["require"] == ["poi", "image"]
    graded = gpd.read_parquet(tmp_path / "g.parquet")
    assert set(graded["level"]) <= {0, 2, 3, 4, 5} and (graded["level"] >= 3).any()
    names = {t["name"] for t in json.loads((tmp_path / "g.json").read_text())["tables"]}
    assert names == {"levels_by_class", "accuracy_by_level", "accuracy_by_size", "train_by_level"}


def _bad(tmp_path: Path, df: gpd.GeoDataFrame | pd.DataFrame, *extra: str) -> tuple[int, str]:
    path = tmp_path / "bad.parquet"
    df.to_parquet(path)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["grade", "--predictions", str(path), "--out", str(out / "g.parquet"),
            "--tables", str(out / "g.json"), *extra]  # fmt: skip
    return main(argv), str(out)


@pytest.mark.parametrize(
    ("change", "extra", "names", "problem"),
    [
        ("not_one", (), "bad.parquet", "do not sum to 1"),
        ("wrong_classes", (), "bad.parquet", "have no prob_ column"),
        ("no_id", (), "bad.parquet", "no id column 'parcel_id'"),
        ("no_crs", (), "bad.parquet", "no CRS"),
        ("flag", ("--manual-col", "flag"), "column 'flag'", "'maybe' (1)"),
        (
            "tier",
            ("--method", "cascade", "--features", "{feats}"),
            "--tier-sizes",
            "tier 1 asks for 1000 samples",
        ),
        ("no_features", ("--method", "cascade"), "--method", "feature table"),
    ],
)
def test_bad_input_is_one_error_line(
    change, extra, names, problem, inputs, tmp_path, capsys
) -> None:
    df = parcels_frame()
    if change == "not_one":
        df.loc[5, "prob_R"] += 0.3
    elif change == "wrong_classes":
        df = df.drop(columns=["prob_E"])
        df["prob_B"] = 1 - df["prob_R"]
    elif change == "no_id":
        df = df.drop(columns=["parcel_id"])
    elif change == "no_crs":
        df = df.set_crs(None, allow_override=True)
    elif change == "flag":
        df["flag"] = ["poor", "maybe"] + [None] * (len(df) - 2)
    extra = tuple(e.format(feats=inputs[1]) for e in extra)
    code, out = _bad(tmp_path, df, *extra)
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error:"), captured.err
    assert names in lines[0] and problem in lines[0], lines[0]
    assert list(Path(out).iterdir()) == []  # nothing left behind


def test_parcels_without_pois_are_level_0_not_an_error(tmp_path, capsys) -> None:
    df = parcels_frame()
    df["has_poi"] = False
    df.loc[0, "has_poi"] = True
    code, out = _bad(tmp_path, df)
    assert code == 0, capsys.readouterr().err
    levels = gpd.read_parquet(Path(out) / "g.parquet")["level"].to_numpy()
    assert (levels[1:] == 0).all() and levels[0] >= 2
    assert np.isfinite(features_frame(df).to_numpy(dtype=float)).all()
