"""Every raster ``predict`` and ``builtup`` write is a valid COG (rio-cogeo's validator).

Rasters larger than one 512 tile, so the COG needs overviews: the layout check covers
IFD order, tiling and overviews of the files these stages assemble block by block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from inference_helpers import TinyFCN, grid_for, make_card, write_image

from landforge.inference.builtup import builtup_mask
from landforge.inference.predictor import predict_raster
from landforge.io.raster import write_cog
from landforge.models.checkpoint import save_checkpoint

cogeo = pytest.importorskip("rio_cogeo.cogeo")


def _valid(path: Path) -> None:
    valid, errors, warns = cogeo.cog_validate(path, strict=True, quiet=True)
    assert valid, (path.name, errors, warns)


def test_predict_outputs_are_valid_cogs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ckpt = save_checkpoint(TinyFCN(), make_card(), tmp_path / "tiny")
    image = write_image(tmp_path / "image.tif", 530, 700)
    outs = {n: tmp_path / f"{n}.tif" for n in ("map", "probs", "fp")}
    predict_raster(
        ckpt, image, outs["map"], window=256, overlap=16, block_windows=2,
        probs_out=outs["probs"], footprint_out=outs["fp"], quiet=True,
    )  # fmt: skip
    for path in outs.values():
        _valid(path)
    with rasterio.open(outs["map"]) as src:
        assert src.overviews(1) == [2] and src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"


def test_builtup_output_is_a_valid_cog(tmp_path: Path) -> None:
    grid = grid_for(600, 640, res=1.0)
    src = np.zeros((1, 300, 320), np.uint8)
    src[0, 100:150, 40:300] = 50
    write_cog(tmp_path / "wc.tif", src, grid_for(300, 320, res=2.0))
    builtup_mask([tmp_path / "wc.tif"], grid, tmp_path / "m.tif", values="50", block=256)
    _valid(tmp_path / "m.tif")
    with rasterio.open(tmp_path / "m.tif") as out:
        assert out.read(1)[250, 200] == 1 and out.read(1)[10, 10] == 0
