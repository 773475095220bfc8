"""Mean-shift scene clustering of patches, its report and cluster-balanced sampling.

The national sample paper groups patches into scenes with mean-shift because the
number of scenes is not known beforehand; the bandwidth here is scikit-learn's
``estimate_bandwidth`` on a seeded sample unless given. Clusters are renumbered by
size (0 is the largest). Features: the label histogram, the LBP histogram, or both
with every column standardised to zero mean and unit variance (``combined``; the
paper does not say how the two are weighed: ours).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landforge.curate.options import ClusterOptions, FeatureSet
from landforge.curate.tiles import feature_columns, read_tiles, write_tiles
from landforge.errors import InputError
from landforge.io.atomic import atomic_path

__all__ = [
    "balanced_sample",
    "cluster_features",
    "cluster_patches",
    "contact_sheet",
    "feature_matrix",
]


class _Scaler:
    """Column standardisation fitted on the dataset (identity for one histogram)."""

    def __init__(self, x: np.ndarray, standardise: bool) -> None:
        self.mean = x.mean(axis=0) if standardise else np.zeros(x.shape[1])
        std = x.std(axis=0) if standardise else np.ones(x.shape[1])
        self.std = np.where(std > 0, std, 1.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


def feature_matrix(table: Any, which: FeatureSet) -> tuple[np.ndarray, list[str], _Scaler]:
    """The feature matrix of a patch table, its columns and the scaler applied.

    ``combined`` standardises each column; ``label`` and ``texture`` stay histograms.
    """
    cols = feature_columns(table, which)
    raw = table[cols].to_numpy(np.float64)
    scaler = _Scaler(raw, standardise=which == "combined")
    return scaler(raw), cols, scaler


def cluster_features(x: np.ndarray, opts: ClusterOptions) -> tuple[np.ndarray, float]:
    """Mean-shift labels (renumbered by cluster size, 0 largest) and the bandwidth used."""
    from sklearn.cluster import MeanShift, estimate_bandwidth
    from threadpoolctl import threadpool_limits

    if len(x) < 2:
        return np.zeros(len(x), np.int64), float(opts.bandwidth or 0.0)
    bandwidth = opts.bandwidth
    if bandwidth is None:
        n = min(opts.bandwidth_samples, len(x))
        bandwidth = float(
            estimate_bandwidth(x, quantile=opts.quantile, n_samples=n, random_state=opts.seed)
        )
        if not bandwidth > 0:  # all patches alike: one cluster
            return np.zeros(len(x), np.int64), 0.0
    # one BLAS/OpenMP thread: mean-shift makes thousands of tiny neighbour queries, and
    # spinning up a thread pool for each is ~30x slower than running them serially
    with threadpool_limits(1):
        labels = MeanShift(bandwidth=bandwidth, bin_seeding=opts.bin_seeding).fit_predict(x)
    order = np.argsort(-np.bincount(labels), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[labels].astype(np.int64), float(bandwidth)


def balanced_sample(clusters: np.ndarray, per_cluster: int, seed: int = 0) -> np.ndarray:
    """Row indices of a cluster-balanced sample: ``per_cluster`` rows from each cluster.

    A cluster with fewer rows gives all of them. Seeded; sorted.
    """
    rng = np.random.default_rng(seed)
    picked = []
    for k in np.unique(clusters):
        rows = np.flatnonzero(clusters == k)
        picked.append(rows if rows.size <= per_cluster else rng.choice(rows, per_cluster, False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def cluster_patches(
    tiles: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    out: str | os.PathLike[str],
    opts: ClusterOptions | dict[str, Any] | None = None,
    *,
    report: str | os.PathLike[str] | None = None,
    sheet: str | os.PathLike[str] | None = None,
    sample: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Cluster the patches of ``tiles`` into scenes and write the results.

    Args:
        tiles: patch table(s) from :func:`~landforge.curate.tiles.tile_frames`.
        out: GeoParquet to write: the patches with a ``cluster`` column.
        opts: :class:`ClusterOptions`; ``overrides`` replace its fields.
        **overrides: option fields replacing those of ``opts``.
        report: JSON to write: bandwidth, cluster sizes and mean features per cluster.
        sheet: PNG contact sheet of example patches per cluster.
        sample: GeoParquet of the cluster-balanced sample (needs
            ``sample_per_cluster``).

    Returns:
        the report as a dict.
    """
    o = ClusterOptions.build(opts, **overrides)
    table = read_tiles(tiles)
    x, cols, _ = feature_matrix(table, o.features)
    clusters, bandwidth = cluster_features(x, o)
    table["cluster"] = clusters
    sizes = np.bincount(clusters)
    result: dict[str, Any] = {
        "features": o.features,
        "n_patches": len(table),
        "n_clusters": int(sizes.size),
        "bandwidth": bandwidth,
        "quantile": o.quantile if o.bandwidth is None else None,
        "sizes": {str(k): int(n) for k, n in enumerate(sizes)},
        "mean_features": {
            str(k): {
                c: float(v)
                for c, v in zip(cols, table.loc[clusters == k, cols].mean(), strict=True)
            }
            for k in range(sizes.size)
        },
    }
    sample_rows = None
    if o.sample_per_cluster is not None:
        sample_rows = balanced_sample(clusters, o.sample_per_cluster, o.seed)
        result["sample"] = {
            "per_cluster": o.sample_per_cluster,
            "n": int(sample_rows.size),
            "sizes": {
                str(k): int(n)
                for k, n in enumerate(np.bincount(clusters[sample_rows], minlength=sizes.size))
            },
        }
    write_tiles(table, out)
    if sample is not None and sample_rows is not None:
        picked = table.iloc[sample_rows].reset_index(drop=True)
        picked.attrs = table.attrs
        write_tiles(picked, sample)
    if sheet is not None:
        contact_sheet(table, sheet, o)
    if report is not None:
        with atomic_path(report) as tmp:
            Path(tmp).write_text(json.dumps(result, indent=2))
    return result


def contact_sheet(table: Any, path: str | os.PathLike[str], opts: ClusterOptions) -> Path:
    """PNG with one row per cluster (largest first) of example patch thumbnails."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clusters = table["cluster"].to_numpy()
    shown = [k for k in range(int(clusters.max()) + 1)][: opts.max_clusters_shown]
    rng = np.random.default_rng(opts.seed)
    n_cols = opts.examples
    fig, axes = plt.subplots(
        len(shown), n_cols, figsize=(1.2 * n_cols, 1.25 * len(shown)), squeeze=False
    )
    for i, k in enumerate(shown):
        rows = np.flatnonzero(clusters == k)
        picked = rows if rows.size <= n_cols else np.sort(rng.choice(rows, n_cols, False))
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if j < picked.size:
                rgb = _thumbnail(table.iloc[int(picked[j])], opts)
                ax.imshow(rgb, cmap=None if rgb.ndim == 3 else "gray", interpolation="nearest")
        axes[i, 0].set_ylabel(
            f"{k} (n={rows.size})", fontsize=7, rotation=0, ha="right", va="center"
        )
    fig.suptitle(f"scene clusters ({len(shown)} of {int(clusters.max()) + 1} shown)", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=72, format="png")
    plt.close(fig)
    return Path(path)


def _thumbnail(row: Any, opts: ClusterOptions) -> np.ndarray:
    """A decimated read of one patch, stretched p2-p98 to [0, 1]."""
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    from landforge.io.raster import open_raster

    image = row["image"]
    with open_raster(image) as src:
        bands = list(opts.rgb) if opts.rgb else ([3, 2, 1] if src.count >= 3 else [1])
        bad = [b for b in bands if not 1 <= b <= src.count]
        if bad:
            raise InputError(image, f"band {bad[0]} does not exist (rgb); it has {src.count}")
        h, w = int(row["height"]), int(row["width"])
        scale = min(1.0, opts.thumb / max(h, w))
        shape = (len(bands), max(1, round(h * scale)), max(1, round(w * scale)))
        data = src.read(
            bands,
            window=Window(int(row["col"]), int(row["row"]), w, h),
            out_shape=shape,
            resampling=Resampling.average,
            masked=True,
        )
    arr = np.ma.filled(data.astype(np.float64), np.nan)
    out = np.zeros(arr.shape, np.float64)
    for b in range(arr.shape[0]):
        finite = arr[b][np.isfinite(arr[b])]
        if finite.size:
            lo, hi = np.percentile(finite, [2, 98])
            out[b] = np.clip((arr[b] - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    out = np.nan_to_num(out)
    return out[0] if out.shape[0] == 1 else np.moveaxis(out, 0, -1)
