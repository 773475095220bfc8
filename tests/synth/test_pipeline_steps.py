"""synth_city, evaluate, evaluate_roads and report as steps of one small pipeline.

The same options model serves the CLI and the pipeline: a step's options give the same
files as the command with the same flags, and a bad value is named as the user wrote
it (``stages.NAME.with.FIELD`` in a pipeline, ``--flag`` on the command line).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from landforge.cli import main
from landforge.errors import InputError
from landforge.pipeline import run_pipeline

CITY = "{out: city, seed: 1, size_m: 400, gsd: 1.0, t2: false, s2: false, s1: false, population: false}"

PIPELINE = f"""
name: small
stages:
  - name: city
    type: synth_city
    with: {CITY}
  - name: roads
    type: evaluate_roads
    with:
      pred: city/labels/landuse.tif
      road_values: [6]
      lines: city/roads.gpkg
      tolerance_m: 3
      out: roads.json
  - name: landuse
    type: evaluate
    with:
      pred: city/labels/landuse.tif
      truth: city/labels/landuse.tif
      taxonomy: mslu
      out: metrics.json
  - name: report
    type: report
    with: {{sources: [metrics.json, roads.json]}}
"""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_small_pipeline_runs_the_stages_and_skips_on_rerun(tmp_path: Path) -> None:
    pipe = tmp_path / "small.yaml"
    pipe.write_text(PIPELINE)
    run = tmp_path / "run"
    manifest = run_pipeline(pipe, run)
    stages = manifest["stages"]
    assert all(s["status"] == "done" for s in stages.values())
    city = json.loads((run / "city" / "city.json").read_text())
    assert city["size_m"] == 400.0 and city["grid"]["width"] == 400  # the option reached it
    assert not (run / "city" / "t2").exists() and not (run / "city" / "s2").exists()
    roads = json.loads((run / "roads.json").read_text())
    assert roads["tolerance_m"] == 3.0 and 0 < roads["completeness"] <= 1
    assert stages["roads"]["summary"]["completeness"] == roads["completeness"]
    assert json.loads((run / "metrics.json").read_text())["overall_accuracy"] == 1.0
    assert stages["landuse"]["summary"]["overall_accuracy"] == 1.0
    assert (run / "report.html").is_file()  # report of the run directory by default
    assert stages["report"]["outputs"] == []  # out unset: RUN_DIR/report.html

    again = run_pipeline(pipe, run)
    assert again["stages"]["city"]["finished"] == stages["city"]["finished"]  # skipped


def test_synth_city_step_and_command_write_the_same_files(tmp_path: Path) -> None:
    pipe = tmp_path / "city.yaml"
    pipe.write_text(f"name: c\nstages:\n  - name: city\n    type: synth_city\n    with: {CITY}\n")
    run_pipeline(pipe, tmp_path / "run")
    argv = ["synth", "city", "--out", str(tmp_path / "cli"), "--seed", "1", "--size-m", "400"]
    argv += ["--gsd", "1", "--no-t2", "--no-s2", "--no-s1", "--no-population", "--quiet"]
    assert main(argv) == 0
    for name in ("image.tif", "parcels.gpkg", "labels/landuse.tif", "city.json"):
        assert _sha(tmp_path / "run" / "city" / name) == _sha(tmp_path / "cli" / name), name


@pytest.mark.parametrize(
    ("step", "field", "argv", "flag"),
    [
        (
            "{type: synth_city, with: {out: city, size_m: 100}}",
            "size_m",
            ["synth", "city", "--out", "c", "--size-m", "100"],
            "--size-m",
        ),
        (
            "{type: evaluate_roads, with: {pred: roads.tif}}",
            "lines",
            ["evaluate-roads", "--pred", "roads.tif"],
            "--lines",
        ),
        (
            "{type: evaluate, with: {pred: a.tif, truth: b.tif, taxonomy: rci, classes: 'a,b'}}",
            "classes",
            ["evaluate", "--pred", "a.tif", "--truth", "b.tif", "--taxonomy", "rci"]
            + ["--classes", "a,b"],
            "--classes",
        ),
    ],
)
def test_bad_option_is_named_by_field_in_a_pipeline_and_by_flag_on_the_cli(
    tmp_path: Path, monkeypatch, capsys, step: str, field: str, argv: list[str], flag: str
) -> None:
    pipe = tmp_path / "bad.yaml"
    pipe.write_text(f"name: bad\nstages:\n  - {{name: step, {step[1:]}\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "roads.tif").write_bytes(b"")  # inputs must exist to run a step
    with pytest.raises(InputError) as err:
        run_pipeline(pipe, tmp_path / "run")
    assert f"stages.step.with.{field}:" in str(err.value)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"error: {flag}: ")


def test_option_error_found_while_running_names_the_step_field(tmp_path: Path, capsys) -> None:
    """A table given without its columns is found by the stage, not by validation."""
    (tmp_path / "a.csv").write_text("use\nres\n")
    pipe = tmp_path / "bad.yaml"
    pipe.write_text(
        "name: bad\nstages:\n  - name: ev\n    type: evaluate\n"
        f"    with: {{pred: {tmp_path / 'a.csv'}, truth: {tmp_path / 'a.csv'}}}\n"
    )
    with pytest.raises(InputError, match=r"stages\.ev\.with\.pred_col: tables need"):
        run_pipeline(pipe, tmp_path / "run")
    assert main(["evaluate", "--pred", str(tmp_path / "a.csv"), "--truth", "x.tif"]) == 2
    assert capsys.readouterr().err.startswith("error: --pred-col: tables need")
