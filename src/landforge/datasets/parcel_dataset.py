"""A torch Dataset over parcel samples (``landforge parcels samples`` output), with ``plot``.

Each item is one parcel: its patches padded to ``max_patches`` with a patch mask, its
POI vector, its population series, its area and POI count, which modalities it has and
its class index (-1 when unlabelled or outside ``classes``). Values are raw (image
digital numbers, counts, people/km²): the model normalises them with the training
split's statistics (:func:`normalisation_stats`). Missing modalities hold zeros that
the model never reads (their flag in ``present`` is False).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from landforge.parcels.samples import MODALITIES, ParcelSamples, read_parcel_samples

__all__ = ["ParcelDataset", "normalisation_stats"]


class ParcelDataset(Dataset):
    """Parcels of a samples directory (or :class:`ParcelSamples`), optionally a subset.

    Args:
        samples: a samples directory or loaded samples.
        classes: class names in model order (default: the labels seen, sorted).
        rows: positions of the parcels to serve (default: all).
    """

    def __init__(
        self,
        samples: ParcelSamples | str | os.PathLike[str],
        classes: Sequence[str] | None = None,
        rows: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        self.samples = (
            samples if isinstance(samples, ParcelSamples) else read_parcel_samples(samples)
        )
        self.classes = list(classes) if classes is not None else self.samples.classes
        frame = self.samples.frame
        self.rows = np.arange(len(frame)) if rows is None else np.asarray(rows, dtype=np.int64)
        lookup = {c: i for i, c in enumerate(self.classes)}
        labels = frame["label"] if "label" in frame else [None] * len(frame)
        self.targets = np.array([lookup.get(v, -1) if v is not None else -1 for v in labels])
        self.present = np.stack([frame[f"has_{m}"].to_numpy(bool) for m in MODALITIES], axis=1)
        self.attrs = np.stack(
            [frame["area_m2"].to_numpy(np.float32), frame["n_pois"].to_numpy(np.float32)], 1
        )
        meta = self.samples.meta
        p = self.samples.patches
        self.max_patches = int(meta.get("max_patches", 8))
        self.patch_shape = tuple(p.shape[1:])

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, rows: Sequence[int] | np.ndarray) -> ParcelDataset:
        """The same samples restricted to ``rows`` (positions in the samples)."""
        return ParcelDataset(self.samples, self.classes, rows)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        """One parcel as a dict of tensors (see the module doc)."""
        i = int(self.rows[idx])
        s = self.samples
        lo, hi = int(s.patch_offsets[i]), int(s.patch_offsets[i + 1])
        k = min(hi - lo, self.max_patches)
        image = np.zeros((self.max_patches, *self.patch_shape), np.float32)
        image[:k] = s.patches[lo : lo + k]
        mask = np.zeros(self.max_patches, bool)
        mask[:k] = True
        series = np.nan_to_num(s.population[i], nan=0.0)
        return {
            "image": torch.from_numpy(image),
            "patch_mask": torch.from_numpy(mask),
            "poi": torch.from_numpy(s.poi[i].astype(np.float32)),
            "series": torch.from_numpy(series.astype(np.float32)),
            "attrs": torch.from_numpy(self.attrs[i]),
            "present": torch.from_numpy(self.present[i]),
            "label": torch.tensor(int(self.targets[i]), dtype=torch.long),
            "row": torch.tensor(i, dtype=torch.long),
        }

    def plot(self, sample: dict[str, Any], bands: Sequence[int] = (0, 1, 2)) -> Any:
        """A matplotlib figure of one sample: its patches, population series and POIs."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        mask = sample["patch_mask"].numpy()
        n_img = max(int(mask.sum()), 1)
        fig, axes = plt.subplots(1, n_img + 2, figsize=(2.2 * (n_img + 2), 2.4))
        image = sample["image"].numpy()
        present = sample["present"].numpy()
        for j in range(n_img):
            ax = axes[j]
            ax.set_axis_off()
            if not mask[j]:
                ax.set_title("no image")
                continue
            b = [c for c in bands if c < image.shape[1]] or [0]
            rgb = np.moveaxis(image[j, b], 0, -1)
            lo, hi = np.percentile(rgb, (2, 98))
            ax.imshow(np.clip((rgb - lo) / max(hi - lo, 1e-6), 0, 1).squeeze())
            ax.set_title(f"patch {j + 1}")
        ax = axes[n_img]
        if present[2]:
            ax.plot(sample["series"].numpy())
            ax.set_title("population")
        else:
            ax.set_title("no population")
        ax = axes[n_img + 1]
        if present[1]:
            names = self.samples.meta.get("poi_columns", [])
            values = sample["poi"].numpy()
            top = np.argsort(values)[::-1][:6]
            ax.barh([names[t] if t < len(names) else str(t) for t in top], values[top])
            ax.set_title("POI features")
        else:
            ax.set_title("no POIs")
        label = int(sample["label"])
        name = self.classes[label] if 0 <= label < len(self.classes) else "unlabelled"
        fig.suptitle(f"parcel row {int(sample['row'])}: {name}")
        fig.tight_layout()
        return fig


def normalisation_stats(data: ParcelDataset, max_patches: int = 2000) -> dict[str, np.ndarray]:
    """Per-band image, per-column POI and series mean/std over ``data``'s parcels.

    Only parcels that have the modality count (call it on the training split only); the
    image statistics use at most ``max_patches`` patches (a seeded random subset).
    """
    s = data.samples
    rows = data.rows
    out: dict[str, np.ndarray] = {}
    idx = [np.arange(s.patch_offsets[i], s.patch_offsets[i + 1]) for i in rows]
    flat = np.concatenate(idx) if idx else np.zeros(0, np.int64)
    if len(flat) > max_patches:  # a seeded subset bounds the memory of large sets
        flat = np.sort(np.random.default_rng(0).choice(flat, max_patches, replace=False))
    if len(flat):
        px = s.patches[flat].astype(np.float64)
        out["image_mean"] = px.mean(axis=(0, 2, 3))
        out["image_std"] = px.std(axis=(0, 2, 3))
    poi_rows = rows[data.present[rows, 1]]
    if len(poi_rows) and s.poi.shape[1]:
        out["poi_mean"] = s.poi[poi_rows].mean(axis=0)
        out["poi_std"] = s.poi[poi_rows].std(axis=0)
    pop_rows = rows[data.present[rows, 2]]
    if len(pop_rows):
        values = s.population[pop_rows]
        out["series_mean"] = np.array([values.mean()])
        out["series_std"] = np.array([values.std()])
    return out
