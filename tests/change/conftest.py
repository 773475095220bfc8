"""Fixtures of the change tests: a tiny bi-temporal scene with a monthly series, and a
stand-in change model (a few convolutions honouring the FUSU-Net interface) so training,
prediction and evaluation are tested whether or not ``fusu_net`` is registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from rasterio.crs import CRS

from landforge.io.raster import RasterGrid, write_cog
from landforge.models.registry import register

CRS_ = CRS.from_epsg(32650)
X0, Y0 = 400_000.0, 3_400_000.0
S2 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]


class StubChange(nn.Module):
    """Stand-in change model: shared conv encoder, per-date heads, |f1 - f2| change head,
    and a series branch (masked mean over dates, centre crop of the footprint)."""

    def __init__(
        self, in_channels: int = 4, series_channels: int = 14, classes: int = 6, width: int = 8
    ) -> None:
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
        )
        self.ser = nn.Conv2d(series_channels, width, 1)
        self.seg = nn.Conv2d(width, classes, 1)
        self.ts = nn.Conv2d(width, classes, 1)
        self.chg = nn.Conv2d(width, 1, 1)

    def forward(
        self,
        img1: torch.Tensor,
        img2: torch.Tensor,
        series: torch.Tensor | None = None,
        days: torch.Tensor | None = None,
        series_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        f1, f2 = self.enc(img1), self.enc(img2)
        out = {}
        if series is not None:
            m = series_mask.float()[:, :, None, None, None]
            s = (series * m).sum(1) / m.sum(1).clamp(min=1)
            h, w = s.shape[-2:]
            s = s[..., 2 * h // 5 : 3 * h // 5 + 1, 2 * w // 5 : 3 * w // 5 + 1]
            s = F.interpolate(self.ser(s), size=img1.shape[-2:], mode="nearest")
            f1 = f1 + s
            out["seg_ts"] = self.ts(s)
        out.update(seg1=self.seg(f1), seg2=self.seg(f2), change=self.chg((f1 - f2).abs()))
        return out


register("change_stub", StubChange)


def _labels(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y1 = np.kron(rng.integers(1, 6, (n // 8, n // 8)), np.ones((8, 8), int)).astype(np.uint8)
    y2 = y1.copy()
    y2[8:24, 8:40] = np.where(y1[8:24, 8:40] == 3, 4, 3)  # a changed area
    y2[40:48, 0:16] = 5
    y1[56:60, :] = 0  # a background stripe at both dates
    y2[56:60, :] = 0
    y2[0:4, 48:64] = 0  # background at T2 only: change unknown there
    return y1, y2


def _image(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    palette = np.array(
        [
            [0, 0, 0, 0],
            [200, 50, 50, 80],
            [50, 200, 50, 160],
            [50, 50, 200, 40],
            [200, 200, 50, 120],
            [120, 120, 120, 200],
        ],
        np.float32,
    )
    img = palette[y].transpose(2, 0, 1) + rng.normal(0, 8, (4, *y.shape))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_scene(
    root: Path,
    n: int = 64,
    res: float = 4.0,
    months: int = 4,
    series_margin: float = 200.0,
    cloudy_month: int | None = 1,
) -> dict[str, Any]:
    """T1/T2 images and labels (n x n at res m) and s2/ + s1/ monthly files at 10 m."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    grid = RasterGrid.from_bounds(X0, Y0, X0 + n * res, Y0 + n * res, res, CRS_)
    y1, y2 = _labels(rng, n)
    paths = {k: root / f"{k}.tif" for k in ("t1", "t2", "label1", "label2")}
    write_cog(paths["t1"], _image(rng, y1), grid, band_descriptions=["red", "green", "blue", "nir"])
    write_cog(paths["t2"], _image(rng, y2), grid, band_descriptions=["red", "green", "blue", "nir"])
    write_cog(paths["label1"], y1, grid)
    write_cog(paths["label2"], y2, grid)
    m = series_margin
    sgrid = RasterGrid.from_bounds(X0 - m, Y0 - m, X0 + n * res + m, Y0 + n * res + m, 10.0, CRS_)
    series = root / "series"
    for k in range(months):
        name = f"2023-{k + 1:02d}"
        dn = rng.integers(500, 3000, (12, *sgrid.shape)).astype(np.uint16)
        cloud = np.full((1, *sgrid.shape), 1 if k == cloudy_month else 0, np.uint16)
        write_cog(
            series / "s2" / f"{name}.tif",
            np.concatenate([dn, cloud]),
            sgrid,
            band_descriptions=[*S2, "cloud"],
            tags={"date": f"{name}-15"},
        )
        db = rng.normal(-12, 3, (2, *sgrid.shape)).astype(np.float32)
        write_cog(
            series / "s1" / f"{name}.tif",
            db,
            sgrid,
            band_descriptions=["VV", "VH"],
            tags={"date": f"{name}-15"},
        )
    return {
        **{k: str(v) for k, v in paths.items()},
        "series": str(series),
        "grid": grid,
        "y1": y1,
        "y2": y2,
    }


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 64 x 64 px scene at 4 m with a 4-month series (month 2 all cloud)."""
    return make_scene(tmp_path_factory.mktemp("change_scene"))


@pytest.fixture(scope="session")
def chips(scene: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chips of 16 px from the scene (series footprint 320 m = 32 px at 10 m)."""
    from landforge.change.chips import build_change_chips

    out = tmp_path_factory.mktemp("change_chips") / "chips"
    build_change_chips(
        scene["t1"],
        scene["t2"],
        scene["label1"],
        scene["label2"],
        out,
        scene["series"],
        size=16,
        taxonomy="mslu",
        split_block=1,
        split={"train": 0.5, "val": 0.25, "test": 0.25},
    )
    return out


@pytest.fixture(scope="session")
def stub_model(chips: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in model trained for a few steps on the chips."""
    from landforge.change.train import train_change

    out = tmp_path_factory.mktemp("change_model")
    return train_change(
        chips=str(chips), out=str(out), model="change_stub", epochs=3, batch=4, lr=1e-2, quiet=True
    )
