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
largest code over the inputs. Work is done by square blocks of ``block`` x ``block``
target pixels (:mod:`landforge.inference.builtup_blocks`): each reads only the source
windows it needs, under a bounded GDAL cache, and is written into a tiled staging raster,
so memory is a few blocks whatever the raster sizes (never a full-width strip). Blocks
run in this process, or on Dask with ``workers`` / ``scheduler`` as for ``predict``.
The result is a uint8 COG with values 0/1 and nodata 255, ready for ``landforge predict
--mask``.

An input that cannot be read (missing, not a raster, a truncated tile) stops the run
with an error naming the file; with ``skip_unreadable`` it counts as "no data" and one
warning names the skipped files and how many blocks each lost.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import rasterio.warp
from rasterio.errors import CRSError, TransformError

from landforge.distributed import block_client, map_blocks
from landforge.errors import InputError, OptionError
from landforge.inference.builtup_blocks import (
    NODATA,
    BuiltupBlock,
    BuiltupJob,
    Selection,
    TiledStage,
    builtup_block,
    plan_blocks,
    stage_tile,
)
from landforge.inference.options import BuiltupOptions
from landforge.io.raster import RasterGrid, bounded_read_cache, open_raster, read_grid

__all__ = ["NODATA", "Selection", "parse_values", "builtup_mask"]


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
    *,
    client: Any = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Write the built-up union of ``inputs`` on the grid of ``like`` (see module doc).

    Args:
        inputs: settlement rasters (any CRS and resolution; each needs a CRS).
        like: raster (or grid) whose grid the mask is computed on.
        out: uint8 COG to write (0 not built-up, 1 built-up, 255 no input data).
        opts: :class:`~landforge.inference.options.BuiltupOptions`: ``values`` (one
            selection for all inputs or one per input, ``";"``-separated; default
            ``>0``), ``band`` (of every input), ``block`` (target block size),
            ``skip_unreadable``, ``workers`` / ``scheduler`` (where blocks run).
        client: a running ``dask.distributed.Client`` to run the blocks on (the caller
            owns it); instead of ``workers`` / ``scheduler``.
        **overrides: fields of ``opts`` to replace (``values="1;>0"``).

    Returns:
        Summary: pixel counts (built-up, not built-up, nodata), the number of blocks and
        ``unreadable`` (path -> problem and blocks lost; empty unless
        ``skip_unreadable`` skipped something).

    Raises:
        OptionError: bad ``values``, no inputs.
        InputError: an input that cannot be read (unless ``skip_unreadable``; then only
            when none can), a raster without CRS or without the band.
    """
    o = BuiltupOptions.build(opts, **overrides)
    if not inputs:
        raise OptionError("inputs", "give at least one settlement raster")
    sels = parse_values(o.values, len(inputs))
    grid = like if isinstance(like, RasterGrid) else read_grid(like)
    if grid.crs is None:
        raise InputError(like, "raster has no CRS")
    blocks = list(plan_blocks(grid.height, grid.width, o.block))
    lost: dict[str, list[Any]] = {}  # path -> [problem, blocks lost]
    counts = np.zeros(3, dtype=np.int64)  # not built, built, nodata
    with contextlib.ExitStack() as stack:
        stack.enter_context(bounded_read_cache())
        datasets = _open_inputs(stack, inputs, o, lost, len(blocks))
        _drop_far(datasets, grid, like)
        kept = [(str(p), s) for p, s in zip(inputs, sels, strict=True) if str(p) in datasets]
        job = BuiltupJob(
            inputs=tuple(p for p, _ in kept),
            selections=tuple(s for _, s in kept),
            band=o.band,
            crs=grid.crs.to_wkt(),
            transform=tuple(grid.transform)[:6],
            skip_unreadable=o.skip_unreadable,
        )
        staged = TiledStage(
            out, grid, stage_tile(o.block), np.uint8, NODATA, description="builtup",
            tags={"LANDFORGE_BUILTUP_INPUTS": ";".join(str(p) for p in inputs),
                  "LANDFORGE_BUILTUP_VALUES": ";".join(s.describe() for s in sels)},
        )  # fmt: skip
        stack.callback(staged.abort)
        dask = block_client(stack, o.workers, o.scheduler, client)
        specs = [BuiltupBlock(job, index, region) for index, region in blocks]
        local = {"datasets": datasets} if dask is None else {}
        for res in map_blocks(builtup_block, specs, dask, **local):
            staged.write(res.mask, res.region[0], res.region[1])
            counts += np.asarray(res.counts, dtype=np.int64)
            for path, problem in res.unreadable.items():
                lost.setdefault(path, [problem, 0])[1] += 1
        if lost:
            staged.ds.update_tags(LANDFORGE_BUILTUP_UNREADABLE=";".join(lost))
            warnings.warn(_lost_line(lost, len(blocks)), UserWarning, stacklevel=2)
        written = staged.finish()
    return {
        "out": str(written),
        "width": grid.width,
        "height": grid.height,
        "builtup_pixels": int(counts[1]),
        "not_builtup_pixels": int(counts[0]),
        "nodata_pixels": int(counts[2]),
        "values": [s.describe() for s in sels],
        "blocks": len(blocks),
        "unreadable": {p: {"problem": v[0], "blocks": v[1]} for p, v in lost.items()},
    }


def _open_inputs(
    stack: contextlib.ExitStack,
    inputs: Sequence[str | os.PathLike[str]],
    o: BuiltupOptions,
    lost: dict[str, list[Any]],
    n_blocks: int,
) -> dict[str, Any]:
    """Open and check every input; the unreadable ones go to ``lost`` if skipping."""
    datasets: dict[str, Any] = {}
    for path in inputs:
        if str(path) in datasets:
            continue
        try:
            src = stack.enter_context(open_raster(path))
        except InputError as exc:
            if not o.skip_unreadable:
                raise
            lost[str(path)] = [exc.problem, n_blocks]
            continue
        if src.crs is None:
            raise InputError(path, "raster has no CRS, cannot place it on the target grid")
        if not 1 <= o.band <= src.count:
            raise InputError(path, f"has {src.count} band(s), no band {o.band}")
        datasets[str(path)] = src
    if not datasets:
        first, (problem, _) = next(iter(lost.items()))
        raise InputError(first, f"{problem}; no input can be read, so there is no mask to make")
    return datasets


def _drop_far(datasets: dict[str, Any], grid: RasterGrid, like: Any) -> None:
    """Leave out the inputs that do not overlap the target grid (they add nothing).

    None overlapping is an error naming the (first) input: the mask would be all
    nodata. Some: one warning naming them.
    """
    far = [path for path, src in datasets.items() if not _overlaps(src, grid)]
    if not far:
        return
    where = f"the grid of {like}" if not isinstance(like, RasterGrid) else "the target grid"
    if len(far) == len(datasets):
        others = "" if len(far) == 1 else f" (nor does any of the other {len(far) - 1} inputs)"
        raise InputError(far[0], f"does not overlap {where}{others}; wrong file or wrong CRS?")
    warnings.warn(
        f"{len(far)} of {len(datasets)} inputs do not overlap {where} and add nothing: "
        + ", ".join(far),
        UserWarning,
        stacklevel=3,
    )
    for path in far:
        del datasets[path]


def _overlaps(src: Any, grid: RasterGrid) -> bool:
    """False when the input's extent and the grid's are disjoint (True if unsure)."""
    pairs = ((grid.crs, grid.bounds, src.crs, tuple(src.bounds)),
             (src.crs, tuple(src.bounds), grid.crs, grid.bounds))  # fmt: skip
    for a_crs, a_bounds, b_crs, b in pairs:
        try:
            t = rasterio.warp.transform_bounds(a_crs, b_crs, *a_bounds, densify_pts=21)
        except (CRSError, TransformError):
            continue
        if not all(math.isfinite(v) for v in t) or t[0] > t[2]:
            continue  # outside the projection's domain, or across the antimeridian
        return bool(t[0] < b[2] and t[2] > b[0] and t[1] < b[3] and t[3] > b[1])
    return True


def _lost_line(lost: Mapping[str, list[Any]], n_blocks: int) -> str:
    """One warning for every input skipped as unreadable, with the blocks each lost."""
    parts = [
        f"{path} ({problem}; {'all' if n >= n_blocks else n} of {n_blocks} blocks)"
        for path, (problem, n) in lost.items()
    ]
    return f"{len(lost)} unreadable input(s) counted as no data: " + "; ".join(parts)
