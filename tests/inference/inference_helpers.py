"""Helpers for inference tests: a tiny fully convolutional model and small rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from affine import Affine
from rasterio.crs import CRS

from landforge.io.raster import RasterGrid, write_cog
from landforge.models.checkpoint import ModelCard
from landforge.models.registry import _BUILDERS, register

BANDS = ["red", "green", "blue"]
USE = ["residential", "commercial", "industrial"]


class TinyFCN(nn.Module):
    """Two 3x3 convolutions and a 1x1 head: receptive field 5x5 (radius 2)."""

    def __init__(self, in_channels: int = 3, n_classes: int = 3, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
        )
        self.footprint = nn.Conv2d(width, 1, 1)
        self.use = nn.Conv2d(width, n_classes, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.body(x)
        return {"footprint": self.footprint(f), "use": self.use(f)}


if "tiny_fcn_test" not in _BUILDERS:
    register("tiny_fcn_test")(TinyFCN)


def symmetrise(model: nn.Module) -> nn.Module:
    """Make every 3x3 kernel invariant under the 8 symmetries of the square."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                w = m.weight
                variants = []
                for k in range(4):
                    r = w.rot90(k, (-2, -1))
                    variants += [r, r.transpose(-1, -2)]
                m.weight.copy_(torch.stack(variants).mean(0))
    return model


def make_card(bands: list[str] | None = None) -> ModelCard:
    bands = bands or BANDS
    return ModelCard(
        model="tiny_fcn_test",
        model_kwargs={"in_channels": len(bands)},
        bands=bands,
        mean=[100.0] * len(bands),
        std=[50.0] * len(bands),
        heads={"footprint": ["building"], "use": USE},
        taxonomy="rci",
        gsd_m=0.5,
    )


def grid_for(height: int, width: int, res: float = 0.5) -> RasterGrid:
    return RasterGrid(CRS.from_epsg(32650), Affine(res, 0, 500000, 0, -res, 3400000), width, height)


def write_image(
    path: Path,
    height: int,
    width: int,
    bands: int = 3,
    seed: int = 0,
    nodata: float | None = None,
    dtype: str = "uint8",
) -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.integers(1, 255, size=(bands, height, width)).astype(dtype)
    write_cog(path, arr, grid_for(height, width), nodata=nodata)
    return path
