"""Blocks of ``landforge builtup``: one pure function per block, a tiled staging raster.

:func:`builtup_block` computes the built-up mask of one square block of the target grid
from a :class:`BuiltupBlock` (paths, selections and the block's place on the grid: no
open files, so it pickles to a Dask worker). It reads from each input only the window
that covers the block, under a bounded GDAL block cache
(:func:`~landforge.io.raster.bounded_read_cache`),
so a worker holds one block and the cache whatever the raster sizes. The driver
(:func:`landforge.inference.builtup.builtup_mask`) writes the blocks, in whatever order
they finish, into a :class:`TiledStage` (a tiled GeoTIFF: a block write is whole tiles,
never a full-width strip) that becomes the COG at the end.

An input that cannot be read (missing, not a raster, a truncated tile) raises
:class:`~landforge.errors.InputError` naming the file; with ``skip_unreadable`` the
block counts it as "no data" and reports it in :attr:`BlockResult.unreadable`, which
the driver sums into one warning.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import rasterio.warp
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError, TransformError
from rasterio.windows import Window

from landforge.errors import InputError
from landforge.io.atomic import (
    ensure_writable_parent,
    remove_stale_temporaries,
    temp_sibling,
)
from landforge.io.raster import (
    READ_ERRORS,
    RasterGrid,
    bounded_read_cache,
    cog_options,
    open_raster,
    stage_to_cog,
)

__all__ = [
    "NODATA",
    "BlockResult",
    "BuiltupBlock",
    "BuiltupJob",
    "Selection",
    "TiledStage",
    "builtup_block",
    "plan_blocks",
    "stage_tile",
]

NODATA = 255
_BUILT, _COVERED = 2, 1
_OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    ">=": np.greater_equal,
    "<=": np.less_equal,
    ">": np.greater,
    "<": np.less,
}


@dataclass(frozen=True)
class Selection:
    """Which source values are built-up: a list of values or one threshold."""

    values: tuple[float, ...] = ()
    op: str | None = ">"
    threshold: float = 0.0

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        """True where ``arr`` is built-up."""
        if self.op is not None:
            return _OPS[self.op](arr, self.threshold)
        return np.isin(arr, np.asarray(self.values, dtype=arr.dtype))

    def describe(self) -> str:
        """The selection as text (``>0``, ``1,2``)."""
        if self.op is not None:
            return f"{self.op}{self.threshold:g}"
        return ",".join(f"{v:g}" for v in self.values)


@dataclass(frozen=True)
class BuiltupJob:
    """What every block needs: the inputs, their selections, the target grid.

    Attributes:
        inputs: settlement rasters (paths; the unreadable ones already left out when
            ``skip_unreadable``).
        selections: one :class:`Selection` per input.
        band: band of every input to read.
        crs: the target grid's CRS as WKT.
        transform: the target grid's affine transform (6 numbers).
        skip_unreadable: a read failure counts as "no data" instead of an error.
    """

    inputs: tuple[str, ...]
    selections: tuple[Selection, ...]
    band: int
    crs: str
    transform: tuple[float, ...]
    skip_unreadable: bool = False


@dataclass(frozen=True)
class BuiltupBlock:
    """One unit of work: block ``index`` at ``region`` = (row, col, height, width)."""

    job: BuiltupJob
    index: int
    region: tuple[int, int, int, int]


@dataclass
class BlockResult:
    """The mask of one block and what it counted.

    Attributes:
        index: block number.
        region: (row, col, height, width) on the target grid.
        mask: uint8 0 (not built-up), 1 (built-up), 255 (no input data).
        counts: pixels not built-up, built-up, without data.
        unreadable: path -> problem for the inputs this block could not read (only
            with ``skip_unreadable``; otherwise that is an InputError).
    """

    index: int
    region: tuple[int, int, int, int]
    mask: np.ndarray
    counts: tuple[int, int, int]
    unreadable: dict[str, str] = field(default_factory=dict)


def builtup_block(spec: BuiltupBlock, datasets: Mapping[str, Any] | None = None) -> BlockResult:
    """The built-up mask of one block (see the module doc).

    Args:
        spec: the block and its job.
        datasets: inputs already open in this process (path -> dataset), reused across
            blocks; the others are opened here (as on a Dask worker).

    Returns:
        The block's mask and counts.

    Raises:
        InputError: an input that cannot be opened or read (unless ``skip_unreadable``).
    """
    job = spec.job
    row, col, h, w = spec.region
    target = RasterGrid(
        CRS.from_wkt(job.crs), Affine(*job.transform[:6]) @ Affine.translation(col, row), w, h
    )
    code = np.zeros((h, w), np.uint8)
    unreadable: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(bounded_read_cache())
        for path, sel in zip(job.inputs, job.selections, strict=True):
            try:
                src = (datasets or {}).get(path)
                if src is None:
                    src = stack.enter_context(open_raster(path))
                np.maximum(code, _warped_code(src, path, sel, job.band, target), out=code)
            except InputError as exc:
                if not job.skip_unreadable:
                    raise
                unreadable[path] = exc.problem
    mask = np.full((h, w), NODATA, np.uint8)
    mask[code == _BUILT] = 1
    mask[code == _COVERED] = 0
    built = int(np.count_nonzero(code == _BUILT))
    nodata = int(np.count_nonzero(code == 0))
    return BlockResult(
        spec.index, spec.region, mask, (h * w - built - nodata, built, nodata), unreadable
    )


def _warped_code(
    src: Any, path: str | os.PathLike[str], sel: Selection, band: int, target: RasterGrid
) -> np.ndarray:
    """The 0/1/2 code of one input warped (max) onto one target block.

    A block whose corners have no place in the input's CRS (outside the projection's
    domain) is not covered by that input: code 0.
    """
    out = np.zeros((target.height, target.width), np.uint8)
    try:
        bounds = rasterio.warp.transform_bounds(target.crs, src.crs, *target.bounds, densify_pts=21)
    except (CRSError, TransformError):
        return out
    if not all(math.isfinite(v) for v in bounds):
        return out
    left, bottom, right, top = bounds
    inv = ~src.transform
    cols, rows = zip(*(inv @ (x, y) for x in (left, right) for y in (bottom, top)), strict=True)
    r0 = max(int(math.floor(min(rows))) - 2, 0)
    c0 = max(int(math.floor(min(cols))) - 2, 0)
    r1 = min(int(math.ceil(max(rows))) + 2, src.height)
    c1 = min(int(math.ceil(max(cols))) + 2, src.width)
    if r0 >= r1 or c0 >= c1:
        return out
    read = Window(c0, r0, c1 - c0, r1 - r0)
    try:
        arr = src.read(band, window=read)
        valid = src.read_masks(band, window=read) > 0
    except READ_ERRORS as exc:  # a dataset not opened through open_raster
        text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"cannot read pixels ({text}); is the file corrupt?") from None
    if np.issubdtype(arr.dtype, np.floating):
        valid &= np.isfinite(arr)
    code = np.where(valid, np.where(sel(arr), _BUILT, _COVERED), 0).astype(np.uint8)
    try:
        rasterio.warp.reproject(
            code,
            out,
            src_transform=src.transform @ Affine.translation(c0, r0),
            src_crs=src.crs,
            dst_transform=target.transform,
            dst_crs=target.crs,
            resampling=Resampling.max,
            src_nodata=None,
            dst_nodata=None,
        )
    except READ_ERRORS as exc:
        raise InputError(path, f"cannot warp it onto the target grid ({exc})") from None
    return out


# --------------------------------------------------------------------------- staging


def stage_tile(block: int) -> int:
    """Tile size of the staging raster: the largest of 512..16 dividing ``block``.

    Then every block write covers whole tiles (no tile is compressed twice); a block
    size that no multiple of 16 divides gets 256 (border tiles are then rewritten).
    """
    for tile in (512, 256, 128, 64, 32, 16):
        if block % tile == 0:
            return tile
    return 256


class TiledStage:
    """A single-band raster written block by block, in any order, then copied to a COG.

    The staging file is a tiled, lightly compressed GeoTIFF beside the output; a block
    write is a window write of whole tiles (see :func:`stage_tile`), so nothing of a
    full-width strip is held. :meth:`finish` copies it to the COG atomically (GDAL's
    cache bounded as for :class:`~landforge.io.raster.StagedCOG`); :meth:`abort`
    removes it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        grid: RasterGrid,
        tile: int,
        dtype: Any,
        nodata: float | None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.final = ensure_writable_parent(path)
        self.dtype = np.dtype(dtype)
        # named after this process: a killed run's stage is removed by the next write
        remove_stale_temporaries(self.final)
        self.stage = temp_sibling(self.final, ".stage.tif")
        profile = grid.profile(1, self.dtype, nodata)
        profile.update(
            tiled=True, blockxsize=tile, blockysize=tile, compress="zstd", zstd_level=1,
            BIGTIFF="IF_SAFER",
        )  # fmt: skip
        self.ds = rasterio.open(self.stage, "w", **profile)
        if description:
            self.ds.set_band_description(1, description)
        if tags:
            self.ds.update_tags(**dict(tags))

    def write(self, array: np.ndarray, row: int, col: int) -> None:
        """Write a (rows, cols) block with its top-left pixel at (``row``, ``col``)."""
        self.ds.write(array, 1, window=Window(col, row, array.shape[1], array.shape[0]))

    def finish(self) -> Path:
        """Convert the staged raster to the final COG (atomically); return its path."""
        self.ds.close()
        # the options, GDAL settings and failure handling of every landforge COG
        return stage_to_cog(self.stage, self.final, cog_options(self.dtype))

    def abort(self) -> None:
        """Close and delete the staged raster after a failure."""
        with contextlib.suppress(Exception):
            self.ds.close()
        self.stage.unlink(missing_ok=True)


def plan_blocks(
    height: int, width: int, block: int
) -> Iterator[tuple[int, tuple[int, int, int, int]]]:
    """(index, (row, col, height, width)) of the square blocks covering a grid, row-major."""
    index = 0
    for row in range(0, height, block):
        for col in range(0, width, block):
            yield index, (row, col, min(block, height - row), min(block, width - col))
            index += 1
