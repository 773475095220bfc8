"""Cloud/shadow gap-fill by ordinary kriging in local neighbourhoods (building-use paper).

The paper fills the cloud and shadow gaps of VHR imagery by ordinary kriging. Per gap
(a connected component of the mask, 8-connected) and per band:

1. the neighbourhood: valid pixels within ``ring`` pixels of the gap, at most
   ``max_points`` of them (a seeded random subset; ours);
2. the empirical semivariogram of the neighbourhood's standardised values (gstools
   ``vario_estimate``, 12 bins up to half the neighbourhood's diameter; ours) and a fit
   of each model in ``models`` (spherical, exponential, Gaussian, each with a nugget of
   at least 0.1 % of the variance); the model with the best R2 is used (the paper says
   the model is chosen by fit, not how: ours);
3. ordinary kriging (gstools ``krige.Ordinary``) at the gap's pixels; a fit whose
   predictions leave the neighbours' range by more than that range (a degenerate
   system) gives way to the next-best model (ours).

A gap with fewer than ``min_points`` valid neighbours, or a constant neighbourhood, is
filled with their mean (ours); a gap without any valid neighbour in reach stays as it was
(nodata, or the original pixel when the input has no nodata) and is counted as unfilled.
The baselines of docs/prep.md use the same neighbourhoods: ``mean``, ``idw`` (inverse
distance, power 2) and ``linear`` (Delaunay linear interpolation, nearest outside the
hull).

Windowed: each block is read with a margin of ``ring`` pixels, and a gap is filled from
the neighbours inside that margin, so a gap larger than a block is filled from the
pixels around its part in each block (ours).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator
from threadpoolctl import threadpool_limits

from landforge.io.raster import (
    RasterGrid,
    StagedCOG,
    bounded_read_cache,
    check_same_grid,
    open_raster,
)
from landforge.prep.options import GapfillOptions
from landforge.prep.windows import check_bands, padded_window, strips

__all__ = ["fill_gaps_array", "gapfill", "krige_gap"]

_EIGHT = np.ones((3, 3), bool)


def _fit_models(
    pos: tuple[np.ndarray, np.ndarray], vals: np.ndarray, models: list[str]
) -> list[tuple[Any, str]]:
    """The variogram models that fit ``vals`` at ``pos``, best R2 first (empty if none)."""
    import gstools as gs  # function-local: gstools is only needed when kriging runs

    classes = {"spherical": gs.Spherical, "exponential": gs.Exponential, "gaussian": gs.Gaussian}
    extent = float(np.hypot(np.ptp(pos[0]), np.ptp(pos[1])))
    if extent <= 0:
        return []
    edges = np.linspace(0.0, max(extent / 2.0, 2.0), 13)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        centres, gamma = gs.vario_estimate(pos, vals, edges)
    ok = np.isfinite(gamma)
    if ok.sum() < 3:
        return []
    fits: list[tuple[float, Any, str]] = []
    for name in models:
        model = classes[name](dim=2)
        # values are standardised (variance 1): bounds keep a fit from running off to a
        # huge sill or range, and a nugget floor keeps the kriging system well posed (a
        # Gaussian model without nugget is numerically singular); ours
        model.set_arg_bounds(var=[0.0, 10.0], len_scale=[1e-3, 4 * extent + 1])
        model.set_arg_bounds(nugget=[1e-3, 10.0])
        model.nugget = 1e-2
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, _, r2 = model.fit_variogram(
                    centres[ok], gamma[ok], nugget=True, return_r2=True, max_eval=400
                )
        except (RuntimeError, ValueError):
            continue
        if np.isfinite(r2):
            fits.append((float(r2), model, name))
    fits.sort(key=lambda f: -f[0])
    return [(m, n) for _, m, n in fits]


def krige_gap(
    points: np.ndarray,
    vals: np.ndarray,
    targets: np.ndarray,
    models: list[str],
) -> tuple[np.ndarray, str]:
    """Ordinary-kriging predictions at ``targets`` from ``vals`` at ``points``.

    Args:
        points: (n, 2) row, col of the valid neighbours.
        vals: (n,) their values.
        targets: (m, 2) row, col of the gap pixels.
        models: variogram models to try (best R2 wins).

    Returns:
        (m,) predictions and the model used: ``"mean"`` when the neighbourhood is
        constant or no model fits; the next-best model when a fit gives predictions
        beyond the neighbours' range by more than that range (a degenerate system).
    """
    if np.ptp(vals) == 0:
        return np.full(len(targets), float(vals[0])), "mean"
    # one BLAS thread: a multi-threaded inverse of these small systems is ~20x slower
    # on a busy machine (thread start-up and contention dominate)
    with threadpool_limits(1):
        return _krige(points, vals, targets, models)


def _krige(
    points: np.ndarray, vals: np.ndarray, targets: np.ndarray, models: list[str]
) -> tuple[np.ndarray, str]:
    import gstools as gs  # function-local: gstools is only needed when kriging runs

    pos = (points[:, 0].astype(float), points[:, 1].astype(float))
    span = float(np.ptp(vals))
    lo, hi = float(vals.min()) - span, float(vals.max()) + span
    # standardised values: one set of variogram bounds fits any band's units
    centre, scale = float(vals.mean()), float(vals.std())
    z = (vals.astype(float) - centre) / scale
    for model, name in _fit_models(pos, z, models):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # a direct solve (the nugget floor keeps it well posed): gstools' default
            # pseudo-inverse costs several times more
            krig = gs.krige.Ordinary(model, pos, z, pseudo_inv=False)
            pred = np.asarray(
                krig(
                    (targets[:, 0].astype(float), targets[:, 1].astype(float)),
                    return_var=False,
                    store=False,
                ),
                float,
            )
            pred = pred * scale + centre
        if np.isfinite(pred).all() and pred.min() >= lo and pred.max() <= hi:
            return pred, name
    return np.full(len(targets), float(vals.mean())), "mean"


def _baseline(method: str, points: np.ndarray, vals: np.ndarray, targets: np.ndarray) -> np.ndarray:
    if method == "mean":
        return np.full(len(targets), float(vals.mean()))
    if method == "idw":
        d2 = ((targets[:, None, :] - points[None, :, :]) ** 2).sum(-1).astype(float)
        w = 1.0 / np.maximum(d2, 1e-12)  # power 2 on the distance
        return (w * vals[None]).sum(1) / w.sum(1)
    # linear: Delaunay triangles, nearest neighbour outside their hull
    try:
        pred = LinearNDInterpolator(points.astype(float), vals)(targets.astype(float))
    except Exception:  # qhull: collinear or too few points
        pred = np.full(len(targets), np.nan)
    missing = ~np.isfinite(pred)
    if missing.any():
        pred[missing] = NearestNDInterpolator(points.astype(float), vals)(
            targets[missing].astype(float)
        )
    return np.asarray(pred, float)


def fill_gaps_array(
    image: np.ndarray,
    gap: np.ndarray,
    valid: np.ndarray,
    core: tuple[slice, slice] | None = None,
    opts: GapfillOptions | None = None,
    *,
    origin: tuple[int, int] = (0, 0),
    stats: Counter[str] | None = None,
    **overrides: Any,
) -> np.ndarray:
    """Fill the ``gap`` pixels of ``image`` (bands, rows, cols) from the ``valid`` pixels.

    Args:
        image: pixel values; returned as float64 with the gap pixels predicted.
        gap: (rows, cols) bool, the pixels to fill.
        valid: (rows, cols) bool, the pixels that may condition a prediction.
        core: the part of the array whose gap pixels are filled (default all).
        opts: :class:`GapfillOptions` (method, models, ring, max_points, min_points).
        origin: row, col of the array in the raster: seeds the neighbour subsample so
            that a gap is filled the same whatever the window.
        stats: counts updated in place (gaps, pixels, models used, unfilled pixels).
        **overrides: fields of :class:`GapfillOptions`.

    Returns:
        float64 (bands, rows, cols); unfilled gap pixels are NaN.
    """
    o = GapfillOptions.build(opts, **overrides)
    stats = stats if stats is not None else Counter()
    out = np.asarray(image, np.float64).copy()
    core = core or (slice(0, gap.shape[0]), slice(0, gap.shape[1]))
    in_core = np.zeros(gap.shape, bool)
    in_core[core] = True
    labels, _ = ndimage.label(gap, structure=_EIGHT)
    with threadpool_limits(1):  # small systems: one BLAS thread is much faster
        for k, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is not None:
                _fill_one(out, labels, k, box, gap, valid, in_core, o, origin, stats)
    return out


def _fill_one(
    out: np.ndarray,
    labels: np.ndarray,
    k: int,
    box: tuple[slice, slice],
    gap: np.ndarray,
    valid: np.ndarray,
    in_core: np.ndarray,
    o: GapfillOptions,
    origin: tuple[int, int],
    stats: Counter[str],
) -> None:
    """Fill gap ``k`` (bounding box ``box``) of ``out`` in place, for every band."""
    grown = tuple(
        slice(max(0, s.start - o.ring), min(n, s.stop + o.ring))
        for s, n in zip(box, gap.shape, strict=True)
    )
    comp = labels[grown] == k
    targets_mask = comp & in_core[grown]
    if not targets_mask.any():
        return
    near = ndimage.binary_dilation(comp, structure=_EIGHT, iterations=o.ring)
    ring = near & valid[grown] & ~gap[grown]
    offset = np.array([grown[0].start, grown[1].start])
    targets = np.argwhere(targets_mask) + offset
    points = np.argwhere(ring) + offset
    stats["gaps"] += 1
    stats["gap_pixels"] += len(targets)
    if not len(points):
        out[:, targets[:, 0], targets[:, 1]] = np.nan
        stats["unfilled_pixels"] += len(targets)
        return
    if len(points) > o.max_points:
        first = (int(targets[0, 0]) + origin[0], int(targets[0, 1]) + origin[1])
        rng = np.random.default_rng([o.seed, *first])
        points = points[np.sort(rng.choice(len(points), o.max_points, replace=False))]
    for b in range(out.shape[0]):
        vals = out[b, points[:, 0], points[:, 1]]
        used: str
        if o.method != "kriging":
            pred, used = _baseline(o.method, points, vals, targets), o.method
        elif len(points) < o.min_points:
            pred, used = np.full(len(targets), float(vals.mean())), "mean"
        else:
            pred, used = krige_gap(points, vals, targets, list(o.models))
        out[b, targets[:, 0], targets[:, 1]] = pred
        stats[f"model_{used}"] += 1


def gapfill(
    src_path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    opts: GapfillOptions | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Fill the masked pixels of ``src_path`` into the COG ``out_path``, window by window.

    Args:
        src_path: the image.
        mask_path: cloud/shadow mask on the image's grid; non-zero pixels are filled.
        out_path: output COG: the bands in ``bands`` (default all), input data type.
        opts: :class:`GapfillOptions`.
        **overrides: fields of :class:`GapfillOptions`.

    Returns:
        Summary: gaps, gap pixels, unfilled pixels, variogram models used.

    Raises:
        InputError: unreadable files, a mask on another grid.
        OptionError: a band that does not exist.
    """
    o = GapfillOptions.build(opts, **overrides)
    check_same_grid(src_path, mask_path)
    stats: Counter[str] = Counter()
    with bounded_read_cache(), open_raster(src_path) as src, open_raster(mask_path) as msk:
        grid = RasterGrid(src.crs, src.transform, src.width, src.height)
        bands = check_bands(o.bands, src.count)
        dtype = np.dtype(src.dtypes[0])
        names = [src.descriptions[b - 1] or "" for b in bands]
        staged = StagedCOG(
            out_path,
            grid,
            len(bands),
            dtype,
            src.nodata,
            descriptions=names if any(names) else None,
            tags={"gapfill": o.method},
        )
        try:
            for row in strips(grid, o.block):
                strip = np.empty((len(bands), int(row[0].height), grid.width), dtype)
                for window in row:
                    read, core = padded_window(window, o.ring, grid)
                    image = src.read(indexes=bands, window=read)
                    gap = msk.read(1, window=read) != 0
                    valid = _valid(image, src.nodata)
                    origin = (int(read.row_off), int(read.col_off))
                    filled = fill_gaps_array(image, gap, valid, core, o, origin=origin, stats=stats)
                    col = slice(int(window.col_off), int(window.col_off + window.width))
                    strip[:, :, col] = _cast(
                        filled[(slice(None), *core)], image[(slice(None), *core)], dtype, src.nodata
                    )
                staged.write(strip, int(row[0].row_off))
            staged.finish()
        except BaseException:
            staged.abort()
            raise
    return {
        "method": o.method,
        "gaps": int(stats["gaps"]),
        "gap_pixels": int(stats["gap_pixels"]),
        "unfilled_pixels": int(stats["unfilled_pixels"]),
        "models": {k[6:]: int(v) for k, v in sorted(stats.items()) if k.startswith("model_")},
        "out": str(Path(out_path)),
    }


def _valid(image: np.ndarray, nodata: float | None) -> np.ndarray:
    valid = (
        np.all(np.isfinite(image), axis=0)
        if image.dtype.kind == "f"
        else np.ones(image.shape[1:], bool)
    )
    if nodata is not None and not np.isnan(nodata):
        valid &= ~np.all(image == nodata, axis=0)
    return valid


def _cast(
    filled: np.ndarray, original: np.ndarray, dtype: np.dtype[Any], nodata: float | None
) -> np.ndarray:
    """``filled`` in ``dtype``: rounded and clipped for integers; unfilled -> nodata/original."""
    out = filled.copy()
    missing = ~np.isfinite(out)
    if missing.any():
        out[missing] = nodata if nodata is not None else original[missing]
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        out = np.clip(np.round(out), info.min, info.max)
    return out.astype(dtype)
