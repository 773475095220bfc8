"""Built-up masks: the union of settlement products on the grid of an image.

``landforge builtup --inputs GHSL.tif --inputs WSF.tif --inputs WORLDCOVER.tif
--values ">0;255;50" --like IMAGE.tif --out mask.tif`` marks a pixel of the image grid built-up (1) if
**any source pixel overlapping it** is built-up in **any** input, 0 if some input
covers it and none says built-up, and 255 (nodata) where no input has data.

Each input may have its own CRS and resolution. Per input, the selected values (a
list such as ``1,2`` or a threshold such as ``>0``, ``>=0.5``, ``<10``) are turned into
a code at the source resolution: 2 built-up, 1 covered, 0 no data (outside the raster
or nodata). The code is warped onto the target grid with GDAL's ``max`` resampling, so
a target pixel takes the largest code of the source pixels it overlaps:

- finer source (WSF 10 m onto a 30 m grid): a target pixel is built-up as soon as one
  of the source pixels inside it is (no majority vote that would erase villages);
- coarser source (GHSL 100 m onto a 0.5 m grid): every target pixel inside a built-up
  source pixel is built-up (``max`` of one source pixel is that pixel), and a target
  pixel straddling two source pixels is built-up if either is.

Nearest-neighbour resampling would instead keep one arbitrary source pixel per target
pixel and lose built-up pixels when going finer to coarser. The union then takes the
largest code over the inputs. Work is done by blocks of ``block`` x ``block`` target
pixels (each reads only the source window it needs), so memory stays bounded whatever
the sizes; the result is a uint8 COG with values 0/1 and nodata 255, ready for
``landforge predict --mask``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
import rasterio.warp
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from landforge.errors import InputError, OptionError
from landforge.inference.options import BuiltupOptions
from landforge.io.raster import RasterGrid, StagedCOG, iter_blocks, open_raster, read_grid

__all__ = ["Selection", "parse_values", "builtup_mask"]

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


def parse_values(text: str | None, n_inputs: int) -> list[Selection]:
    """Selections for ``n_inputs`` inputs from ``"1;1,2;>0"`` (one for all, or one each).

    An empty text (or an empty item) means ``>0``.

    Raises:
        OptionError: (field ``values``) a bad item or a count that fits neither rule.
    """
    items = [""] if not text else [t.strip() for t in text.split(";")]
    if len(items) == 1:
        items = items * n_inputs
    if len(items) != n_inputs:
        raise OptionError(
            "values", f"give one selection for all inputs or one per input ({n_inputs}), "
            f"got {len(items)}",
        )  # fmt: skip
    out = []
    for item in items:
        if not item:
            out.append(Selection())
            continue
        m = re.fullmatch(r"(>=|<=|>|<)\s*(-?[0-9.eE+-]+)", item)
        try:
            if m:
                out.append(Selection((), m.group(1), float(m.group(2))))
            else:
                vals = tuple(float(v) for v in item.split(",") if v.strip())
                if not vals:
                    raise ValueError(item)
                out.append(Selection(vals, None))
        except ValueError:
            raise OptionError(
                "values", f"{item!r}: use a value list such as 1,2 or a threshold such as >0"
            ) from None
    return out


def builtup_mask(
    inputs: Sequence[str | os.PathLike[str]],
    like: str | os.PathLike[str] | RasterGrid,
    out: str | os.PathLike[str],
    opts: BuiltupOptions | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Write the built-up union of ``inputs`` on the grid of ``like`` (see module doc).

    Args:
        inputs: settlement rasters (any CRS and resolution; each needs a CRS).
        like: raster (or grid) whose grid the mask is computed on.
        out: uint8 COG to write (0 not built-up, 1 built-up, 255 no input data).
        opts: :class:`~landforge.inference.options.BuiltupOptions`: ``values`` (one
            selection for all inputs or one per input, ``";"``-separated; default
            ``>0``), ``band`` (of every input), ``block`` (target block size).
        **overrides: fields of ``opts`` to replace (``values="1;>0"``).

    Returns:
        Summary: pixel counts (built-up, not built-up, nodata) and per-input coverage.

    Raises:
        OptionError: bad ``values``, no inputs.
        InputError: unreadable rasters, a raster without CRS.
    """
    o = BuiltupOptions.build(opts, **overrides)
    band, block = o.band, o.block
    if not inputs:
        raise OptionError("inputs", "give at least one settlement raster")
    sels = parse_values(o.values, len(inputs))
    grid = like if isinstance(like, RasterGrid) else read_grid(like)
    if grid.crs is None:
        raise InputError(like, "raster has no CRS")
    counts = np.zeros(3, dtype=np.int64)  # not built, built, nodata
    with contextlib.ExitStack() as stack:
        srcs = []
        for path in inputs:
            src = stack.enter_context(open_raster(path))
            if src.crs is None:
                raise InputError(path, "raster has no CRS, cannot place it on the target grid")
            if not 1 <= band <= src.count:
                raise InputError(path, f"has {src.count} band(s), no band {band}")
            srcs.append(src)
        staged = StagedCOG(
            out, grid, 1, np.uint8, NODATA, descriptions=["builtup"],
            tags={"LANDFORGE_BUILTUP_INPUTS": ";".join(str(p) for p in inputs),
                  "LANDFORGE_BUILTUP_VALUES": ";".join(s.describe() for s in sels)},
        )  # fmt: skip
        stack.callback(staged.abort)
        for row in range(0, grid.height, block):
            h = min(block, grid.height - row)
            strip = np.zeros((h, grid.width), np.uint8)
            for win in iter_blocks((h, grid.width), block):
                target = RasterGrid(
                    grid.crs,
                    grid.transform @ Affine.translation(win.col_off, row + win.row_off),
                    int(win.width),
                    int(win.height),
                )
                code = np.zeros((target.height, target.width), np.uint8)
                for src, path, sel in zip(srcs, inputs, sels, strict=True):
                    np.maximum(code, _warped_code(src, path, sel, band, target), out=code)
                strip[:, win.col_off : win.col_off + win.width] = code
            mask = np.where(strip == _BUILT, 1, np.where(strip == _COVERED, 0, NODATA))
            mask = mask.astype(np.uint8)
            counts += np.array(
                [(mask == 0).sum(), (mask == 1).sum(), (mask == NODATA).sum()], dtype=np.int64
            )
            staged.write(mask, row)
        written = staged.finish()
    return {
        "out": str(written),
        "width": grid.width,
        "height": grid.height,
        "builtup_pixels": int(counts[1]),
        "not_builtup_pixels": int(counts[0]),
        "nodata_pixels": int(counts[2]),
        "values": [s.describe() for s in sels],
    }


def _warped_code(
    src: Any, path: str | os.PathLike[str], sel: Selection, band: int, target: RasterGrid
) -> np.ndarray:
    """The 0/1/2 code of one input warped (max) onto one target block."""
    out = np.zeros((target.height, target.width), np.uint8)
    try:
        left, bottom, right, top = rasterio.warp.transform_bounds(
            target.crs, src.crs, *target.bounds, densify_pts=21
        )
    except Exception:  # noqa: BLE001 - no valid transform: the input does not cover it
        return out
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
    except RasterioIOError as exc:
        text = str(exc).strip().splitlines()[0][:160]
        raise InputError(path, f"cannot read pixels ({text}); is the file corrupt?") from None
    if np.issubdtype(arr.dtype, np.floating):
        valid &= np.isfinite(arr)
    code = np.where(valid, np.where(sel(arr), _BUILT, _COVERED), 0).astype(np.uint8)
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
    return out
