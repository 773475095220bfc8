"""Retinex illumination correction, windowed (building-use paper; multi-scale is ours).

The paper's single-scale Retinex: one smooth illumination field, a Gaussian smoothing of
the image's luminance (grey level), is subtracted in the log domain from every band::

    R_b = log(1 + I_b) - log(1 + G_sigma * Y)

so all bands share one illumination estimate and the band ratios (colour) are kept. The
paper is silent on three details; ours:

* the luminance ``Y`` is Rec.601 (0.299 R + 0.587 G + 0.114 B) of the bands given as
  ``rgb`` (default 1,2,3 for a 3-band image), the mean of all bands otherwise;
* the re-stretch back to the input's range: per band, the ``stretch`` percentiles
  (default 1 and 99) of ``R_b`` map linearly to the band's min and max, clipped, cast to
  the input's data type; both are taken from one sample of the whole raster
  (:func:`~landforge.prep.windows.sample_windows`), never per window;
* nodata pixels are left out of the smoothing (normalised convolution) and stay nodata.

Multi-scale Retinex (``multiscale``, *not in the paper*): per band, the mean over the
sigmas of ``log(1 + I_b) - log(1 + G_sigma * I_b)`` (Jobson et al. 1997, equal weights).

Windows are read with a margin of ``truncate`` sigmas, the radius of the Gaussian kernel,
so the windowed output equals the whole-image output.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from landforge.errors import OptionError
from landforge.io.raster import RasterGrid, StagedCOG, bounded_read_cache, open_raster
from landforge.prep.options import RetinexOptions
from landforge.prep.windows import (
    check_bands,
    padded_window,
    sample_percentiles,
    sample_windows,
    strips,
)

__all__ = ["retinex", "retinex_array"]

_REC601 = np.array([0.299, 0.587, 0.114])


def _smooth(values: np.ndarray, valid: np.ndarray, sigma: float, truncate: float) -> np.ndarray:
    """Gaussian smoothing of ``values`` over the ``valid`` pixels (normalised convolution)."""
    num = gaussian_filter(np.where(valid, values, 0.0), sigma, truncate=truncate, mode="reflect")
    den = gaussian_filter(valid.astype(np.float64), sigma, truncate=truncate, mode="reflect")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, num / np.maximum(den, 1e-12), np.nan)


def _luminance_weights(count: int, rgb: list[int] | None) -> np.ndarray:
    """Weights of each band in the luminance: Rec.601 on R,G,B, else the band mean."""
    weights = np.zeros(count)
    if rgb is None and count == 3:
        rgb = [1, 2, 3]
    if rgb is None:
        weights[:] = 1.0 / count
    else:
        for band, w in zip(rgb, _REC601, strict=True):
            weights[band - 1] += w
    return weights


def retinex_array(
    image: np.ndarray,
    valid: np.ndarray,
    opts: RetinexOptions | None = None,
    **overrides: Any,
) -> np.ndarray:
    """The log-domain Retinex output of ``image`` (bands, rows, cols), before re-stretch.

    Args:
        image: pixel values, any numeric type (non-negative: reflectance, digital numbers).
        valid: (rows, cols) bool, False at nodata pixels (they come back NaN).
        opts: :class:`RetinexOptions` (sigma, multiscale, truncate, rgb).
        **overrides: fields of :class:`RetinexOptions`.

    Returns:
        float64 (bands, rows, cols): ``log(1 + I_b) - log(1 + illumination)``.
    """
    o = RetinexOptions.build(opts, **overrides)
    data = np.clip(np.asarray(image, np.float64), 0.0, None)
    log_data = np.log1p(data)
    out = np.empty_like(data)
    if o.multiscale:  # not in the paper: per band, several sigmas, equal weights
        for b in range(data.shape[0]):
            acc = np.zeros(data.shape[1:])
            for sigma in o.multiscale:
                acc += log_data[b] - np.log1p(_smooth(data[b], valid, sigma, o.truncate))
            out[b] = acc / len(o.multiscale)
    else:  # the paper: one illumination field from the luminance, every band
        weights = _luminance_weights(data.shape[0], o.rgb)
        lum = np.tensordot(weights, data, axes=1)
        log_illum = np.log1p(_smooth(lum, valid, o.sigma, o.truncate))
        out = log_data - log_illum[None]
    out[:, ~valid] = np.nan
    return out


def _valid_mask(arr: np.ndarray, nodata: float | None) -> np.ndarray:
    valid = (
        np.all(np.isfinite(arr), axis=0) if arr.dtype.kind == "f" else np.ones(arr.shape[1:], bool)
    )
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        valid &= ~np.all(arr == nodata, axis=0)
    return valid


def _block(
    src: Any, window: Any, margin: int, grid: RasterGrid, o: RetinexOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input, validity and Retinex output of the core of ``window`` (read with a margin)."""
    read, core = padded_window(window, margin, grid)
    arr = src.read(window=read)
    valid = _valid_mask(arr, src.nodata)
    out = retinex_array(arr, valid, o)
    return arr[(slice(None), *core)], valid[core], out[(slice(None), *core)]


def _check_sigma(o: RetinexOptions, grid: RasterGrid) -> None:
    field = "multiscale" if o.multiscale else "sigma"
    side = min(grid.width, grid.height)
    if max(o.sigmas()) > side:
        raise OptionError(
            field,
            f"sigma {max(o.sigmas()):g} px is larger than the raster "
            f"({grid.width} x {grid.height} px); use a sigma below {side}",
        )


def retinex(
    src_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    opts: RetinexOptions | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Retinex-correct ``src_path`` into the COG ``out_path``, window by window.

    Args:
        src_path: the image (any number of bands).
        out_path: output COG, same grid, bands and data type as the input.
        opts: :class:`RetinexOptions`.
        **overrides: fields of :class:`RetinexOptions`.

    Returns:
        Summary: sigmas, margin, windows, the per-band stretch (Retinex percentiles and
        the input range they map to), sampled pixels.

    Raises:
        InputError: an unreadable input.
        OptionError: a sigma larger than the raster, an ``rgb`` band that does not exist.
    """
    o = RetinexOptions.build(opts, **overrides)
    with bounded_read_cache(), open_raster(src_path) as src:
        grid = RasterGrid(src.crs, src.transform, src.width, src.height)
        _check_sigma(o, grid)
        if o.rgb is not None:
            check_bands(o.rgb, src.count, "rgb")
        margin = int(math.ceil(o.truncate * max(o.sigmas())))
        dtype = np.dtype(src.dtypes[0])
        # global statistics, from a sample of the whole raster (not per window)
        inputs, outputs = [], []
        for window in sample_windows(grid, o.sample_pixels):
            arr, valid, out = _block(src, window, margin, grid, o)
            inputs.append(arr[:, valid].astype(np.float64))
            outputs.append(out[:, valid])
        sample_in = np.concatenate(inputs, axis=1)
        sample_out = np.concatenate(outputs, axis=1)
        stats = []
        for b in range(src.count):
            lo, hi = sample_percentiles(sample_out[b], *o.stretch)
            vmin = float(sample_in[b].min()) if sample_in.shape[1] else 0.0
            vmax = float(sample_in[b].max()) if sample_in.shape[1] else 0.0
            stats.append((lo, hi, vmin, vmax))
        staged = StagedCOG(
            out_path,
            grid,
            src.count,
            dtype,
            src.nodata,
            descriptions=_descriptions(src),
            tags={"retinex_sigmas": ",".join(f"{s:g}" for s in o.sigmas())},
        )
        n_windows = 0
        try:
            for row in strips(grid, o.block):
                height = int(row[0].height)
                strip = np.empty((src.count, height, grid.width), dtype)
                for window in row:
                    _, valid, out = _block(src, window, margin, grid, o)
                    col = slice(int(window.col_off), int(window.col_off + window.width))
                    strip[:, :, col] = _restretch(out, valid, stats, dtype, src.nodata)
                    n_windows += 1
                staged.write(strip, int(row[0].row_off))
            staged.finish()
        except BaseException:
            staged.abort()
            raise
    return {
        "sigmas": o.sigmas(),
        "multiscale": bool(o.multiscale),
        "margin_px": margin,
        "windows": n_windows,
        "sample_pixels": int(sample_in.shape[1]),
        "stretch": [
            {"band": b + 1, "retinex_low": lo, "retinex_high": hi, "min": vmin, "max": vmax}
            for b, (lo, hi, vmin, vmax) in enumerate(stats)
        ],
        "out": str(Path(out_path)),
    }


def _descriptions(src: Any) -> list[str] | None:
    names = list(src.descriptions or [])
    return [d or "" for d in names] if any(names) else None


def _restretch(
    out: np.ndarray,
    valid: np.ndarray,
    stats: list[tuple[float, float, float, float]],
    dtype: np.dtype[Any],
    nodata: float | None,
) -> np.ndarray:
    """Map each band's Retinex percentiles to the input's min..max, clipped, in ``dtype``."""
    result = np.empty(out.shape, np.float64)
    for b, (lo, hi, vmin, vmax) in enumerate(stats):
        span = hi - lo if np.isfinite(hi - lo) and hi > lo else 1.0
        scaled = vmin + (out[b] - (lo if np.isfinite(lo) else 0.0)) / span * (vmax - vmin)
        result[b] = np.clip(scaled, vmin, vmax)
    if dtype.kind in "iu":
        result = np.round(result)
    fill = nodata if nodata is not None else (np.nan if dtype.kind == "f" else 0)
    result[:, ~valid] = fill
    return result.astype(dtype)
