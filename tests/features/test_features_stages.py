"""The POI stages as pipeline steps (`landforge run`) and as CLI commands: same results,
errors named as the user wrote them (`stages.NAME.with.FIELD` or `--flag`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import rasterio

from landforge.cli import main

CITY_ARGS = ["--size-m", "600", "--gsd", "1"]
DMAX = "residential=300,commercial=300,industrial=800"

PIPELINE = """
name: poi
stages:
  - name: maps
    type: poi_maps
    with:
      poi: city/pois.parquet
      like: city/image.tif
      taxonomy: gbt35648_rci
      category_col: gbt_category
      dmax: {residential: 300, commercial: 300, industrial: 800}
      out: poi.tif
  - name: embed
    type: poi_embed
    with:
      poi: city/pois.parquet
      category_col: gbt_category
      dim: 8
      walks_per_node: 3
      epochs: 2
      out: emb.parquet
  - name: features
    type: parcel_features
    with:
      parcels: city/parcels.gpkg
      poi: city/pois.parquet
      category_col: gbt_category
      embeddings: emb.parquet
      out: features.parquet
"""


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    """A small synthetic city (roads, parcels, POIs, image): a few seconds."""
    out = tmp_path_factory.mktemp("poi_city") / "city"
    assert main(["synth", "city", "--out", str(out), *CITY_ARGS]) == 0
    return out


def _run_dir(tmp_path: Path, city: Path, text: str) -> tuple[Path, Path]:
    run = tmp_path / "run"
    run.mkdir()
    (run / "city").symlink_to(city, target_is_directory=True)
    pipeline = tmp_path / "poi.yaml"
    pipeline.write_text(text)
    return pipeline, run


def test_poi_stages_run_as_a_pipeline_like_the_cli(city, tmp_path, capsys) -> None:
    pipeline, run = _run_dir(tmp_path, city, PIPELINE)
    assert main(["run", str(pipeline), "--run-dir", str(run)]) == 0, capsys.readouterr().err
    manifest = json.loads((run / "manifest.json").read_text())
    stages = manifest["stages"]
    assert [stages[n]["status"] for n in ("maps", "embed", "features")] == ["done"] * 3
    assert stages["embed"]["summary"]["dim"] == 8 and stages["embed"]["summary"]["pois"] > 0
    assert stages["maps"]["summary"]["classes"] == ["residential", "commercial", "industrial"]
    with rasterio.open(run / "poi.tif") as src:
        assert src.descriptions == ("residential", "commercial", "industrial")
    feats = pd.read_parquet(run / "features.parquet")
    assert "emb_tfidf_7" in feats.columns and feats["n_pois"].sum() > 0

    # the same options from the CLI give the same bytes
    cli = tmp_path / "cli"
    poi = ["--poi", str(city / "pois.parquet"), "--category-col", "gbt_category"]
    capsys.readouterr()
    assert main(["poi-maps", *poi, "--like", str(city / "image.tif"), "--taxonomy",
                 "gbt35648_rci", "--dmax", DMAX, "--out", str(cli / "poi.tif")]) == 0  # fmt: skip
    assert main(["poi-embed", *poi, "--dim", "8", "--walks", "3", "--epochs", "2",
                 "--out", str(cli / "emb.parquet")]) == 0  # fmt: skip
    assert main(["parcels", "features", str(city / "parcels.gpkg"), *poi, "--embeddings",
                 str(cli / "emb.parquet"), "--out", str(cli / "features.parquet")]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(
        f"bands (residential, commercial, industrial) 600x600 -> {cli}/poi.tif"
    )
    assert "-> 8-d embeddings ->" in lines[1]
    assert lines[2].startswith(f"{len(feats)} parcels (") and "columns ->" in lines[2]
    for name in ("poi.tif", "emb.parquet", "features.parquet"):
        assert (run / name).read_bytes() == (cli / name).read_bytes(), name

    # a second run skips every stage
    assert main(["run", str(pipeline), "--run-dir", str(run)]) == 0
    again = json.loads((run / "manifest.json").read_text())["stages"]
    assert again["embed"]["finished"] == stages["embed"]["finished"]


@pytest.mark.parametrize(
    "old, new, where",
    [
        # found by validation, before anything runs
        ("dim: 8", "dim: 0", "stages.embed.with.dim: "),
        ("dim: 8", "dim: 8\n      graph: grid", "stages.embed.with.graph: "),
        # found by the stage while it runs
        ("taxonomy: gbt35648_rci", "taxonomy: no_such", "stages.maps.with.taxonomy: unknown"),
        ("residential: 300,", "public: 300,", "stages.maps.with.dmax: gbt35648_rci has no class"),
    ],
)
def test_pipeline_errors_name_the_stage_field(city, tmp_path, capsys, old, new, where) -> None:
    assert old in PIPELINE
    pipeline, run = _run_dir(tmp_path, city, PIPELINE.replace(old, new))
    assert main(["run", str(pipeline), "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {pipeline}: {where}"), err


@pytest.mark.parametrize(
    "args, where",
    [
        (["poi-embed", "--dim", "0"], "error: --dim: "),
        (["poi-embed", "--graph", "grid"], "error: --graph: "),
        (["poi-embed", "--out", "emb.csv"], "error: --out: emb.csv: embeddings are written as"),
        (["poi-maps", "--taxonomy", "no_such", "--dmax", DMAX], "error: --taxonomy: unknown"),
        (["poi-maps", "--dmax", "public=300", "--taxonomy", "gbt35648_rci"], "error: --dmax: "),
        (["poi-maps", "--dmax", DMAX, "--out", "poi.png"], "error: --out: poi.png: "),
        (["parcels", "features", "P", "--categories", "a,a"], "error: --categories: duplicate"),
    ],
)
def test_cli_errors_name_the_flag(city, tmp_path, capsys, args, where) -> None:
    argv = [*args, "--poi", str(city / "pois.parquet"), "--category-col", "gbt_category"]
    if args[0] == "poi-maps":
        argv += ["--like", str(city / "image.tif")]
    if "P" in argv:
        argv[argv.index("P")] = str(city / "parcels.gpkg")
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / ("poi.tif" if args[0] == "poi-maps" else "o.parquet"))]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(where), err
