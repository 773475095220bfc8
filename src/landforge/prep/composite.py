"""Band composites with a percentile stretch to uint8 (UBGG false-colour mosaics).

UBGG builds standard false-colour (NIR-R-G) mosaics for interpretation. A composite
here is the bands in ``bands`` in that order, each stretched linearly so that its
``percentiles`` (p2 and p98 by default) map to 1 and 255, clipped; 0 is nodata (input
nodata or NaN). The percentiles are computed once per band on a sample of the whole
raster (:func:`~landforge.prep.windows.sample_windows`), never per window, so the
mosaic has no seams between windows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from landforge.io.raster import RasterGrid, StagedCOG, bounded_read_cache, open_raster
from landforge.prep.options import CompositeOptions
from landforge.prep.windows import check_bands, sample_percentiles, sample_windows, strips

__all__ = ["composite", "stretch_to_uint8"]


def stretch_to_uint8(values: np.ndarray, valid: np.ndarray, low: float, high: float) -> np.ndarray:
    """``low``..``high`` -> 1..255 (clipped), invalid pixels 0."""
    span = high - low if high > low else 1.0
    scaled = 1.0 + (np.asarray(values, np.float64) - low) / span * 254.0
    out = np.clip(np.round(np.nan_to_num(scaled, nan=0.0)), 1, 255).astype(np.uint8)
    out[~valid] = 0
    return out


def _valid(arr: np.ndarray, nodata: float | None) -> np.ndarray:
    valid = np.isfinite(arr) if arr.dtype.kind == "f" else np.ones(arr.shape, bool)
    if nodata is not None and not np.isnan(nodata):
        valid &= arr != nodata
    return valid


def composite(
    src_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    opts: CompositeOptions | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Write the uint8 composite of ``src_path`` to the COG ``out_path``, window by window.

    Args:
        src_path: the image.
        out_path: output COG, uint8, one band per entry of ``bands``, nodata 0.
        opts: :class:`CompositeOptions`.
        **overrides: fields of :class:`CompositeOptions`.

    Returns:
        Summary: bands and the low/high value of each (the sampled percentiles).

    Raises:
        InputError: an unreadable input.
        OptionError: a band that does not exist.
    """
    o = CompositeOptions.build(opts, **overrides)
    with bounded_read_cache(), open_raster(src_path) as src:
        grid = RasterGrid(src.crs, src.transform, src.width, src.height)
        bands = check_bands(o.bands, src.count)
        samples: list[list[np.ndarray]] = [[] for _ in bands]
        for window in sample_windows(grid, o.sample_pixels):
            arr = src.read(indexes=bands, window=window)
            for i in range(len(bands)):
                ok = _valid(arr[i], src.nodata)
                samples[i].append(arr[i][ok].astype(np.float64))
        limits = [sample_percentiles(np.concatenate(s), *o.percentiles) for s in samples]
        names = [src.descriptions[b - 1] or f"band{b}" for b in bands]
        tags = {
            "stretch": f"p{o.percentiles[0]:g}-p{o.percentiles[1]:g} -> 1-255",
            "source_bands": ",".join(str(b) for b in bands),
        }
        staged = StagedCOG(out_path, grid, len(bands), np.uint8, 0, names, tags=tags)
        try:
            for row in strips(grid, o.block):
                strip = np.zeros((len(bands), int(row[0].height), grid.width), np.uint8)
                for window in row:
                    arr = src.read(indexes=bands, window=window)
                    col = slice(int(window.col_off), int(window.col_off + window.width))
                    for i, (lo, hi) in enumerate(limits):
                        strip[i, :, col] = stretch_to_uint8(
                            arr[i], _valid(arr[i], src.nodata), lo, hi
                        )
                staged.write(strip, int(row[0].row_off))
            staged.finish()
        except BaseException:
            staged.abort()
            raise
    return {
        "bands": bands,
        "names": names,
        "limits": [
            {"band": b, "low": lo, "high": hi} for b, (lo, hi) in zip(bands, limits, strict=True)
        ],
        "out": str(Path(out_path)),
    }
