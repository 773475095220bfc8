"""Large-area prediction: sliding windows, centre crops, COG outputs.

:func:`predict_raster` runs a checkpoint over an image of any size without holding it
in memory: it reads one window at a time (image bands plus extra rasters such as POI
probability maps, all on the same grid), normalises them with the model card's mean
and std, batches windows through the model under ``torch.inference_mode``, and keeps the
centre of each window (see :mod:`landforge.inference.windows`). Kept regions of one row
of windows are grouped in blocks (the unit of work, run in-process or on Dask workers,
and the unit of resume); finished blocks go to small GeoTIFFs in ``OUT.parts/`` that are
streamed into Cloud-Optimised GeoTIFFs at the end (atomically), so memory stays at a
few blocks whatever the raster size (see :mod:`landforge.inference.blocks`).

The rasters it writes are described in :mod:`landforge.inference.outputs`.

Pixels that are nodata in the image (GDAL dataset mask: all bands nodata) or in any
extra raster, or NaN, are nodata in every output.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from rasterio.windows import Window

from landforge.distributed import dask_client
from landforge.errors import InputError, OptionError
from landforge.inference.blocks import (
    BlockSpec,
    Job,
    SourceSpec,
    plan_blocks,
    predict_block,
    register_model,
)
from landforge.inference.constants import NODATA_CLASS
from landforge.inference.forward import model_probabilities
from landforge.inference.options import PredictOptions
from landforge.inference.outputs import open_outputs, resolve_heads
from landforge.inference.parts import (
    PARTS_FORMAT,
    assemble,
    file_identity,
    hash_files,
    hash_model,
    parts_dir_for,
    prepare_parts,
    run_key,
)
from landforge.io.atomic import ensure_writable_parent
from landforge.io.raster import RasterGrid, open_raster
from landforge.models.checkpoint import (
    ModelCard,
    checkpoint_paths,
    load_checkpoint,
    save_checkpoint,
)
from landforge.progress import track

__all__ = [
    "predict_raster",
    "model_probabilities",  # from .forward, where it lives
    "NODATA_CLASS",
]


ModelLike = str | os.PathLike[str] | tuple[nn.Module, ModelCard]


# --------------------------------------------------------------------------- predictor

#: Seconds to wait for ``scheduler="tcp://..."`` to answer (tests lower it).
_CONNECT_TIMEOUT_S = 10.0

PathLike = str | os.PathLike[str]


def predict_raster(
    model: ModelLike,
    image: PathLike,
    out: PathLike,
    opts: PredictOptions | None = None,
    *,
    extras: Sequence[PathLike] = (),
    mask: PathLike | None = None,
    probs_out: PathLike | None = None,
    footprint_out: PathLike | None = None,
    on_block: Callable[[dict[str, Any]], None] | None = None,
    quiet: bool = False,
    client: Any = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Predict a class map (and optionally probabilities) over a raster of any size.

    The window layout is cut into blocks of ``block_windows`` x ``block_windows``
    windows, computed by :func:`~landforge.inference.blocks.predict_block` into a parts
    directory ``OUT.parts/`` beside ``out`` and assembled into the COGs at the end (see
    :mod:`landforge.inference.parts`); the parts directory is removed after success.

    Args:
        model: checkpoint path (``NAME.safetensors``/``NAME.json``/stem) or a
            ``(model, card)`` pair.
        image: the image raster; its bands come first in the model input.
        out: the class map COG to write.
        opts: the options (:class:`~landforge.inference.options.PredictOptions`:
            window, overlap, tta, batch, threshold, probs_dtype, device, bands, blend,
            block_windows, workers, scheduler, resume, ...); ``overrides`` replace
            single fields (``window=512``).
        extras: further rasters appended as bands in order (e.g. POI maps); together
            with the image they must match ``card.bands``. Each must be on the image
            grid, or in the same CRS at the same resolution with pixel-aligned origin
            (a different extent: pixels outside it are nodata).
        mask: optional built-up mask (aligned like ``extras``, e.g. from
            ``landforge builtup --like IMAGE``); windows whose kept region holds no mask
            pixel (> 0, not nodata) are not predicted (class 0, footprint probability 0,
            class probabilities nodata).
        probs_out: optional class-probability COG (type ``probs_dtype``).
        footprint_out: optional footprint-probability COG (models with a footprint head).
        on_block: called in this process with each newly computed block's record.
        quiet: no progress bar.
        client: a running ``dask.distributed.Client`` to compute the blocks on (the
            caller owns it); instead of ``workers`` / ``scheduler``.
        **overrides: fields of ``opts`` to replace.

    Returns:
        A summary: window counts (predicted, skipped by the mask) and the area the mask
        skipped (``skipped_km2``; None without a CRS, approximate in a geographic CRS),
        block counts (computed, reused), pixel counts per class, seconds, throughput,
        output paths.

    Raises:
        OptionError: a bad option value (named by its field).
        InputError: unreadable inputs, rasters on different grids, a band count that
            differs from the model card, unwritable outputs.
    """
    o = PredictOptions.build(opts, **overrides)
    started = time.perf_counter()
    torch_device = _device(o.device)
    net, card = _load_model(model)
    net = net.to(torch_device).eval()
    plan = resolve_heads(card)
    if footprint_out is not None and plan.footprint is None:
        raise OptionError("footprint_out", "the model has no footprint head")
    if len(card.mean) != len(card.bands) or len(card.std) != len(card.bands):
        raise InputError("model", "model card mean/std do not match its band list")
    for path in (out, probs_out, footprint_out):
        if path is not None:
            ensure_writable_parent(path)
    grid, sources, mask_spec = _inputs(card, image, extras, mask, o.bands)

    if isinstance(model, tuple):
        model_hash = hash_model(net, card.model_dump_json())
        model_path = None
    else:
        weights, card_path = checkpoint_paths(model)
        model_hash = hash_files([weights, card_path])
        model_path = str(weights)
    names = ["classes"]
    if probs_out is not None:
        names.append("probs")
    if footprint_out is not None:
        names.append("footprint")
    paths = [image, *extras] + ([mask] if mask is not None else [])
    key = run_key(
        {
            "format": PARTS_FORMAT,
            "model": model_hash,
            "inputs": [file_identity(p) for p in paths],
            "indexes": [list(s.indexes) for s in sources],
            "offsets": [(s.row_off, s.col_off) for s in sources],
            "options": [
                o.window, o.overlap, o.tta, o.threshold, o.blend, o.block_windows,
                o.pad_multiple,
            ],
            "outputs": names,
            "probs_dtype": o.probs_dtype,
        }
    )  # fmt: skip
    parts = parts_dir_for(out)
    layout = plan_blocks(grid.height, grid.width, o.window, o.overlap, o.block_windows, o.blend)
    n_windows = sum(len(owned) for *_, owned in layout)

    with contextlib.ExitStack() as stack:
        dask = _client(stack, o, client)
        if dask is not None and model_path is None:
            model_path = str(_save_for_workers(net, card, parts))
        job = Job(
            opts=o,
            model_path=model_path,
            model_key=model_hash,
            model_name=card.model,
            device=str(torch_device),
            sources=sources,
            mask=mask_spec,
            mean=tuple(float(v) for v in card.mean),
            std=tuple(float(v) for v in card.std),
            footprint_head=plan.footprint,
            classes_head=plan.classes,
            n_probs=len(plan.class_names),
            outputs=tuple(names),
            height=grid.height,
            width=grid.width,
            crs=grid.crs.to_wkt() if grid.crs else None,
            transform=tuple(grid.transform)[:6],
            parts=str(parts),
            key=key,
            torch_threads=1 if dask is not None and client is None and o.workers else None,
        )
        reusable = prepare_parts(parts, key, o.resume)
        if dask is None:
            register_model(model_hash, str(torch_device), net)
        todo = [
            BlockSpec(job, idx, region, tiles, owned)
            for idx, region, tiles, owned in layout
            if idx not in reusable
        ]
        records = dict(reusable)
        try:
            with contextlib.closing(_execute(dask, todo)) as results:
                for rec in track(
                    results, f"predict {Path(image).name}", total=len(todo), quiet=quiet
                ):
                    records[rec["index"]] = rec
                    if on_block is not None:
                        on_block(rec)
        except BaseException:
            if next(parts.glob("b*.done.json"), None) is None:
                shutil.rmtree(parts, ignore_errors=True)  # nothing worth resuming
            raise

    with contextlib.ExitStack() as stack:
        outputs = open_outputs(stack, grid, out, probs_out, footprint_out, plan, card, o)
        assemble(parts, [(idx, region) for idx, region, *_ in layout], outputs, grid.width)
        written = {name: str(w.finish()) for name, w in outputs.items()}
    shutil.rmtree(parts, ignore_errors=True)

    counts = np.zeros(256, dtype=np.int64)
    for rec in records.values():
        counts += np.asarray(rec["counts"], dtype=np.int64)
    skipped = sum(int(rec["skipped"]) for rec in records.values())
    skipped_km2 = _skipped_km2(grid, layout, mask_spec) if skipped and mask_spec else 0.0
    seconds = time.perf_counter() - started
    pixels = grid.width * grid.height
    return {
        "image": str(image),
        "model": card.model,
        "width": grid.width,
        "height": grid.height,
        "window": o.window,
        "overlap": o.overlap,
        "tta": o.tta,
        "blend": o.blend,
        "device": str(torch_device),
        "windows": n_windows,
        "windows_predicted": n_windows - skipped,
        "windows_skipped": skipped,
        "skipped_km2": skipped_km2,
        "blocks": len(layout),
        "blocks_reused": len(reusable),
        "nodata_pixels": int(sum(int(rec["nodata"]) for rec in records.values())),
        "class_pixels": {"background": int(counts[0])}
        | {name: int(counts[k]) for k, name in enumerate(plan.class_names, start=1)},
        "seconds": round(seconds, 3),
        "megapixels_per_second": round(pixels / 1e6 / max(seconds, 1e-9), 3),
        "outputs": written,
    }


def _inputs(
    card: ModelCard,
    image: PathLike,
    extras: Sequence[PathLike],
    mask: PathLike | None,
    bands: Sequence[int] | None,
) -> tuple[RasterGrid, tuple[SourceSpec, ...], SourceSpec | None]:
    """The image grid, the model's input rasters placed on it, and the mask (checked)."""
    with contextlib.ExitStack() as stack:
        img = stack.enter_context(open_raster(image))
        grid = RasterGrid(img.crs, img.transform, img.width, img.height)
        opened = [img]
        offsets = [(0, 0)]
        for extra in extras:
            src = stack.enter_context(open_raster(extra))
            offsets.append(_placement(grid, src, extra, "extra"))
            opened.append(src)
        mask_spec = None
        if mask is not None:
            msrc = stack.enter_context(open_raster(mask))
            mrow, mcol = _placement(grid, msrc, mask, "mask")
            mask_spec = SourceSpec(str(mask), (1,), mrow, mcol)
        indexes = _select_bands(card, image, opened, bands)
    sources = tuple(
        SourceSpec(str(p), tuple(idx), r, c)
        for p, idx, (r, c) in zip([image, *extras], indexes, offsets, strict=True)
    )
    return grid, sources, mask_spec


def _skipped_km2(
    grid: RasterGrid,
    layout: Sequence[tuple[int, Any, Sequence[Any], frozenset[int]]],
    mask: SourceSpec,
) -> float | None:
    """Area (km²) of the kept regions of the windows the mask skips.

    The same rule as the blocks apply (a window is skipped when its kept region holds
    no mask pixel > 0 that is not nodata), read again here one window at a time, so
    reused blocks of a resumed run count too. None when the grid has no CRS; in a
    geographic CRS the pixel area is taken at each window's centre latitude.
    """
    if grid.crs is None:
        return None
    t = grid.transform
    cell = abs(t.a * t.e - t.b * t.d)
    geographic = bool(grid.crs.is_geographic)
    if not geographic:
        cell *= grid.crs.linear_units_factor[1] ** 2
    m2 = 0.0
    with open_raster(mask.path) as ds:
        nodata = ds.nodata
        for _, _, tiles, owned in layout:
            for tile in tiles:
                if tile.index not in owned:
                    continue
                keep = tile.keep_window
                r0, c0 = int(keep.row_off) - mask.row_off, int(keep.col_off) - mask.col_off
                h, w = int(keep.height), int(keep.width)
                a, b = max(r0, 0), min(r0 + h, ds.height)
                c, d = max(c0, 0), min(c0 + w, ds.width)
                if a < b and c < d:
                    m = ds.read(1, window=Window(c, a, d - c, b - a))
                    hit = m > 0
                    if nodata is not None:
                        hit &= m != nodata
                    if hit.any():
                        continue
                area = h * w * cell
                if geographic:
                    _, lat = t * (keep.col_off + w / 2, keep.row_off + h / 2)
                    area *= (math.pi * 6371008.8 / 180) ** 2 * math.cos(math.radians(lat))
                m2 += area
    return round(m2 / 1e6, 6)


def _client(stack: contextlib.ExitStack, o: PredictOptions, client: Any) -> Any:
    """The Dask client the blocks run on (None: in this process)."""
    if client is not None:
        return client
    if o.scheduler is None and not o.workers:
        return None
    try:
        return stack.enter_context(
            dask_client(o.scheduler or "local", max(o.workers, 1), timeout=_CONNECT_TIMEOUT_S)
        )
    except InputError as exc:
        if exc.source in ("scheduler", "workers"):  # a bad option, not a bad file
            raise OptionError(exc.source, exc.problem) from None
        raise


def _execute(client: Any, specs: list[BlockSpec]) -> Iterator[dict[str, Any]]:
    """Records of the blocks in ``specs``: in-process in order, or as Dask finishes them."""
    if client is None:
        for spec in specs:
            yield predict_block(spec)
        return
    from dask.distributed import as_completed

    futures = client.map(predict_block, specs, pure=False)
    try:
        for future in as_completed(futures):
            rec = future.result()
            future.release()
            yield rec
    finally:
        client.cancel([f for f in futures if not f.done()])


def _save_for_workers(model: nn.Module, card: ModelCard, parts: Path) -> Path:
    """An in-memory model written as a checkpoint that Dask workers can load."""
    parts.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(model, card, parts / "model")


def _placement(grid: RasterGrid, src: Any, path: PathLike, what: str) -> tuple[int, int]:
    """(row, col) offset of ``src`` on the image grid, or InputError if not aligned.

    Rasters on the image grid give (0, 0). A raster in the same CRS with the same pixel
    size and an origin a whole number of pixels away (another extent) is read
    boundlessly; anything else has to be resampled first.
    """
    hint = (
        "resample it onto the image grid first (e.g. `gdalwarp -t_srs <image CRS> -tr <res> "
        "<res> -tap`, or for built-up masks `landforge builtup --like IMAGE`)"
    )
    if grid.crs and src.crs and grid.crs != src.crs:
        raise InputError(
            path,
            f"{what} CRS {src.crs.to_string()} differs from the image's "
            f"{grid.crs.to_string()}; {hint}",
        )
    t, g = src.transform, grid.transform
    if (src.width, src.height) == (grid.width, grid.height) and t.almost_equals(g, 1e-6):
        return 0, 0
    if not (
        abs(t.b) < 1e-12 and abs(t.d) < 1e-12 and abs(g.b) < 1e-12 and abs(g.d) < 1e-12
    ) or not (math.isclose(t.a, g.a, rel_tol=1e-6) and math.isclose(t.e, g.e, rel_tol=1e-6)):
        raise InputError(
            path,
            f"{what} pixel size {abs(t.a):g} x {abs(t.e):g} differs from the image's "
            f"{abs(g.a):g} x {abs(g.e):g}; {hint}",
        )
    col = (t.c - g.c) / g.a
    row = (t.f - g.f) / g.e
    if abs(col - round(col)) > 1e-3 or abs(row - round(row)) > 1e-3:
        raise InputError(
            path,
            f"{what} pixels are not aligned with the image's (origin offset {col:.3f}, "
            f"{row:.3f} pixels); {hint}",
        )
    r, c = int(round(row)), int(round(col))
    if r > 0 or c > 0 or r + src.height < grid.height or c + src.width < grid.width:
        if r >= grid.height or c >= grid.width or r + src.height <= 0 or c + src.width <= 0:
            raise InputError(path, f"{what} does not overlap the image")
        if what == "extra":
            warnings.warn(
                f"{path}: covers only part of the image; pixels outside it are nodata",
                UserWarning,
                stacklevel=3,
            )
    return r, c


def _select_bands(
    card: ModelCard,
    image: PathLike,
    sources: Sequence[Any],
    bands: Sequence[int] | None,
) -> list[list[int]]:
    """1-based band indexes to read from each source, checked against the card."""
    img = sources[0]
    extra_count = sum(src.count for src in sources[1:])
    if bands is not None:
        bad = [b for b in bands if not 1 <= int(b) <= img.count]
        if bad:
            raise OptionError("bands", f"band(s) {bad} not in {image} ({img.count} bands)")
        image_idx = [int(b) for b in bands]
    else:
        image_idx = list(range(1, img.count + 1))
        want_image = len(card.bands) - extra_count
        names = list(img.descriptions or ())
        wanted = card.bands[:want_image] if want_image > 0 else []
        if 0 < want_image < img.count and wanted and all(n in names for n in wanted):
            # the card records band names: pick e.g. red, green, blue of an RGBN image
            image_idx = [names.index(n) + 1 for n in wanted]
    got = len(image_idx) + extra_count
    want = len(card.bands)
    if got != want:
        shown = ", ".join(card.bands[:4]) + (", ..." if want > 4 else "")
        detail = (
            f" (image {len(image_idx)} + extras {[s.count for s in sources[1:]]})"
            if len(sources) > 1
            else ""
        )
        raise InputError(
            image, f"model wants {want} bands, got {got}{detail}; model bands: {shown}"
        )
    return [image_idx] + [list(range(1, src.count + 1)) for src in sources[1:]]


def _load_model(checkpoint_or_model: ModelLike) -> tuple[nn.Module, ModelCard]:
    if isinstance(checkpoint_or_model, tuple):
        model, card = checkpoint_or_model
        return model, card
    return load_checkpoint(checkpoint_or_model)


def _device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise OptionError("device", f"unknown torch device {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("device", "CUDA is not available on this machine; use cpu")
    return dev
