"""A chip drawn as a matplotlib Figure: its RGB bands beside its label masks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["plot_chip"]


def plot_chip(
    chip: Mapping[str, Any],
    rgb: Sequence[int] = (0, 1, 2),
    stats: Mapping[str, Any] | None = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """A matplotlib Figure: the chip's RGB bands beside each of its label masks.

    Args:
        chip: a chip from :func:`~landforge.datasets.chip_store.load_chip` or a
            :class:`~landforge.datasets.chip_dataset.ChipDataset` sample (numpy arrays
            or tensors; ``image`` (C,H,W) plus label arrays).
        rgb: band indices shown as red, green, blue.
        stats: store stats; their p2/p98 stretch the bands (otherwise the chip's own
            2nd/98th percentiles do).
        labels: label keys to draw (default: every 2-D array except ``valid``).
        title: figure title.
    """
    from matplotlib.figure import Figure

    arrays = {
        k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v) for k, v in chip.items()
    }
    image = arrays["image"].astype(np.float64)
    bands = [min(b, image.shape[0] - 1) for b in rgb]
    shown = image[bands]
    if stats is not None:
        lo = np.array([stats["p2"][b] for b in bands])[:, None, None]
        hi = np.array([stats["p98"][b] for b in bands])[:, None, None]
    else:
        lo = np.percentile(shown, 2, axis=(1, 2))[:, None, None]
        hi = np.percentile(shown, 98, axis=(1, 2))[:, None, None]
    shown = np.clip((shown - lo) / np.maximum(hi - lo, 1e-9), 0, 1).transpose(1, 2, 0)
    names = (
        list(labels)
        if labels is not None
        else [k for k, v in arrays.items() if k not in ("image", "valid") and v.ndim == 2]
    )
    fig = Figure(figsize=(3 * (1 + len(names)), 3.2), layout="constrained")
    axes = fig.subplots(1, 1 + len(names), squeeze=False)[0]
    axes[0].imshow(shown)
    axes[0].set_title("image")
    for ax, name in zip(axes[1:], names, strict=True):
        mask = arrays[name].astype(np.float64)
        mask = np.ma.masked_less(mask, 0)  # ignored pixels stay blank
        ax.imshow(mask, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
        ax.set_title(name)
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig
