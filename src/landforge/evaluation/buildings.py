"""Building-level evaluation of a building-use map (``evaluate --buildings``).

The building-use paper scores buildings, not pixels: each building's predicted use is
the majority of the predicted use pixels inside its footprint. This module does the
same beside the pixel metrics of :mod:`landforge.evaluation.evaluate`:

- **true footprints**: for every true building (``--buildings``, use in ``--use-col``)
  the predicted use is the majority of the map's use pixels whose centre lies inside
  it; background, nodata and ``ignore`` pixels do not vote. A building with no use
  pixel at all (the map missed it) is predicted as *background*: an error that lowers
  recall and kappa rather than a building left out. A footprint smaller than a pixel
  (no pixel centre inside) takes the pixel under its representative point.
- **predicted buildings** (``--pred-buildings``, e.g. from ``landforge vectorize``):
  each is given the majority use of the map inside it and matched one-to-one to a true
  building at IoU >= ``match_iou`` (greedy, highest IoU first); matched pairs are
  scored like the true footprints, and the detection counts (precision, recall, F1 of
  the matching) are reported beside them.

Per class: precision, recall, F1 and one-vs-rest accuracy (the paper's "accuracy");
overall: accuracy and Cohen's kappa, beside a majority baseline (every building the
most frequent true use), all from one :class:`~landforge.evaluation.confusion.ConfusionMatrix`.
With ``--split-blocks``/``--mask`` only buildings whose representative point lies in
the region count (:mod:`landforge.evaluation.regions`).

Background is the class named ``background`` (any case) of the class list, else value 0.
Ties between uses go to the lowest class value (ours).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from landforge.errors import InputError, OptionError
from landforge.evaluation.confusion import ConfusionMatrix
from landforge.evaluation.regions import Region
from landforge.io.raster import RasterGrid, check_same_grid, iter_blocks, open_raster, read_grid

__all__ = [
    "BuildingUses",
    "building_probabilities",
    "building_uses",
    "evaluate_buildings",
    "match_buildings",
    "soft_uses",
]


@dataclass
class BuildingUses:
    """Predicted use per building (``background`` where no use pixel was inside).

    Attributes:
        pred: predicted class value per building.
        pixels: number of use pixels that voted per building.
    """

    pred: np.ndarray
    pixels: np.ndarray


def _footprint_pixels(
    src: Any, grid: RasterGrid, geoms: np.ndarray, bands: list[int], block: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(building index, pixel values (n, len(bands))) of the pixels inside each polygon.

    A pixel belongs to the polygon holding its centre (the first one drawn where they
    overlap). A footprint smaller than a pixel (no centre inside) gets the pixel under
    its representative point; one outside the grid gets nothing.
    """
    import shapely
    from rasterio.features import rasterize
    from shapely.geometry import box

    covered = np.zeros(len(geoms), bool)
    tree = shapely.STRtree(geoms)
    for window in iter_blocks(grid, block):
        sub = grid.window_grid(window)
        hits = tree.query(box(*sub.bounds), predicate="intersects")
        if not len(hits):
            continue
        idx = rasterize(
            ((geoms[i], int(i) + 1) for i in hits),
            out_shape=sub.shape,
            transform=sub.transform,
            fill=0,
            dtype="int32",
        )
        inside = idx > 0
        if not inside.any():
            continue
        covered[idx[inside] - 1] = True
        yield idx[inside] - 1, src.read(bands, window=window)[:, inside].T
    small = np.flatnonzero(~covered)
    if len(small):
        pts = shapely.get_coordinates(shapely.point_on_surface(geoms[small]))
        rows, cols = rowcol(grid, pts[:, 0], pts[:, 1])
        on = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
        for i, r, c in zip(small[on], rows[on], cols[on], strict=True):
            v = src.read(bands, window=((int(r), int(r) + 1), (int(c), int(c) + 1)))
            yield np.array([i]), v[:, 0, 0][None, :]


def _valid(p: np.ndarray, nodata: float | None) -> np.ndarray:
    """Pixels that are neither nodata nor NaN."""
    ok = np.ones(p.shape, bool)
    if nodata is not None and not np.isnan(nodata):
        ok &= p != nodata
    if p.dtype.kind == "f":
        ok &= np.isfinite(p)
    return ok


def building_uses(
    raster: str | os.PathLike[str],
    geoms: np.ndarray,
    use_values: list[int],
    background: int,
    *,
    band: int = 1,
    ignore: list[int] | tuple[int, ...] = (),
    block: int = 1024,
) -> BuildingUses:
    """Majority of the use pixels of ``raster`` inside each polygon of ``geoms``.

    Args:
        raster: the predicted class map.
        geoms: footprints in the raster's CRS (shapely array).
        use_values: the class values that vote (every other value is left out).
        background: the value given to a polygon with no voting pixel.
        band: 1-based band of the map.
        ignore: values that never vote (in addition to the map's nodata).
        block: block size of the windowed read.

    Returns:
        :class:`BuildingUses` in the order of ``geoms``.
    """
    values = np.asarray(sorted(set(use_values) - set(ignore)), np.int64)
    n, k = len(geoms), len(values)
    if not k:  # nothing can vote
        return BuildingUses(np.full(n, background, np.int64), np.zeros(n, np.int64))
    votes = np.zeros((n, k), np.int64)
    grid = read_grid(raster, require_crs=False)
    with open_raster(raster) as src:
        nodata = src.nodatavals[band - 1]
        for b, px in _footprint_pixels(src, grid, geoms, [band], block):
            p = px[:, 0]
            ok = _valid(p, nodata)
            col = np.searchsorted(values, np.where(ok, p, 0).astype(np.int64)).clip(0, k - 1)
            ok &= values[col] == p
            np.add.at(votes, (b[ok], col[ok]), 1)
    n_votes = votes.sum(axis=1)
    pred = np.where(n_votes > 0, values[votes.argmax(axis=1)], background)
    return BuildingUses(pred.astype(np.int64), n_votes)


def building_probabilities(
    probs: str | os.PathLike[str],
    geoms: np.ndarray,
    bands: list[int],
    *,
    block: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each of ``bands`` of a probability raster inside each polygon.

    Pixels where any of the bands is nodata or NaN are left out.

    Returns:
        (means (n, len(bands)), NaN for a polygon without a valid pixel; pixel counts).
    """
    grid = read_grid(probs, require_crs=False)
    sums = np.zeros((len(geoms), len(bands)))
    counts = np.zeros(len(geoms), np.int64)
    with open_raster(probs) as src:
        nodata = src.nodatavals[bands[0] - 1]
        for b, px in _footprint_pixels(src, grid, geoms, bands, block):
            ok = _valid(px, nodata).all(axis=1)
            np.add.at(sums, b[ok], px[ok].astype(np.float64))
            np.add.at(counts, b[ok], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None], counts


def rowcol(grid: RasterGrid, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the pixels holding the points (x, y) (may be outside the grid)."""
    cols, rows = ~grid.transform * (np.asarray(x, float), np.asarray(y, float))
    return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)


def match_buildings(
    pred: np.ndarray, truth: np.ndarray, min_iou: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matches of predicted to true polygons at IoU >= ``min_iou``.

    Greedy by IoU (highest first; ties by index), so the result does not depend on the
    order of either array beyond ties.

    Returns:
        (pred index, truth index, IoU) of each matched pair.
    """
    import shapely

    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if not len(pred) or not len(truth):
        return empty
    p_idx, t_idx = shapely.STRtree(truth).query(pred, predicate="intersects")
    if not len(p_idx):
        return empty
    inter = shapely.area(shapely.intersection(pred[p_idx], truth[t_idx]))
    union = shapely.area(pred[p_idx]) + shapely.area(truth[t_idx]) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    keep = iou >= min_iou
    p_idx, t_idx, iou = p_idx[keep], t_idx[keep], iou[keep]
    order = np.lexsort((t_idx, p_idx, -iou))
    used_p: set[int] = set()
    used_t: set[int] = set()
    out = []
    for o in order:
        a, b = int(p_idx[o]), int(t_idx[o])
        if a in used_p or b in used_t:
            continue
        used_p.add(a)
        used_t.add(b)
        out.append(o)
    sel = np.asarray(out, np.int64)
    return p_idx[sel], t_idx[sel], iou[sel]


def _classes(
    labels: list[int] | None, names: list[str] | None, truth: Any, path: Path
) -> tuple[list[int], list[str], int]:
    """(values, names, background value) of the building classes."""
    if labels is None:
        if truth.dtype.kind in "OUS":
            raise OptionError(
                "classes",
                f"building uses in {path.name} are text: give classes (e.g. "
                "'0=background,1=residential,...') or taxonomy naming the map's values",
            )
        vals = sorted({0, *(int(v) for v in truth)})
        return vals, [str(v) for v in vals], 0
    bg = [v for v, nm in zip(labels, names or [], strict=False) if nm.lower() == "background"]
    background = bg[0] if bg else 0
    labels, names = list(labels), list(names or [str(v) for v in labels])
    if background not in labels:
        labels, names = [background, *labels], ["background", *names]
    return labels, names, background


def _truth_values(
    values: Any, labels: list[int], names: list[str], path: Path, use_col: str
) -> np.ndarray:
    """The true use column as class values (text is matched to the class names)."""
    import pandas as pd

    if pd.isna(values).any():
        raise InputError(
            path, f"column {use_col!r} has {int(pd.isna(values).sum())} empty value(s)"
        )
    if values.dtype.kind in "OUS":
        lookup = dict(zip(names, labels, strict=True))
        unknown = sorted({str(v) for v in values} - set(lookup))
        if unknown:
            raise InputError(
                path, f"use(s) {', '.join(unknown[:10])} in {use_col!r} are not class names"
            )
        return np.array([lookup[str(v)] for v in values], np.int64)
    out = np.asarray(values).astype(np.int64)
    unknown = sorted(set(out.tolist()) - set(labels))
    if unknown:
        raise InputError(path, f"value(s) {unknown[:10]} in {use_col!r} are not class values")
    return out


def soft_uses(
    probs: str | os.PathLike[str],
    grid: RasterGrid,
    geoms: np.ndarray,
    labels: list[int],
    names: list[str],
    background: int,
    block: int = 1024,
) -> np.ndarray:
    """Per building the use whose probability band has the highest mean inside it.

    The bands are found by their descriptions (the class names, any case, as ``predict
    --probs`` writes them); a background band does not compete. A building without a
    valid probability pixel is predicted as background.
    """
    path = Path(probs)
    check_same_grid(grid, path)
    with open_raster(path) as src:
        desc = [(d or "").strip().lower() for d in src.descriptions]
    uses = [(v, nm) for v, nm in zip(labels, names, strict=True) if v != background]
    missing = [nm for _, nm in uses if nm.lower() not in desc]
    if missing:
        have = ", ".join(d or "(none)" for d in desc)
        raise InputError(
            path,
            f"no probability band named {', '.join(missing)} (band descriptions: {have}); "
            "use the probabilities written by predict --probs with the same classes",
        )
    bands = [desc.index(nm.lower()) + 1 for _, nm in uses]
    means, counts = building_probabilities(path, geoms, bands, block=block)
    values = np.asarray([v for v, _ in uses], np.int64)
    best = np.nan_to_num(means, nan=-np.inf).argmax(axis=1)
    return np.where(counts > 0, values[best], background).astype(np.int64)


def _read_buildings(path: Path, grid: RasterGrid, columns: list[str]) -> Any:
    from landforge.io.vector import read_vector

    gdf = read_vector(path, require_crs=True, allow_empty=True)
    for col in columns:
        if col not in gdf.columns:
            have = ", ".join(str(c) for c in gdf.columns if c != "geometry")
            raise InputError(path, f"column {col!r} not found (columns: {have})")
    if grid.crs is not None and gdf.crs != grid.crs:
        gdf = gdf.to_crs(grid.crs)
    keep = ~(gdf.geometry.isna() | gdf.geometry.is_empty).to_numpy()
    return gdf[keep]


def evaluate_buildings(
    pred: str | os.PathLike[str],
    buildings: str | os.PathLike[str],
    *,
    use_col: str = "use",
    labels: list[int] | None = None,
    names: list[str] | None = None,
    pred_buildings: str | os.PathLike[str] | None = None,
    match_iou: float = 0.5,
    region: Region | None = None,
    band: int = 1,
    ignore: list[int] | tuple[int, ...] = (),
    block: int = 1024,
    probs: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Building-level scores of a class map (the ``buildings`` entry of the metrics).

    Args:
        pred: the predicted class raster.
        buildings: true footprints (any vector format, with a CRS) with ``use_col``.
        use_col: the column of true uses: class values, or class names of ``names``.
        labels: class values of the map (e.g. 0, 1, 2, 3), with ``names``; None: the
            values of ``use_col`` (numeric) and 0 as background.
        names: class names in the order of ``labels``.
        pred_buildings: predicted footprints (e.g. ``landforge vectorize`` output).
        match_iou: IoU a predicted building needs to match a true one.
        region: only buildings whose representative point lies inside (split, mask).
        band: 1-based band of the map.
        ignore: values that never vote.
        block: block size of the windowed read.
        probs: class probabilities on the map's grid (``predict --probs``, band
            descriptions = class names): also a *soft vote*, each true building the use
            with the highest mean probability inside it (``true_footprints_soft``).

    Returns:
        ``{"true_footprints": metrics, "true_footprints_soft": metrics or absent,
        "predicted_footprints": metrics or absent, ...}``,
        each a ``landforge-metrics/1`` summary over buildings.

    Raises:
        InputError: a missing file or column, buildings or map without a CRS, uses
            that are not classes.
        OptionError: text uses without class names.
    """
    pred, buildings = Path(pred), Path(buildings)
    grid = read_grid(pred, require_crs=False)
    if grid.crs is None:
        raise InputError(pred, "raster has no CRS: the buildings cannot be placed on it")
    truth = _read_buildings(buildings, grid, [use_col])
    if region is not None:
        truth = truth[region.rows_inside(truth, buildings)]
    labels, names, background = _classes(labels, names, truth[use_col].to_numpy(), buildings)
    t_val = _truth_values(truth[use_col].to_numpy(), labels, names, buildings, use_col)
    uses = [v for v in labels if v != background]
    geoms = np.asarray(truth.geometry.values)
    got = building_uses(pred, geoms, uses, background, band=band, ignore=ignore, block=block)

    def score(t: np.ndarray, p: np.ndarray, task: str) -> dict[str, Any]:
        cm = ConfusionMatrix(labels, names)
        cm.update(t, p)
        m = cm.summary(task=task)
        m["n_no_use_predicted"] = int((p == background).sum())
        for key in ("ignore", "n_ignored", "n_unpredicted", "conventions"):
            m.pop(key, None)
        return m

    out: dict[str, Any] = {
        "buildings": str(buildings),
        "use_col": use_col,
        "background": {"value": background, "name": names[labels.index(background)]},
        "voting": "majority of the predicted use pixels inside each footprint "
        "(background and nodata do not vote; no vote = background)",
        "true_footprints": score(t_val, got.pred, "building use (true footprints)"),
    }
    if probs is not None:
        soft = soft_uses(probs, grid, geoms, labels, names, background, block)
        out["true_footprints_soft"] = score(
            t_val, soft, "building use (true footprints, soft vote of the probabilities)"
        )
    if region is not None:
        out["evaluated_on"] = region.describe(len(truth), "buildings")
    if pred_buildings is not None:
        pb_path = Path(pred_buildings)
        pb = _read_buildings(pb_path, grid, [])
        if region is not None:
            pb = pb[region.rows_inside(pb, pb_path)]
        pgeoms = np.asarray(pb.geometry.values)
        p_use = building_uses(pred, pgeoms, uses, background, band=band, ignore=ignore, block=block)
        pi, ti, iou = match_buildings(pgeoms, geoms, match_iou)
        m = score(
            t_val[ti], p_use.pred[pi], f"building use (predicted footprints, IoU >= {match_iou:g})"
        )
        n_p, n_t, n_m = len(pb), len(truth), len(pi)
        prec = n_m / n_p if n_p else float("nan")
        rec = n_m / n_t if n_t else float("nan")
        m["detection"] = {
            "pred_buildings": str(pb_path),
            "min_iou": match_iou,
            "n_predicted": n_p,
            "n_true": n_t,
            "n_matched": n_m,
            "precision": prec,
            "recall": rec,
            "f1": 2 * prec * rec / (prec + rec) if n_m else 0.0,
            "mean_iou_matched": float(np.mean(iou)) if n_m else float("nan"),
        }
        out["predicted_footprints"] = m
    return out
