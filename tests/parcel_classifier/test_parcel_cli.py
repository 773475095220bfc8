"""A user's run: synthetic city -> parcels samples -> parcels train -> predict-classes."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from parcel_classifier_helpers import TINY_SWIN

from landforge.cli import main

CONTRACT = ["parcel_id", "label", "pred", "has_image", "has_poi", "has_population", "area_m2"]


def _samples_argv(city: Path, out: Path, parcels: Path | None = None) -> list[str]:
    return [
        "parcels",
        "samples",
        str(parcels or city / "parcels.gpkg"),
        "--image",
        str(city / "image.tif"),
        "--poi-features",
        str(city / "features.parquet"),
        "--population",
        str(city / "population"),
        "--label-col",
        "use_primary",
        "--patch-px",
        "16",
        "--max-patches",
        "2",
        "--out",
        str(out),
    ]


@pytest.fixture(scope="module")
def run(tiny_city: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("parcel_run")
    assert main(_samples_argv(tiny_city, d / "samples")) == 0
    config = d / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "backbone_kwargs": TINY_SWIN,
                "epochs": 1,
                "embed_dim": 8,
                "inception_nf": 4,
                "inception_depth": 3,
                "block_size_m": 150,
                "classes": ["R", "B", "A", "M", "E", "S", "X"],  # the MSLU taxonomy's order
            }
        )
    )
    code = main(
        ["parcels", "train", str(d / "samples"), "--config", str(config), "--out", str(d / "model")]
    )
    assert code == 0
    return {"dir": d, "samples": d / "samples", "model": d / "model"}


def test_train_writes_a_checkpoint_split_and_test_metrics_beside_the_baseline(run) -> None:
    model = run["model"]
    for name in ("model.safetensors", "model.json", "split.parquet", "metrics.json"):
        assert (model / name).is_file(), name
    import json

    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["classes"] == ["R", "B", "A", "M", "E", "S", "X"]
    assert metrics["options"]["lr"] == 0.01 and metrics["options"]["batch_size"] == 8
    sizes = metrics["split_sizes"]
    assert sizes["train"] > 0 and sizes["train"] + sizes["val"] + sizes["test"] > 0
    split = pd.read_parquet(model / "split.parquet")
    assert set(split["split"]) <= {"train", "val", "test", ""}
    if "test" in metrics:
        m = metrics["test"]["metrics"]
        assert 0 <= m["overall_accuracy"] <= 1 and "per_class" in m
        assert "oa" in metrics["test"]["majority_baseline"]


def test_predict_classes_writes_the_grading_contract(run, capsys) -> None:
    out = run["dir"] / "classes.parquet"
    code = main(
        [
            "parcels",
            "predict-classes",
            str(run["samples"]),
            "--model",
            str(run["model"] / "model.safetensors"),
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    frame = gpd.read_parquet(out)
    classes = ["R", "B", "A", "M", "E", "S", "X"]
    probs = frame[[f"prob_{c}" for c in classes]].to_numpy()
    assert set(CONTRACT) <= set(frame.columns) and frame.crs is not None
    assert list(frame.columns[frame.columns.str.startswith("prob_")]) == [
        f"prob_{c}" for c in classes
    ]
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert (frame["pred"].to_numpy() == np.asarray(classes)[probs.argmax(axis=1)]).all()
    samples = gpd.read_parquet(run["samples"] / "samples.parquet")
    assert frame["parcel_id"].tolist() == samples["parcel_id"].tolist()
    assert frame["has_poi"].tolist() == samples["has_poi"].tolist()


def test_out_of_fold_prediction_marks_each_parcel_with_its_fold(run, capsys) -> None:
    from landforge.training.parcel_train import train_parcel_classifier

    # a POI-only model keeps the two extra fits cheap; --folds retrains with its options
    poi_model = run["dir"] / "poi_model"
    train_parcel_classifier(
        run["samples"], poi_model, modalities=["poi"], epochs=1, embed_dim=8, block_size_m=150
    )
    out = run["dir"] / "oof.parquet"
    code = main(
        [
            "parcels",
            "predict-classes",
            str(run["samples"]),
            "--model",
            str(poi_model / "model"),
            "--folds",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    frame = gpd.read_parquet(out)
    assert set(frame["fold"]) == {0, 1}
    probs = frame[[c for c in frame.columns if c.startswith("prob_")]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert frame["parcel_id"].is_unique
    # folds are whole spatial blocks (the model's block_size_m), so no block leaks
    from landforge.datasets.splits import feature_blocks

    blocks = feature_blocks(frame, 150.0)
    assert (frame.groupby(blocks.to_numpy())["fold"].nunique() == 1).all()


def _fails_cleanly(argv: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert not out.exists()
    return err[0]


def test_parcels_without_an_id_column_or_crs_fail_in_one_line(tiny_city, tmp_path, capsys) -> None:
    parcels = gpd.read_file(tiny_city / "parcels.gpkg")
    no_id = tmp_path / "no_id.gpkg"
    parcels.drop(columns="parcel_id").to_file(no_id)
    line = _fails_cleanly(_samples_argv(tiny_city, tmp_path / "s1", no_id), tmp_path / "s1", capsys)
    assert "no_id.gpkg" in line and "parcel_id" in line
    no_crs = tmp_path / "no_crs.parquet"
    parcels.set_crs(None, allow_override=True).to_parquet(no_crs)
    line = _fails_cleanly(
        _samples_argv(tiny_city, tmp_path / "s2", no_crs), tmp_path / "s2", capsys
    )
    assert "no_crs.parquet" in line and "CRS" in line


def test_a_population_table_matching_no_parcel_says_so(tiny_city, tmp_path, capsys) -> None:
    table = tmp_path / "pop.csv"
    pd.DataFrame({"parcel_id": [-1, -2], "hour": [0, 1], "density": [5.0, 6.0]}).to_csv(table)
    argv = _samples_argv(tiny_city, tmp_path / "s")
    argv[argv.index("--population") + 1] = str(table)
    line = _fails_cleanly(argv, tmp_path / "s", capsys)
    assert "pop.csv" in line and "0 of" in line and "matched" in line


def test_train_on_unlabelled_samples_fails_in_one_line(tiny_city, tmp_path, capsys) -> None:
    argv = _samples_argv(tiny_city, tmp_path / "s")
    i = argv.index("--label-col")
    del argv[i : i + 2]
    assert main(argv) == 0
    line = _fails_cleanly(
        ["parcels", "train", str(tmp_path / "s"), "--out", str(tmp_path / "m")],
        tmp_path / "m",
        capsys,
    )
    assert "label" in line


def test_normalisation_comes_from_the_training_split_only(run) -> None:
    from landforge.models.checkpoint import load_checkpoint
    from landforge.parcels.samples import read_parcel_samples

    model, card = load_checkpoint(run["model"] / "model")
    samples = read_parcel_samples(run["samples"])
    split = pd.read_parquet(run["model"] / "split.parquet")["split"].to_numpy()
    train = (split == "train") & samples.frame["has_poi"].to_numpy()
    expected = samples.poi[train].mean(axis=0)
    assert np.allclose(model.poi_mean.numpy(), expected, rtol=1e-5, atol=1e-5)
    if (split == "test").any() and samples.frame["has_poi"].to_numpy()[split != "train"].any():
        every = samples.poi[samples.frame["has_poi"].to_numpy()].mean(axis=0)
        assert not np.allclose(model.poi_mean.numpy(), every)
    assert card.model == "parcel_fusion" and card.heads["label"][0] == "R"
