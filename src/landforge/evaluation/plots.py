"""Evaluation plots as PNG: confusion matrix, class-map quicklook, class distribution.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly,
never through ``pyplot``: no global state, no GUI backend, safe in worker processes.
Each ``*_figure`` function returns a Figure; :func:`save_png` writes one atomically and
:func:`png_bytes` gives the bytes the HTML report embeds.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from landforge.evaluation.metrics import ConfusionMatrix
from landforge.io.atomic import atomic_path
from landforge.io.raster import open_raster

__all__ = [
    "confusion_matrix_figure",
    "class_map_figure",
    "class_distribution_figure",
    "plot_confusion_matrix",
    "plot_class_map",
    "plot_class_distribution",
    "save_png",
    "png_bytes",
    "read_class_map",
]

_DPI = 110
# No "Software" text chunk: matplotlib's default one carries a URL, and the report must
# reference nothing on the network, not even inside an embedded image.
_PNG_META: dict[str, str | None] = {"Software": None}


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a PNG, atomically."""
    p = Path(path)
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI, bbox_inches="tight", metadata=_PNG_META)
    return p


def png_bytes(fig: Figure) -> bytes:
    """The PNG encoding of ``fig``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", metadata=_PNG_META)
    return buf.getvalue()


def _matrix_and_names(
    x: ConfusionMatrix | Mapping[str, Any] | np.ndarray, names: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    if isinstance(x, ConfusionMatrix):
        return x.matrix, list(names) if names is not None else x.names
    if isinstance(x, Mapping):
        m = np.asarray(x["confusion_matrix"], np.int64)
        return m, list(names) if names is not None else [str(n) for n in x["classes"]]
    m = np.asarray(x, np.int64)
    return m, list(names) if names is not None else [str(i) for i in range(m.shape[0])]


def _fmt_count(v: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= size:
            return f"{v / size:.1f}{unit}"
    return str(int(v))


def confusion_matrix_figure(
    x: ConfusionMatrix | Mapping[str, Any] | np.ndarray,
    names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Heatmap of the row-normalised confusion matrix (recall per true class).

    Colour and the first number of each cell are the share of the true class (row);
    the second number is the pixel count. Rows are truth, columns prediction.

    Args:
        x: a ConfusionMatrix, a metrics dict (``landforge-metrics/1``) or a square array.
        names: class names (default: those of ``x``).
        title: figure title.
    """
    m, labels = _matrix_and_names(x, names)
    k = m.shape[0]
    support = m.sum(axis=1, keepdims=True)
    share = np.divide(m, support, out=np.zeros(m.shape, float), where=support > 0)
    size = min(max(4.0, 0.6 * k + 2.5), 16.0)
    fig = _new_figure(size + 1.0, size)
    ax = fig.add_subplot()
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:
        fontsize = 9 if k <= 8 else 7 if k <= 14 else 5.5
        for i in range(k):
            for j in range(k):
                if m[i, j] == 0 and i != j:
                    continue
                colour = "white" if share[i, j] > 0.55 else "black"
                ax.text(
                    j,
                    i,
                    f"{share[i, j]:.0%}\n{_fmt_count(int(m[i, j]))}",
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color=colour,
                )
    ax.set_title(title or "Confusion matrix (row-normalised)")
    return fig


def read_class_map(
    path: str | os.PathLike[str], max_size: int = 1024, band: int = 1
) -> tuple[np.ndarray, dict[int, tuple[int, int, int]] | None, float | None, Any]:
    """Read a class raster decimated to at most ``max_size`` pixels on its long side.

    Uses rasterio's ``out_shape`` (nearest neighbour, overviews when the file has them),
    so a huge raster is never read whole.

    Returns:
        (array, colour table or None, nodata, grid bounds).
    """
    with open_raster(path) as src:
        scale = max(src.width, src.height) / float(max_size)
        if scale > 1:
            shape = (max(1, round(src.height / scale)), max(1, round(src.width / scale)))
            from rasterio.enums import Resampling

            arr = src.read(band, out_shape=shape, resampling=Resampling.nearest)
        else:
            arr = src.read(band)
        try:
            raw = src.colormap(band)
            cmap: dict[int, tuple[int, int, int]] | None = {
                int(k): (int(v[0]), int(v[1]), int(v[2])) for k, v in raw.items()
            }
        except ValueError:
            cmap = None
        return arr, cmap, src.nodata, src.bounds


def _fallback_colours(values: Sequence[int]) -> dict[int, tuple[int, int, int]]:
    from matplotlib import colormaps

    tab = colormaps["tab20"]
    return {
        int(v): tuple(int(255 * c) for c in tab(i % 20)[:3])  # type: ignore[misc]
        for i, v in enumerate(values)
    }


def class_map_figure(
    path: str | os.PathLike[str],
    names: Mapping[int, str] | None = None,
    colormap: Mapping[int, tuple[int, int, int]] | None = None,
    max_size: int = 1024,
    title: str | None = None,
) -> Figure:
    """Quicklook of a class raster in its colour table, with a legend of present classes.

    Args:
        path: single-band class raster.
        names: value -> class name for the legend (default: the values).
        colormap: value -> (r, g, b); default the raster's colour table, else tab20.
        max_size: long side of the decimated read in pixels.
        title: figure title (default: the file name).
    """
    arr, table, nodata, bounds = read_class_map(path, max_size)
    values = [int(v) for v in np.unique(arr) if nodata is None or v != nodata]
    colours = dict(colormap) if colormap else (table or {})
    missing = [v for v in values if v not in colours]
    if missing:
        colours = {**_fallback_colours(missing), **colours}
    rgba = np.zeros(arr.shape + (4,), np.uint8)
    for v in values:
        r, g, b = colours[v][:3]
        rgba[arr == v] = (r, g, b, 255)
    h, w = arr.shape
    aspect = h / w if w else 1.0
    width = 8.0
    fig = _new_figure(width + 2.5, max(3.0, min(width * aspect, 12.0)))
    ax = fig.add_subplot()
    ax.imshow(
        rgba,
        interpolation="nearest",
        extent=(bounds.left, bounds.right, bounds.bottom, bounds.top),
    )
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(useOffset=False, style="plain")
    handles = [
        Patch(
            facecolor=np.array(colours[v][:3]) / 255.0,
            edgecolor="0.3",
            label=f"{v} {names[v]}" if names and v in names else str(v),
        )
        for v in values[:40]
    ]
    if handles:
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            fontsize=8,
            frameon=False,
            title="class",
        )
    ax.set_title(title or Path(path).name, fontsize=10)
    return fig


def class_distribution_figure(
    names: Sequence[str],
    truth_counts: Sequence[float],
    pred_counts: Sequence[float],
    colors: Mapping[str, Sequence[int]] | None = None,
    title: str | None = None,
) -> Figure:
    """Side-by-side bars: share of each class in the truth and in the prediction."""
    t = np.asarray(truth_counts, float)
    p = np.asarray(pred_counts, float)
    t_share = t / t.sum() if t.sum() else t
    p_share = p / p.sum() if p.sum() else p
    k = len(names)
    fig = _new_figure(min(max(5.0, 0.55 * k + 2.0), 16.0), 3.8)
    ax = fig.add_subplot()
    x = np.arange(k)
    face = [
        np.array(colors[n][:3]) / 255.0 if colors and n in colors else (0.35, 0.5, 0.75)
        for n in names
    ]
    ax.bar(x - 0.2, t_share, 0.4, color=face, edgecolor="0.2", label="truth")
    ax.bar(
        x + 0.2,
        p_share,
        0.4,
        color=face,
        edgecolor="0.2",
        hatch="//",
        alpha=0.6,
        label="prediction",
    )
    ax.set_xticks(x, list(names), rotation=45, ha="right")
    ax.set_ylabel("share of pixels")
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
    ax.legend(frameon=False)
    ax.set_title(title or "Class distribution")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig


def plot_confusion_matrix(
    x: ConfusionMatrix | Mapping[str, Any] | np.ndarray,
    path: str | os.PathLike[str],
    names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Write :func:`confusion_matrix_figure` as a PNG."""
    return save_png(confusion_matrix_figure(x, names, title), path)


def plot_class_map(
    raster: str | os.PathLike[str],
    path: str | os.PathLike[str],
    names: Mapping[int, str] | None = None,
    colormap: Mapping[int, tuple[int, int, int]] | None = None,
    max_size: int = 1024,
) -> Path:
    """Write :func:`class_map_figure` as a PNG."""
    return save_png(class_map_figure(raster, names, colormap, max_size), path)


def plot_class_distribution(
    metrics: Mapping[str, Any], path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Write the truth-vs-prediction class distribution of a metrics dict as a PNG."""
    m = np.asarray(metrics["confusion_matrix"], float)
    fig = class_distribution_figure(
        metrics["classes"], m.sum(axis=1), m.sum(axis=0), metrics.get("colors"), title
    )
    return save_png(fig, path)
