"""CLI of the mapping engine: bad input is one line and exit 2, no partial output."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import torch
import torch.nn as nn
from inference_helpers import TinyFCN, grid_for, make_card, write_image
from shapely.geometry import box

from landforge.cli import main
from landforge.inference import predictor
from landforge.io.raster import write_cog
from landforge.models.checkpoint import save_checkpoint
from landforge.models.registry import _BUILDERS, register


class FixedSize(TinyFCN):
    """A model that only accepts 64 x 64 inputs (like one with a dense layer)."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[-2:] != (64, 64):
            raise RuntimeError(f"expected 64x64 input, got {tuple(x.shape[-2:])}")
        return super().forward(x)


if "fixed_size_test" not in _BUILDERS:
    register("fixed_size_test")(FixedSize)


def _ckpt(tmp_path: Path, model: nn.Module | None = None, name: str = "tiny") -> Path:
    torch.manual_seed(0)
    card = make_card()
    if isinstance(model, FixedSize):
        card = card.model_copy(update={"model": "fixed_size_test"})
    return save_checkpoint(model or TinyFCN(), card, tmp_path / name)


def _predict(capsys, *args: str) -> tuple[int, list[str]]:
    code = main(["predict", *args])
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln]
    return code, err


def _no_output(out_dir: Path) -> None:
    assert not list(out_dir.glob("map*")) and not list(out_dir.glob(".*"))


def test_extra_in_another_crs_says_to_resample(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        TinyFCN(in_channels=4), make_card(["r", "g", "b", "poi"]), tmp_path / "four"
    )
    image = write_image(tmp_path / "image.tif", 40, 40)
    from affine import Affine
    from rasterio.crs import CRS

    from landforge.io.raster import RasterGrid

    other = RasterGrid(CRS.from_epsg(3857), Affine(0.5, 0, 0, 0, -0.5, 0), 40, 40)
    write_cog(tmp_path / "poi.tif", np.ones((1, 40, 40), np.uint8), other)
    out = tmp_path / "out"
    code, err = _predict(
        capsys, "--model", str(ckpt), "--image", str(image), "--extra", str(tmp_path / "poi.tif"),
        "--out", str(out / "map.tif"), "--window", "32", "--overlap", "4",
    )  # fmt: skip
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"error: {tmp_path / 'poi.tif'}: extra CRS EPSG:3857 differs")
    assert "gdalwarp" in err[0]
    assert not out.exists() or not list(out.iterdir())


def test_raster_smaller_than_window_with_a_fixed_size_model(tmp_path: Path, capsys) -> None:
    ckpt = _ckpt(tmp_path, FixedSize())
    image = write_image(tmp_path / "image.tif", 70, 50)
    code, err = _predict(
        capsys, "--model", str(ckpt), "--image", str(image), "--out", str(tmp_path / "map.tif"),
        "--window", "128", "--overlap", "8",
    )  # fmt: skip
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: --window: raster (50x70) is smaller than the 128-pixel")
    assert "use 50 or less" in err[0]
    _no_output(tmp_path)
    assert not (tmp_path / "map.tif.parts").exists()


def test_unwritable_output(tmp_path: Path, capsys) -> None:
    ckpt = _ckpt(tmp_path)
    image = write_image(tmp_path / "image.tif", 40, 40)
    (tmp_path / "afile").write_text("x")
    code, err = _predict(
        capsys, "--model", str(ckpt), "--image", str(image),
        "--out", str(tmp_path / "afile" / "map.tif"), "--window", "32", "--overlap", "4",
    )  # fmt: skip
    assert code == 2 and len(err) == 1 and "cannot create output directory" in err[0]
    code, err = _predict(
        capsys, "--model", str(ckpt), "--image", str(image), "--out", str(tmp_path / "map.tif"),
        "--probs", str(tmp_path / "afile" / "p.tif"), "--window", "32", "--overlap", "4",
    )  # fmt: skip
    assert code == 2 and len(err) == 1 and "p.tif: cannot create output directory" in err[0]
    _no_output(tmp_path)


def test_truncated_geotiff(tmp_path: Path, capsys) -> None:
    ckpt = _ckpt(tmp_path)
    image = write_image(tmp_path / "image.tif", 300, 300, seed=1)
    data = image.read_bytes()
    bad = tmp_path / "bad.tif"
    bad.write_bytes(data[: len(data) // 2])
    code, err = _predict(
        capsys, "--model", str(ckpt), "--image", str(bad), "--out", str(tmp_path / "map.tif"),
        "--window", "64", "--overlap", "8",
    )  # fmt: skip
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {bad}: ")
    assert "corrupt" in err[0]
    _no_output(tmp_path)
    assert not (tmp_path / "map.tif.parts").exists()
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + b"\x00" * 10)
    code, err = _predict(
        capsys, "--model", str(ckpt), "--image", str(garbage), "--out", str(tmp_path / "map.tif"),
    )  # fmt: skip
    assert code == 2 and len(err) == 1 and "not a readable raster" in err[0]


def test_dead_scheduler_and_conflicting_options(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(predictor, "_CONNECT_TIMEOUT_S", 1.0)
    ckpt = _ckpt(tmp_path)
    image = write_image(tmp_path / "image.tif", 40, 40)
    common = ["--model", str(ckpt), "--image", str(image), "--out", str(tmp_path / "map.tif")]
    code, err = _predict(capsys, *common, "--scheduler", "tcp://127.0.0.1:9")
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: --scheduler: no Dask scheduler answers at 'tcp://127.0.0.1:9'")
    code, err = _predict(capsys, *common, "--scheduler", "tcp://127.0.0.1:9", "--workers", "2")
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --workers")
    _no_output(tmp_path)
    assert not (tmp_path / "map.tif.parts").exists()


def test_cli_resume_blend_and_blocks(tmp_path: Path, capsys) -> None:
    ckpt = _ckpt(tmp_path)
    image = write_image(tmp_path / "image.tif", 90, 90)
    args = ["--model", str(ckpt), "--image", str(image), "--window", "32", "--overlap", "4"]
    assert main(["predict", *args, "--out", str(tmp_path / "a.tif"), "--block-windows", "2"]) == 0
    assert main(["predict", *args, "--out", str(tmp_path / "b.tif"), "--blend", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and not list(tmp_path.glob("*.parts"))


def test_parcels_assign_cli(tmp_path: Path, capsys) -> None:
    classes = np.zeros((1, 20, 20), np.uint8)
    classes[0, :, :10] = 1
    classes[0, :, 10:] = 2
    classes[0, 0, 0] = 255
    grid = grid_for(20, 20, res=1.0)
    write_cog(
        tmp_path / "map.tif", classes, grid, nodata=255,
        tags={"LANDFORGE_CLASSES": json.dumps({"1": "residential", "2": "commercial"})},
    )  # fmt: skip
    probs = np.full((2, 20, 20), 0.9, np.float32)
    write_cog(tmp_path / "probs.tif", probs, grid, nodata=float("nan"))
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
    code = main(
        ["parcels", "assign", str(tmp_path / "parcels.parquet"), "--map", str(tmp_path / "map.tif"),
         "--probs", str(tmp_path / "probs.tif"), "--out", str(tmp_path / "assigned.parquet")]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    out = gpd.read_parquet(tmp_path / "assigned.parquet")
    assert list(out["class_name"][:2]) == ["residential", "commercial"]
    assert out["class_value"].isna().tolist() == [False, False, True]
    assert out["confidence"][:2].tolist() == pytest.approx([0.9, 0.9])
    assert out["n_pixels"].tolist() == [159, 90, 0]
    code = main(
        ["parcels", "assign", str(tmp_path / "parcels.parquet"), "--map", str(tmp_path / "no.tif"),
         "--out", str(tmp_path / "x.parquet")]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no.tif: raster does not exist" in err[0]
    assert not (tmp_path / "x.parquet").exists()
