"""Spatially blocked train / val / test splits, for vector features and chip windows.

Neighbouring samples share texture, objects and labels, so a random split per sample
leaks between subsets and flatters the validation score. Here space is cut into
blocks (square cells of a grid in the layer's CRS, a given tiles layer, or, for chip
stores, ``b x b`` chip positions) and every block goes **wholly** to one subset, as in
raster-vision's and torchgeo's block splits. A feature falls in the block holding its
representative point; with ``group_col`` all features of a group (a parcel, a
building) follow the group's majority block, so no group straddles two subsets.

Assignment (:func:`assign_blocks`) is a seeded greedy: blocks are visited in a seeded
random order and each goes to the subset for which adding it most reduces

    sum over subsets s and classes k of ((A[s,k] - T[s,k]) / T[s,k])**2

where ``A`` is what subset ``s`` holds of class ``k`` so far and ``T = ratio[s] *
total[k]`` its target: the relative per-class deficit. Without strata there is one
"class" (the number of features, or chips, per block), which balances the subset
sizes; with strata, class shares in every subset stay close to the overall shares
where the blocks allow it. While the unvisited blocks are no more than the subsets
still without a block, those subsets are served first, so every subset with a
positive ratio gets a block when there are enough blocks.

The options of :func:`block_split` are :class:`~landforge.datasets.split_options.SplitOptions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from landforge.datasets.split_options import DEFAULT_RATIOS, SplitOptions
from landforge.errors import InputError, OptionError

__all__ = [
    "DEFAULT_RATIOS",
    "SplitOptions",
    "assign_blocks",
    "block_split",
    "feature_blocks",
    "normalise_ratios",
    "split_report",
    "split_windows",
    "window_blocks",
]

_MISSING = "<missing>"


def normalise_ratios(ratios: Mapping[str, Any] | None, source: str = "split") -> dict[str, float]:
    """Validate split ratios and scale them to sum to 1 (None: :data:`DEFAULT_RATIOS`).

    Raises:
        InputError: a non-numeric or negative ratio (named ``<source>.<name>``), or no
            positive ratio.
    """
    if ratios is None:
        return dict(DEFAULT_RATIOS)
    out: dict[str, float] = {}
    for name, value in ratios.items():
        try:
            ratio = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{source}.{name}", f"ratio must be a number, got {value!r}") from None
        if not ratio >= 0 or not np.isfinite(ratio):
            raise InputError(
                f"{source}.{name}", f"ratio must be a non-negative number, got {value!r}"
            )
        out[str(name)] = ratio
    total = sum(out.values())
    if not out or total <= 0:
        raise InputError(source, "give at least one positive ratio, e.g. train=0.8,val=0.2")
    return {k: v / total for k, v in out.items()}


def assign_blocks(
    weights: Any,
    ratios: Mapping[str, float] | None = None,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Give each block a subset name by the seeded greedy described in the module doc.

    Args:
        weights: ``(n_blocks,)`` sizes (features or chips per block) or
            ``(n_blocks, n_classes)`` per-class counts of each block.
        ratios: subset name -> share (normalised; default 6:2:2 train/val/test).
        seed: seed or generator of the visiting order.

    Returns:
        ``(n_blocks,)`` object array of subset names.
    """
    ratios = normalise_ratios(ratios)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    n = w.shape[0]
    names = list(ratios)
    r = np.array([ratios[k] for k in names])
    total = w.sum(axis=0)
    keep = total > 0
    w, total = w[:, keep], total[keep]
    target = r[:, None] * total[None, :]  # (S, K)
    # 1 / T**2, zero for subsets with ratio 0 (they never receive a block)
    inv2 = np.divide(1.0, target**2, out=np.zeros_like(target), where=target > 0)
    held = np.zeros_like(target)
    counts = np.zeros(len(names), dtype=np.int64)
    open_ = r > 0
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out = np.empty(n, dtype=object)
    for step, b in enumerate(rng.permutation(n)):
        c = w[b]
        starved = open_ & (counts == 0)
        allowed = starved if 0 < starved.sum() >= n - step else open_
        # change of sum_k ((A + c - T) / T)**2 - ((A - T) / T)**2 for each subset
        cost = ((c * c)[None, :] + 2.0 * c[None, :] * (held - target)) * inv2
        cost = cost.sum(axis=1)
        cost[~allowed] = np.inf
        s = int(np.argmin(cost))
        held[s] += c
        counts[s] += 1
        out[b] = names[s]
    return out


# ----------------------------------------------------------------------------- vectors


def feature_blocks(
    gdf: Any,
    block_size_m: float | None = 1000.0,
    tiles: Any = None,
    group_col: str | None = None,
) -> pd.Series:
    """The block of each feature: grid cell or tile of its representative point.

    Args:
        gdf: features with a CRS (a geographic layer is blocked in its local UTM zone).
        block_size_m: side of the square grid cells, anchored at the CRS origin (so
            layers in one CRS share blocks); ignored when ``tiles`` is given.
        tiles: a polygon layer whose polygons are the blocks; a point outside every
            tile goes to the nearest tile.
        group_col: features with the same value here get their group's majority block
            (ties: the smallest block id); missing values are groups of one.

    Returns:
        Series of block ids (``"x<i>_y<j>"`` grid cells, ``"t<i>"`` tile positions)
        aligned with ``gdf``.

    Raises:
        OptionError: a bad block size, or a ``group_col`` the features lack.
        InputError: a layer without CRS.
    """
    import geopandas as gpd

    from landforge.io.vector import require_column, require_crs, to_metric

    require_crs(gdf, "features")
    if group_col is not None:
        require_column(gdf, group_col, "features", option="group_col")
    metric = to_metric(gdf)
    points = metric.geometry.representative_point()
    if tiles is not None:
        require_crs(tiles, "tiles")
        tiles_m = tiles.to_crs(metric.crs).reset_index(drop=True)
        pts = gpd.GeoDataFrame(geometry=points.values, crs=metric.crs)
        hit = gpd.sjoin(pts, tiles_m[["geometry"]], how="left", predicate="within")
        hit = hit[~hit.index.duplicated(keep="first")].sort_index()
        tile = np.array(hit["index_right"], dtype=np.float64)
        missing = np.isnan(tile)
        if missing.any():
            near = gpd.sjoin_nearest(pts[missing], tiles_m[["geometry"]], how="left")
            near = near[~near.index.duplicated(keep="first")].sort_index()
            tile[missing] = near["index_right"].to_numpy(dtype=np.float64)
        blocks = pd.Series([f"t{int(t)}" for t in tile], index=gdf.index, dtype=object)
    else:
        if block_size_m is None or not block_size_m > 0:
            raise OptionError("block_size_m", f"must be positive, got {block_size_m}")
        bx = np.floor(points.x.to_numpy() / block_size_m).astype(np.int64)
        by = np.floor(points.y.to_numpy() / block_size_m).astype(np.int64)
        blocks = pd.Series(
            [f"x{i}_y{j}" for i, j in zip(bx, by, strict=True)], index=gdf.index, dtype=object
        )
    if group_col is not None:
        groups = gdf[group_col]
        has = groups.notna().to_numpy()
        if has.any():
            frame = pd.DataFrame({"g": groups[has].to_numpy(), "b": blocks[has].to_numpy()})
            sizes = frame.groupby(["g", "b"], sort=True).size()
            # the first maximum after sorting by (group, block): majority, then smallest id
            majority = sizes.groupby(level="g").idxmax().map(lambda gb: gb[1])
            blocks[has] = majority.loc[frame["g"]].to_numpy()
    return blocks.rename("block")


def block_split(
    gdf: Any,
    opts: SplitOptions | Mapping[str, Any] | None = None,
    *,
    tiles: Any = None,
    **overrides: Any,
) -> pd.Series:
    """Split features into subsets by spatial blocks (default 6:2:2 train/val/test).

    Args:
        gdf: features with a CRS (parcels, buildings, patch centres, ...).
        opts: options, see :class:`~landforge.datasets.split_options.SplitOptions`:
            ``ratios`` (subset name -> share, e.g. ``{"train": 0.7, "val": 0.3}``),
            ``block_size_m`` (side of the square blocks in metres, see
            :func:`feature_blocks`), ``strata_col`` (class column; blocks are assigned
            so each subset's class shares stay close to the overall ones, missing
            values forming their own class), ``group_col`` (keeps each group, e.g.
            ``parcel_id``, within one subset) and ``seed`` (of the order blocks are
            visited in).
        tiles: polygons to use as blocks instead of the grid.
        **overrides: option fields replacing those of ``opts`` (``block_size_m=500``).

    Returns:
        Series named ``split`` aligned with ``gdf`` (subset names).

    Raises:
        OptionError: bad ratios or block size, an unknown ``strata_col`` or
            ``group_col``.
        InputError: see :func:`feature_blocks`.
    """
    from landforge.io.vector import require_column

    o = SplitOptions.build(opts, **overrides)
    ratios = normalise_ratios(o.ratios)
    strata_col, group_col = o.strata_col, o.group_col
    if strata_col is not None:
        require_column(gdf, strata_col, "features", option="strata_col")
    if len(gdf) == 0:
        return pd.Series([], index=gdf.index, dtype=object, name="split")
    blocks = feature_blocks(gdf, o.block_size_m, tiles, group_col)
    codes, uniques = pd.factorize(blocks, sort=True)
    if strata_col is not None:
        strata = _strata(gdf[strata_col])
        k_codes, _ = pd.factorize(strata, sort=True)
        weights = np.zeros((len(uniques), int(k_codes.max()) + 1))
        np.add.at(weights, (codes, k_codes), 1.0)
    else:
        weights = np.bincount(codes, minlength=len(uniques)).astype(np.float64)
    per_block = assign_blocks(weights, ratios, o.seed)
    return pd.Series(per_block[codes], index=gdf.index, dtype=object, name="split")


def split_report(split: pd.Series, strata: pd.Series | None = None) -> pd.DataFrame:
    """Per-subset counts and class shares, with an ``all`` row.

    Args:
        split: subset names (from :func:`block_split`).
        strata: class of each feature, aligned with ``split``.

    Returns:
        DataFrame indexed by subset (train, val, test first, then others by name,
        then ``all``) with ``n``,
        ``share`` (of all features) and, given strata, one ``class:<value>`` column
        per class holding that class's share within the subset.
    """
    seen = {str(v) for v in pd.unique(split)}
    names = [k for k in DEFAULT_RATIOS if k in seen] + sorted(seen - set(DEFAULT_RATIOS))
    rows: dict[str, dict[str, float]] = {}
    n_all = len(split)
    classes = sorted(pd.unique(_strata(strata)), key=str) if strata is not None else []
    for name in [*names, "all"]:
        mask = np.ones(n_all, dtype=bool) if name == "all" else (split == name).to_numpy()
        n = int(mask.sum())
        row: dict[str, float] = {"n": n, "share": n / n_all if n_all else 0.0}
        if strata is not None:
            counts = _strata(strata)[mask].value_counts()
            for c in classes:
                row[f"class:{c}"] = float(counts.get(c, 0)) / n if n else 0.0
        rows[name] = row
    report = pd.DataFrame.from_dict(rows, orient="index")
    report["n"] = report["n"].astype("int64")
    report.index.name = "split"
    return report


def _strata(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), _MISSING)


# ----------------------------------------------------------------------------- windows


def window_blocks(
    rows: Sequence[int] | np.ndarray,
    cols: Sequence[int] | np.ndarray,
    stride: int,
    block_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Block row / column of chip windows at pixel offsets ``rows``, ``cols``.

    Windows on a grid of step ``stride`` are grouped into blocks of ``block_size`` x
    ``block_size`` window positions.
    """
    span = int(stride) * int(block_size)
    return np.asarray(rows, dtype=np.int64) // span, np.asarray(cols, dtype=np.int64) // span


def split_windows(
    rows: Sequence[int] | np.ndarray,
    cols: Sequence[int] | np.ndarray,
    stride: int,
    block_size: int,
    ratios: Mapping[str, float] | None = None,
    seed: int = 0,
    class_counts: Any = None,
) -> pd.DataFrame:
    """Split chip windows by blocks of ``block_size`` x ``block_size`` positions.

    Args:
        rows: pixel row offsets of the windows' top-left corners.
        cols: pixel column offsets of the windows' top-left corners.
        stride: step between windows in pixels.
        block_size: window positions per block side.
        ratios: subset name -> share (default 6:2:2).
        seed: seeds the order blocks are visited in.
        class_counts: optional ``(n_windows, n_classes)`` counts (e.g. label pixels)
            to stratify by; default: blocks weigh their number of windows.

    Returns:
        DataFrame with ``block_row``, ``block_col``, ``split``, one row per window.
    """
    block_row, block_col = window_blocks(rows, cols, stride, block_size)
    frame = pd.DataFrame({"block_row": block_row, "block_col": block_col})
    if len(frame) == 0:
        frame["split"] = pd.Series([], dtype=object)
        return frame
    keys = pd.MultiIndex.from_arrays([block_row, block_col])
    codes, uniques = pd.factorize(keys, sort=True)
    if class_counts is not None:
        counts = np.asarray(class_counts, dtype=np.float64)
        weights = np.zeros((len(uniques), counts.shape[1]))
        np.add.at(weights, codes, counts)
    else:
        weights = np.bincount(codes, minlength=len(uniques)).astype(np.float64)
    frame["split"] = assign_blocks(weights, ratios, seed)[codes]
    return frame
