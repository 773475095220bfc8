"""The parcel and sampling stages as pipeline steps: the same files as their commands,
and errors that name the field as the pipeline file spells it (the flag on the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from landforge.cli import main

PIPELINE = """
name: sampling
stages:
  - name: city
    type: synth_city
    with: {out: city, size_m: 600, gsd: 1}
  - name: parcels
    type: parcels
    with:
      roads: city/roads.gpkg
      boundary: city/boundary.gpkg
      districts: city/districts.gpkg
      out: parcels.parquet
  - name: labelled
    type: parcels_label
    with: {parcels: parcels.parquet, labels: city/parcels.gpkg, col: use_primary,
           out: labelled.parquet}
  - name: selected
    type: parcels_select
    with: {parcels: labelled.parquet, min_area_m2: 0, max_area_m2: 0, n: 5,
           label_col: label, out: selected.parquet}
  - name: design
    type: sample_design
    with: {landcover: city/labels/landuse.tif, regions: city/districts.gpkg, n: 40,
           unit_size_m: 100, seed: 3, out: sites.gpkg}
  - name: patches
    type: patches
    with: {parcels: parcels.parquet, patch_size_m: 40, max_per_parcel: 3, out: patches.gpkg}
  - name: split
    type: split
    with: {features: patches.gpkg, ratios: {train: 0.7, val: 0.3}, block_size_m: 200,
           group_col: parcel_id, out: split.parquet}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A pipeline run of every parcel and sampling stage on a small synthetic city."""
    root = tmp_path_factory.mktemp("sampling")
    pipeline = root / "sampling.yaml"
    pipeline.write_text(PIPELINE)
    assert main(["run", str(pipeline), "--run-dir", str(root / "run")]) == 0
    return root / "run"


def _read(path: Path) -> gpd.GeoDataFrame:
    return gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(path)


def test_the_pipeline_writes_every_output_with_a_summary(run: Path) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    stages = manifest["stages"]
    assert all(s["status"] == "done" for s in stages.values())
    assert set(stages["selected"]["outputs"]) == {"selected.parquet", "selected.report.json"}
    assert set(stages["design"]["outputs"]) == {"sites.gpkg", "sites.allocation.csv"}
    assert stages["parcels"]["summary"]["parcels"] == len(_read(run / "parcels.parquet"))
    assert stages["selected"]["summary"]["selected"] == 5
    assert stages["design"]["summary"]["sites"] == 40
    split = _read(run / "split.parquet")
    assert set(split["split"]) == {"train", "val"}
    assert (split.groupby("parcel_id")["split"].nunique() == 1).all()
    assert stages["split"]["summary"]["train"] + stages["split"]["summary"]["val"] == len(split)
    patches = _read(run / "patches.gpkg")
    assert patches.groupby("parcel_id").size().max() <= 3
    assert stages["patches"]["summary"]["patches"] == len(patches)


def test_commands_write_the_same_files_as_the_pipeline_steps(run: Path, tmp_path, capsys) -> None:
    city = run / "city"
    same = {
        "sites.gpkg": [
            "sample-design",
            "--landcover",
            str(city / "labels" / "landuse.tif"),
            "--regions",
            str(city / "districts.gpkg"),
            "--n",
            "40",
            "--unit-size-m",
            "100",
            "--seed",
            "3",
        ],
        "patches.gpkg": [
            "patches",
            str(run / "parcels.parquet"),
            "--size-m",
            "40",
            "--max-per-parcel",
            "3",
        ],
        "split.parquet": [
            "split",
            str(run / "patches.gpkg"),
            "--ratios",
            "train=0.7,val=0.3",
            "--block-size-m",
            "200",
            "--group-col",
            "parcel_id",
        ],
    }
    for name, args in same.items():
        out = tmp_path / name
        assert main([*args, "--out", str(out)]) == 0
        assert _read(out).equals(_read(run / name)), name
    printed = capsys.readouterr().out
    assert "40 sites in 4 regions" in printed and "features split" in printed
    allocation = pd.read_csv(tmp_path / "sites.allocation.csv")
    assert allocation.equals(pd.read_csv(run / "sites.allocation.csv"))


def test_a_second_run_skips_every_stage(run: Path, capsys) -> None:
    pipeline = run.parent / "sampling.yaml"
    before = (run / "split.parquet").stat().st_mtime_ns
    assert main(["run", str(pipeline), "--run-dir", str(run)]) == 0
    assert (run / "split.parquet").stat().st_mtime_ns == before


def _step(tmp_path: Path, stage_type: str, settings: str) -> int:
    pipeline = tmp_path / "bad.yaml"
    pipeline.write_text(
        f"name: bad\nstages:\n  - name: step\n    type: {stage_type}\n    with: {settings}\n"
    )
    return main(["run", str(pipeline), "--run-dir", str(tmp_path / "run")])


@pytest.mark.parametrize(
    ("stage_type", "settings", "field", "cli", "flag"),
    [
        # found when the pipeline file is read (validation)
        (
            "patches",
            "{parcels: PARCELS, patch_size_m: -1}",
            "patch_size_m",
            ["patches", "PARCELS", "--size-m", "-1"],
            "--size-m",
        ),
        (
            "parcels",
            "{boundary: PARCELS}",
            "roads",
            ["parcels", "--boundary", "PARCELS"],
            "--roads",
        ),
        (
            "split",
            "{features: PATCHES, ratios: '0.5,b=0.5'}",
            "ratios",
            ["split", "PATCHES", "--ratios", "0.5,b=0.5"],
            "--ratios",
        ),
        # found by the library when the stage runs
        (
            "split",
            "{features: PATCHES, strata_col: nope}",
            "strata_col",
            ["split", "PATCHES", "--strata-col", "nope"],
            "--strata-col",
        ),
        (
            "parcels_select",
            "{parcels: PARCELS, label_col: nope}",
            "label_col",
            ["parcels", "select", "PARCELS", "--label-col", "nope"],
            "--label-col",
        ),
        (
            "sample_design",
            "{landcover: LANDCOVER, regions: REGIONS, n: 5, unit_size_m: 100, region_col: x}",
            "region_col",
            ["sample-design", "--landcover", "LANDCOVER", "--regions", "REGIONS", "--n", "5"]
            + ["--unit-size-m", "100", "--region-col", "x"],
            "--region-col",
        ),
    ],
)
def test_errors_name_the_field_in_a_pipeline_and_the_flag_on_the_cli(
    run: Path, tmp_path, capsys, stage_type, settings, field, cli, flag
) -> None:
    paths = {
        "PARCELS": str(run / "parcels.parquet"),
        "PATCHES": str(run / "patches.gpkg"),
        "LANDCOVER": str(run / "city" / "labels" / "landuse.tif"),
        "REGIONS": str(run / "city" / "districts.gpkg"),
    }
    for key, path in paths.items():
        settings = settings.replace(key, path)
    capsys.readouterr()
    assert _step(tmp_path, stage_type, settings) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"stages.step.with.{field}: " in err, err

    args = [paths.get(a, a) for a in cli] + ["--out", str(tmp_path / "out.gpkg")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {flag}: "), err
