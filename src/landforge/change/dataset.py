"""Loader of change chips (:mod:`landforge.change.chips`) and ``plot(sample)``.

:class:`ChangeChipDataset` yields one dict per chip: ``img1``, ``img2`` (C, H, W)
normalised by the train split's mean / std; ``y1``, ``y2`` (H, W) int64 class labels;
``yc`` (H, W) int64 change label (255 ignored); and, with a series, ``series``
(T, Cs, h, w) normalised and 0 on missing frames, ``days`` (T,) and ``series_mask``
(T,) bool. ``time_steps`` keeps that many dates, evenly spaced with the first and the
last (:func:`~landforge.change.options.pick_time_steps`, ours: FUSU does not state its
rule); ``s1=False`` drops the Sentinel-1 channels (VV, VH).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from landforge.change.chips import CHIPS_FORMAT, load_chip
from landforge.change.options import pick_time_steps
from landforge.errors import InputError

__all__ = ["ChangeChipDataset", "read_meta", "plot", "series_channels"]


def read_meta(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``chips.json`` of a chip folder (InputError when it is not one)."""
    p = Path(root) / "chips.json"
    try:
        meta = json.loads(p.read_text())
    except (OSError, ValueError):
        raise InputError(root, "not a change chip folder (no readable chips.json)") from None
    if meta.get("format") != CHIPS_FORMAT:
        raise InputError(p, f"format {meta.get('format')!r}, expected {CHIPS_FORMAT}")
    return meta


def series_channels(meta: dict[str, Any], s1: bool) -> list[int]:
    """Indexes of the series channels kept (all, or without VV / VH)."""
    names = meta.get("series_channels", [])
    return [i for i, n in enumerate(names) if s1 or n not in ("VV", "VH")]


class ChangeChipDataset(Dataset):
    """The chips of one split (or all) of a change chip folder."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | None = "train",
        time_steps: int | None = None,
        s1: bool = True,
        flip: bool = False,
        seed: int = 0,
    ) -> None:
        import geopandas as gpd

        self.root = Path(root)
        self.meta = read_meta(root)
        index = gpd.read_parquet(self.root / "index.parquet")
        if split is not None:
            index = index[index["split"] == split]
        self.index = index.reset_index(drop=True)
        self.chips = list(self.index["chip"])
        self.mean = np.asarray(self.meta["mean"], np.float32)[:, None, None]
        self.std = np.asarray(self.meta["std"], np.float32)[:, None, None]
        self.has_series = bool(self.meta.get("series_channels")) and time_steps != 0
        self.steps = pick_time_steps(len(self.meta.get("series_dates", [])), time_steps)
        self.channels = series_channels(self.meta, s1)
        if self.has_series:
            sm = np.asarray(self.meta["series_mean"], np.float32)[self.channels]
            ss = np.asarray(self.meta["series_std"], np.float32)[self.channels]
            self.smean, self.sstd = sm[None, :, None, None], ss[None, :, None, None]
        self.flip = flip
        self.rng = np.random.default_rng(seed)

    @property
    def in_channels(self) -> int:
        """Image bands."""
        return len(self.meta["bands"])

    @property
    def series_channels(self) -> int:
        """Series channels kept (0 without a series)."""
        return len(self.channels) if self.has_series else 0

    @property
    def classes(self) -> int:
        """Class count K (values 0..K-1)."""
        return len(self.meta["classes"])

    def __len__(self) -> int:
        return len(self.chips)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        a = load_chip(self.root / self.chips[i])
        out = {
            "img1": (a["t1"].astype(np.float32) - self.mean) / self.std,
            "img2": (a["t2"].astype(np.float32) - self.mean) / self.std,
            "y1": a["y1"].astype(np.int64),
            "y2": a["y2"].astype(np.int64),
            "yc": a["yc"].astype(np.int64),
        }
        if self.has_series:
            s = a["series"][self.steps][:, self.channels]
            m = a["mask"][self.steps]
            s = np.where(m[:, None, None, None], (s - self.smean) / self.sstd, 0.0)
            out.update(
                series=s.astype(np.float32),
                days=a["days"][self.steps].astype(np.int64),
                series_mask=m.astype(bool),
            )
        if self.flip:
            hf, vf = self.rng.random(2) < 0.5
            for k in ("img1", "img2", "y1", "y2", "yc", "series"):
                if k in out:
                    if hf:
                        out[k] = out[k][..., ::-1]
                    if vf:
                        out[k] = out[k][..., ::-1, :]
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}


def plot(
    sample: dict[str, Any],
    meta: dict[str, Any] | None = None,
    path: str | os.PathLike[str] | None = None,
    prediction: dict[str, Any] | None = None,
) -> Any:
    """Figure of a sample: T1, T2, y1, y2, change and the series (mean of real frames).

    ``sample`` is a raw chip (:func:`~landforge.change.chips.load_chip`) or a loader
    item; ``meta`` (chips.json) gives the class colours; ``prediction`` may hold
    ``y1``, ``y2``, ``yc`` maps to show below. Saved as PNG when ``path`` is given.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    def arr(key: str) -> np.ndarray | None:
        for k in (key, {"t1": "img1", "t2": "img2"}.get(key, key)):
            if k in sample:
                v = sample[k]
                return v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        return None

    def rgb(x: np.ndarray) -> np.ndarray:
        x = x[:3] if x.shape[0] >= 3 else np.repeat(x[:1], 3, 0)
        x = np.moveaxis(x.astype(np.float32), 0, -1)
        lo, hi = np.percentile(x, 2), np.percentile(x, 98)
        return np.clip((x - lo) / max(hi - lo, 1e-6), 0, 1)

    colours = (meta or {}).get("colours")
    k = len(colours) if colours else 18
    cmap = ListedColormap(np.asarray(colours, float) / 255) if colours else plt.get_cmap("tab20", k)
    panels: list[tuple[str, np.ndarray, dict[str, Any]]] = []
    for name in ("t1", "t2"):
        a = arr(name)
        if a is not None:
            panels.append((name.upper(), rgb(a), {}))
    for name in ("y1", "y2"):
        a = arr(name)
        if a is not None:
            panels.append(
                (name, a, {"cmap": cmap, "vmin": 0, "vmax": k - 1, "interpolation": "nearest"})
            )
    yc = arr("yc")
    if yc is not None:
        panels.append(
            ("change", np.where(yc == 255, 0.5, yc), {"cmap": "magma", "vmin": 0, "vmax": 1})
        )
    series = arr("series")
    if series is not None and series.size:
        m = arr("mask") if arr("mask") is not None else arr("series_mask")
        real = series[m.astype(bool)] if m is not None and m.any() else series
        s = real.mean(0)
        idx = [3, 2, 1] if s.shape[0] >= 12 else [0, 0, 0]  # B04, B03, B02
        panels.append((f"series ({len(real)} dates)", rgb(s[idx]), {}))
    for key in ("y1", "y2", "yc"):
        if prediction is not None and key in prediction:
            p = np.asarray(prediction[key])
            kw = {"cmap": cmap, "vmin": 0, "vmax": k - 1} if key != "yc" else {"cmap": "magma"}
            panels.append((f"predicted {key}", p, kw))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.8), squeeze=False)
    for ax, (title, img, kw) in zip(axes[0], panels, strict=True):
        ax.imshow(img, **kw)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
