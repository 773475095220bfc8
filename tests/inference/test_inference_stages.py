"""The inference stages: one options model each, errors that name what the user wrote."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch
import typer
from inference_helpers import TinyFCN, grid_for, make_card, write_image
from shapely.geometry import box
from typer.testing import CliRunner

from landforge.cli import main
from landforge.cli.stagecmd import stage_command
from landforge.errors import InputError, OptionError
from landforge.inference.options import PredictOptions
from landforge.inference.predictor import predict_raster
from landforge.io.raster import write_cog
from landforge.models.checkpoint import save_checkpoint
from landforge.pipeline import run_pipeline
from landforge.pipeline.registry import get_stage


def _errors(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.strip().splitlines() if ln]


def test_cli_bad_batch_is_one_line_naming_the_flag(tmp_path: Path, capsys) -> None:
    code = main(["predict", "--model", "m.safetensors", "--image", "i.tif", "--batch", "0"])
    err = _errors(capsys)
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: --batch: ")
    code = main(["predict", "--model", "m", "--image", "i.tif", "--probs-dtype", "int8"])
    err = _errors(capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --probs-dtype: ")


def test_library_errors_name_the_field() -> None:
    with pytest.raises(OptionError, match="^batch: "):
        PredictOptions.build(batch=0)
    with pytest.raises(OptionError, match="^workers: give either workers"):
        PredictOptions.build(workers=2, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(OptionError, match="^overlap: .*less than half the window"):
        PredictOptions.build(window=64, overlap=32)
    # the earlier spelling of a local cluster still reads
    assert PredictOptions.build(scheduler="local").workers == 2
    assert PredictOptions.build(scheduler="local", workers=3).scheduler is None
    assert PredictOptions.build(tta="none").tta is None


def _pipeline(tmp_path: Path, stage: str) -> Path:
    path = tmp_path / "pipe.yaml"
    path.write_text(f"name: t\nstages:\n{stage}")
    return path


def _checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(1)
    return save_checkpoint(TinyFCN(), make_card(), tmp_path / "tiny")


def test_pipeline_bad_batch_names_the_stage_field(tmp_path: Path) -> None:
    pipe = _pipeline(
        tmp_path,
        "  - name: predict\n    type: predict\n"
        "    with: {model: m.safetensors, image: i.tif, batch: 0}\n",
    )
    with pytest.raises(InputError, match=r"stages\.predict\.with\.batch: "):
        run_pipeline(pipe, tmp_path / "run")


def test_pipeline_predict_with_threshold_and_probs_dtype(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path)
    write_image(tmp_path / "image.tif", 70, 90)
    pipe = _pipeline(
        tmp_path,
        f"""  - name: map
    type: predict
    with:
      model: {ckpt}
      image: {tmp_path / "image.tif"}
      out: map.tif
      probs_out: probs.tif
      footprint_out: fp.tif
      window: 64
      overlap: 8
      threshold: 0.6
      probs_dtype: uint8
""",
    )
    manifest = run_pipeline(pipe, tmp_path / "run")
    assert manifest["stages"]["map"]["status"] == "done"
    run = tmp_path / "run"
    with rasterio.open(run / "probs.tif") as src:
        assert src.dtypes[0] == "uint8" and src.scales[0] == pytest.approx(1 / 254)
    with rasterio.open(run / "fp.tif") as src:
        fp = src.read(1)
    with rasterio.open(run / "map.tif") as src:
        classes = src.read(1)
    assert ((classes == 0) == (fp < 0.6)).all()
    assert ((fp >= 0.5) & (fp < 0.6)).any()  # the threshold mattered


def test_resume_is_on_by_default(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path)
    image = write_image(tmp_path / "image.tif", 80, 80)
    kw = {"window": 32, "overlap": 4, "block_windows": 1, "quiet": True}

    def stop(rec: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_raster(ckpt, image, tmp_path / "map.tif", on_block=stop, **kw)
    summary = predict_raster(ckpt, image, tmp_path / "map.tif", **kw)
    assert summary["blocks_reused"] == 1


def _invoke(stage_name: str, argv: list[str]) -> tuple[int, str, BaseException | None]:
    """Run a stage's generated command (whether or not a hand-written one shadows it)."""
    app = typer.Typer()
    app.command("probe")(stage_command(get_stage(stage_name)))
    app.command("unused")(lambda: None)  # two commands: typer keeps the name
    result = CliRunner().invoke(app, ["probe", *argv])
    return result.exit_code, result.output, result.exception


def test_generated_parcels_assign_command(tmp_path: Path) -> None:
    classes = np.zeros((1, 20, 20), np.uint8)
    classes[0, :, :10] = 1
    classes[0, :, 10:] = 2
    grid = grid_for(20, 20, res=1.0)
    write_cog(
        tmp_path / "map.tif", classes, grid, nodata=255,
        tags={"LANDFORGE_CLASSES": json.dumps({"1": "residential", "2": "commercial"})},
    )  # fmt: skip
    x0, y0 = grid.transform.c, grid.transform.f
    parcels = gpd.GeoDataFrame(
        {"parcel_id": [1, 2, 3]},
        geometry=[
            box(x0, y0 - 20, x0 + 8, y0),
            box(x0 + 11, y0 - 10, x0 + 20, y0),
            box(x0 + 100, y0 - 10, x0 + 120, y0),  # outside the map
        ],
        crs=grid.crs,
    )
    parcels.to_parquet(tmp_path / "parcels.parquet")
    out = tmp_path / "assigned.parquet"
    code, output, exc = _invoke(
        "assign_parcels",
        [str(tmp_path / "parcels.parquet"), "--map", str(tmp_path / "map.tif"), "--out", str(out),
         "--ignore", "0"],
    )  # fmt: skip
    assert code == 0, repr(exc)
    assert output.strip() == (
        f"wrote {out} (3 parcels, 1 without class: {{'residential': 1, 'commercial': 1}})"
    )
    assert list(gpd.read_parquet(out)["class_name"][:2]) == ["residential", "commercial"]
    code, output, exc = _invoke(
        "assign_parcels",
        [str(tmp_path / "parcels.parquet"), "--map", str(tmp_path / "map.tif"), "--out", "x.txt"],
    )
    assert isinstance(exc, InputError) and exc.line().startswith("--out: x.txt: use a .parquet")


def test_untagged_map_is_named_by_the_taxonomy(tmp_path: Path) -> None:
    from landforge.inference.parcels import assign_parcels

    classes = np.zeros((1, 10, 10), np.uint8)
    classes[0, :, :5] = 1
    classes[0, :, 5:] = 7  # not in rci
    grid = grid_for(10, 10, res=1.0)
    write_cog(tmp_path / "map.tif", classes, grid, nodata=255)
    x0, y0 = grid.transform.c, grid.transform.f
    parcels = gpd.GeoDataFrame(
        geometry=[box(x0, y0 - 10, x0 + 4, y0), box(x0 + 6, y0 - 10, x0 + 10, y0)],
        crs=grid.crs,
    )
    got = assign_parcels(parcels, tmp_path / "map.tif")
    assert got["class_name"].tolist() == ["residential", "class_7"]
    got = assign_parcels(parcels, tmp_path / "map.tif", taxonomy="none")
    assert got["class_name"].tolist() == ["class_1", "class_7"]
    with pytest.raises(OptionError, match="^taxonomy: unknown taxonomy"):
        assign_parcels(parcels, tmp_path / "map.tif", taxonomy="nope")
