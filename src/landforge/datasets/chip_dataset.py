"""The torch Dataset over one split of a chip store (the only module here using torch)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from landforge.datasets.chip_plots import plot_chip
from landforge.datasets.chip_store import load_chip, read_index, read_meta, read_stats, store_path
from landforge.errors import InputError

__all__ = ["ChipDataset"]


def _dihedral_np(x: np.ndarray, k: int) -> np.ndarray:
    """:func:`landforge.training.augment.dihedral` on a numpy array (a view)."""
    out = np.rot90(x, k % 4, axes=(-2, -1)) if k % 4 else x
    return np.swapaxes(out, -2, -1) if k >= 4 else out


class ChipDataset(Dataset):
    """A torch Dataset over one split of a chip store.

    Each item is ``{"image": float32 (C,H,W), <label>: int64 (H,W), ...}``. The image is
    normalised by the store's per-band mean/std (``normalise=True``); nodata pixels are
    0 in the image and ``ignore_index`` in every label. With ``augment=True`` one random
    square symmetry (flips, 90° rotations, transpose) is applied to image and labels
    alike, after a random rescale when ``scale_range`` is given
    (:func:`landforge.training.augment.random_rescale`: padding is 0 in the image and
    ``ignore_index`` in the labels, like nodata).

    Args:
        store_dir: a store written by :func:`~landforge.datasets.chip_writer.build_chips`.
        split: split name, or None for every chip.
        augment: apply synchronised random flips / rotations.
        scale_range: with ``augment``, also zoom by a random factor in ``(lo, hi)``;
            None = no rescale.
        normalise: subtract mean and divide by std per band.
        ignore_index: label value of nodata pixels.
        mean_std: per-band (mean, std) to normalise with instead of the store's own
            statistics, e.g. a model card's when a model trained on another store is
            fine-tuned or evaluated here.
    """

    def __init__(
        self,
        store_dir: str | os.PathLike[str],
        split: str | None = "train",
        augment: bool = False,
        normalise: bool = True,
        ignore_index: int = -100,
        mean_std: tuple[Sequence[float], Sequence[float]] | None = None,
        scale_range: tuple[float, float] | None = None,
    ) -> None:
        self.store_dir = store_path(store_dir)
        index = read_index(self.store_dir)
        if split is not None:
            index = index[index["split"] == split]
        self.index = index.reset_index(drop=True)
        self.split = split
        self.stats = read_stats(self.store_dir)
        self.meta = read_meta(self.store_dir)
        self.label_names: list[str] = list(self.meta["label_names"])
        self.band_names: list[str] = list(self.stats["bands"])
        self.augment = augment
        self.scale_range = scale_range
        self.normalise = normalise
        self.ignore_index = ignore_index
        mean, std = mean_std if mean_std is not None else (self.stats["mean"], self.stats["std"])
        if len(mean) != len(self.band_names) or len(std) != len(self.band_names):
            raise InputError(
                self.store_dir,
                f"normalisation has {len(mean)} bands, the store {len(self.band_names)}",
            )
        self._mean = np.asarray(mean, dtype=np.float32)[:, None, None]
        std = np.asarray(std, dtype=np.float32)
        self._std = np.where(std > 0, std, 1.0).astype(np.float32)[:, None, None]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        chip = load_chip(self.store_dir, str(self.index.at[i, "chip_id"]))
        invalid = ~chip["valid"].astype(bool)
        masked = bool(invalid.any())  # most chips have no nodata: skip the masking
        image = chip["image"].astype(np.float32, copy=True)
        if self.normalise:
            image -= self._mean  # in place: no temporaries per band
            image /= self._std
        if masked:
            image[:, invalid] = 0.0
        arrays: dict[str, np.ndarray] = {"image": image}
        for name in self.label_names:
            lab = chip[name].astype(np.int64)
            if masked:
                lab[invalid] = self.ignore_index
            arrays[name] = lab
        if self.augment and self.scale_range is not None:
            # function-local: torch's resampling code is needed only with a scale range
            from landforge.training.augment import random_rescale

            tensors = {n: torch.from_numpy(a) for n, a in arrays.items()}
            scaled = random_rescale(tensors, self.scale_range, ignore_index=self.ignore_index)
            arrays = {n: t.numpy() for n, t in scaled.items()}
        if self.augment:
            # the same draw as training.augment.random_dihedral (torch's RNG, which
            # Lightning seeds per worker), applied in numpy: torch.rot90 + contiguous
            # costs ~10x more on CPU
            k = int(torch.randint(8, (1,)))
            arrays = {n: _dihedral_np(a, k) for n, a in arrays.items()}
        return {n: torch.from_numpy(np.ascontiguousarray(a)) for n, a in arrays.items()}

    def plot(self, sample: Mapping[str, Any], title: str | None = None) -> Any:
        """Plot a sample of this dataset (see :func:`plot_chip`); undoes normalisation."""
        arrays = dict(sample)
        image = np.asarray(arrays["image"])
        if self.normalise:
            arrays["image"] = image * self._std + self._mean
        return plot_chip(arrays, stats=self.stats, labels=self.label_names, title=title)
