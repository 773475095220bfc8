"""The input stack of a chip store: image bands then extra bands, their names and stats.

A pixel is nodata when all (selected) bands of a source are nodata there (GDAL's
dataset-mask rule) or any band is NaN, in any source, as in inference.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from landforge.errors import InputError, OptionError
from landforge.io.raster import RasterGrid, iter_blocks, open_raster

__all__ = ["Sources", "band_stats", "read_stack", "stack_sources"]

_STATS_SAMPLE = 1_000_000  # pixels per band kept for the percentiles


@dataclass(frozen=True)
class Sources:
    """The rasters stacked into a chip's ``image`` and what is read from each.

    Attributes:
        paths: the image, then the extras.
        indexes: 1-based bands read from each path.
        band_names: one name per stacked band (descriptions, else ``b<n>`` for the
            image and the file stem for an extra), made unique.
        dtype: the common dtype of the stacked bands.
    """

    paths: list[Path]
    indexes: list[list[int]]
    band_names: list[str]
    dtype: np.dtype[Any]


def stack_sources(
    image: Path, extras: Sequence[Path], bands: Sequence[int] | None = None
) -> Sources:
    """The stack of ``image`` (its ``bands``, default all) and every band of ``extras``.

    Raises:
        OptionError: ``bands`` names a band the image does not have.
    """
    with open_raster(image) as src:
        n_image = src.count
    if bands is not None:
        bands = [int(b) for b in bands]
        bad = [b for b in bands if not 1 <= b <= n_image]
        if not bands or bad:
            raise OptionError(
                "bands", f"image {image.name} has bands 1..{n_image}; cannot use {bad or bands}"
            )
    paths = [image, *extras]
    indexes: list[list[int]] = [list(bands) if bands else list(range(1, n_image + 1))]
    for p in extras:
        with open_raster(p) as src:
            indexes.append(list(range(1, src.count + 1)))
    dtype = np.result_type(*[_dtype(p, ix) for p, ix in zip(paths, indexes, strict=True)])
    return Sources(paths, indexes, _band_names(paths, indexes), np.dtype(dtype))


def _dtype(path: Path, indexes: Sequence[int]) -> np.dtype[Any]:
    with open_raster(path) as src:
        return np.result_type(*[src.dtypes[b - 1] for b in indexes])


def _band_names(sources: Sequence[Path], indexes: Sequence[Sequence[int]]) -> list[str]:
    names: list[str] = []
    for i, (p, bands) in enumerate(zip(sources, indexes, strict=True)):
        with open_raster(p) as src:
            for b in bands:
                desc = src.descriptions[b - 1]
                name = desc or (f"b{b}" if i == 0 else f"{p.stem}_{b}" if src.count > 1 else p.stem)
                base, k = name, 2
                while name in names:
                    name, k = f"{base}_{k}", k + 1
                names.append(name)
    return names


def read_stack(
    sources: Sequence[Any], indexes: Sequence[Sequence[int]], window: Window
) -> tuple[np.ndarray, np.ndarray]:
    """(bands, rows, cols) stacked over open ``sources`` and the mask of valid pixels."""
    parts: list[np.ndarray] = []
    valid: np.ndarray | None = None
    for src, bands in zip(sources, indexes, strict=True):
        try:
            arr = src.read(list(bands), window=window, masked=True)
        except RasterioIOError as exc:
            raise InputError(src.name, f"cannot read pixels ({str(exc)[:200]})") from None
        mask = np.asarray(~np.ma.getmaskarray(arr).all(axis=0))
        if np.issubdtype(arr.dtype, np.floating):
            mask &= ~np.isnan(np.ma.getdata(arr)).any(axis=0)
        valid = mask if valid is None else valid & mask
        parts.append(np.ma.getdata(arr))
    assert valid is not None
    return np.concatenate(parts, axis=0), valid


def band_stats(
    sources: Sources,
    grid: RasterGrid,
    seed: int,
    windows: Sequence[tuple[int, int, int, int]] | None = None,
) -> dict[str, Any]:
    """Per-band statistics over the pixels valid in every source, read by blocks.

    Mean and std are exact (float64 sums); p2 / p98 come from a seeded sample of at
    most ~1e6 valid pixels.

    Args:
        sources: the stacked rasters.
        grid: their grid.
        seed: seeds the percentile sample.
        windows: ``(row, col, height, width)`` windows (e.g. the training chips): only
            the pixels they cover count, each once however many windows overlap it;
            default: the whole raster. Blocks no window touches are not read.

    Raises:
        InputError: no valid pixel (in the windows).
    """
    rng = np.random.default_rng(seed)
    nb = len(sources.band_names)
    # Chan et al.'s pairwise merge of per-block (count, mean, M2): exact and free of the
    # cancellation a global sum of squares suffers on large-valued bands.
    count = 0
    mean = np.zeros(nb)
    m2 = np.zeros(nb)
    if windows is None:
        extent = grid.width * grid.height
        wins = None
    else:
        wins = np.asarray(windows, dtype=np.int64).reshape(-1, 4)
        extent = min(grid.width * grid.height, int((wins[:, 2] * wins[:, 3]).sum()))
    keep = min(1.0, _STATS_SAMPLE / max(1, extent))
    samples: list[np.ndarray] = []
    with contextlib.ExitStack() as files:
        opened = [files.enter_context(open_raster(p)) for p in sources.paths]
        for window in iter_blocks(grid, 1024):
            covered = None if wins is None else _coverage(wins, window)
            if covered is not None and not covered.any():
                continue
            img, valid = read_stack(opened, sources.indexes, window)
            if covered is not None:
                valid = valid & covered
            pix = img[:, valid].astype(np.float64)  # (bands, n)
            n = pix.shape[1]
            if n == 0:
                continue
            block_mean = pix.mean(axis=1)
            block_m2 = ((pix - block_mean[:, None]) ** 2).sum(axis=1)
            delta = block_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + block_m2 + delta**2 * (count * n / total)
            count = total
            take = rng.random(n) < keep if keep < 1.0 else slice(None)
            samples.append(pix[:, take])
    if count == 0:
        where = "raster has" if wins is None else "the chip windows hold"
        raise InputError(sources.paths[0], f"{where} no valid pixel (all nodata)")
    std = np.sqrt(m2 / count)
    sample = np.concatenate(samples, axis=1)
    p2, p98 = np.percentile(sample, [2, 98], axis=1)
    return {
        "bands": list(sources.band_names),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "p2": [float(v) for v in p2],
        "p98": [float(v) for v in p98],
        "valid_pixels": int(count),
    }


def _coverage(wins: np.ndarray, window: Window) -> np.ndarray:
    """Pixels of ``window`` covered by any of ``wins`` (rows of row, col, height, width)."""
    r0, c0 = int(window.row_off), int(window.col_off)
    h, w = int(window.height), int(window.width)
    out = np.zeros((h, w), dtype=bool)
    rows, cols, hs, ws = wins.T
    hit = (rows < r0 + h) & (rows + hs > r0) & (cols < c0 + w) & (cols + ws > c0)
    for r, c, hh, ww in wins[hit].tolist():
        out[max(r - r0, 0) : min(r + hh - r0, h), max(c - c0, 0) : min(c + ww - c0, w)] = True
    return out
