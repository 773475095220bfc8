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

Outputs (contract in docs/dev/CONTRACTS.md):

- class map, uint8: 0 background, ``k`` = class ``k`` of the class head (1-based,
  ``rci`` values for building use) where the footprint probability is at least
  ``threshold``; single-head models write ``argmax + 1``. 255 is nodata. Colour table
  from the class system, class names in the ``LANDFORGE_CLASSES`` tag.
- class probabilities (optional): one band per class, float32 (nodata NaN) or uint8
  scaled by 254 (nodata 255, GDAL scale 1/254), band descriptions = class names.
- footprint probability (optional): float32, nodata NaN.

Pixels that are nodata in the image (GDAL dataset mask: all bands nodata) or in any
extra raster, or NaN, are nodata in every output.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from landforge.errors import InputError
from landforge.inference.constants import CLASSES_TAG, NODATA_CLASS, PROB_SCALE
from landforge.inference.tta import apply_tta, transforms
from landforge.io.atomic import ensure_writable_parent
from landforge.io.raster import RasterGrid, StagedCOG, open_raster
from landforge.models.checkpoint import ModelCard, checkpoint_paths, load_checkpoint
from landforge.progress import track

__all__ = [
    "predict_raster",
    "model_probabilities",
    "resolve_heads",
    "class_colormap",
    "HeadPlan",
    "NODATA_CLASS",
]


ModelLike = str | os.PathLike[str] | tuple[nn.Module, ModelCard]


@dataclass(frozen=True)
class HeadPlan:
    """Which model heads make the class map.

    Attributes:
        footprint: name of the binary footprint head, or None.
        classes: name of the class head (softmax), or None for footprint-only models.
        class_names: names of class values 1..K in the class map.
    """

    footprint: str | None
    classes: str | None
    class_names: list[str]


def resolve_heads(card: ModelCard) -> HeadPlan:
    """Decide from the card which head is the footprint and which the classes.

    A head with one class name is binary (sigmoid); ``footprint`` is the footprint head
    by name, or the only binary head of a two-head model. The class head is ``use`` if
    present, otherwise the first multi-class head.
    """
    binary = [h for h, names in card.heads.items() if len(names) == 1]
    multi = [h for h, names in card.heads.items() if len(names) > 1]
    footprint = "footprint" if "footprint" in card.heads else (binary[0] if binary else None)
    classes = "use" if "use" in multi else (multi[0] if multi else None)
    if classes is None and footprint is None:
        raise InputError("model", f"model card has no usable output head: {card.heads}")
    names = list(card.heads[classes] if classes else card.heads[footprint])  # type: ignore[index]
    if len(names) > 254:
        raise InputError("model", f"{len(names)} classes do not fit a uint8 class map")
    return HeadPlan(footprint, classes, names)


def model_probabilities(
    model: nn.Module, x: torch.Tensor, tta: str | None = None
) -> dict[str, torch.Tensor]:
    """Probabilities per head for a normalised batch ``x`` (N, C, H, W).

    Heads with one channel get a sigmoid, others a softmax over channels; with ``tta``
    the probabilities are averaged over flipped copies (see :mod:`.tta`).
    """

    def once(inp: torch.Tensor) -> dict[str, torch.Tensor]:
        out = model(inp)
        if isinstance(out, torch.Tensor):
            out = {"out": out}
        return {
            name: (torch.sigmoid(t) if t.shape[1] == 1 else torch.softmax(t, dim=1))
            for name, t in out.items()
        }

    with torch.inference_mode():
        return apply_tta(once, x, tta)


def class_colormap(
    class_names: Sequence[str], taxonomy: str | None = "rci"
) -> dict[int, tuple[int, int, int, int]]:
    """Colour table for values 1..K named ``class_names`` (0 background, 255 nodata).

    Colours come from the class system (``landforge.taxonomy``) when its label value of a
    class equals the class's position; otherwise from a fixed qualitative palette.
    """
    cmap: dict[int, tuple[int, int, int, int]] = {0: (0, 0, 0, 255), 255: (0, 0, 0, 0)}
    system = _taxonomy_colours(taxonomy or "rci")
    for k, name in enumerate(class_names, start=1):
        colour = system.get((k, name.lower()))
        cmap[k] = colour if colour else _PALETTE[(k - 1) % len(_PALETTE)]
    return cmap


_PALETTE = [
    (230, 85, 13, 255),  # orange-red: residential in the rci maps
    (49, 130, 189, 255),  # blue: commercial
    (117, 107, 177, 255),  # purple: industrial
    (49, 163, 84, 255),
    (253, 208, 35, 255),
    (158, 202, 225, 255),
    (140, 86, 75, 255),
    (227, 119, 194, 255),
    (127, 127, 127, 255),
    (188, 189, 34, 255),
]


def _taxonomy_colours(name: str) -> dict[tuple[int, str], tuple[int, int, int, int]]:
    """{(value, lower-case class name): rgba} from landforge.taxonomy, or {} without it."""
    try:  # the taxonomy is optional here: fall back to the palette without it
        from landforge.taxonomy import load_classes

        system = load_classes(name)
        values = dict(system.label_values())
        colours = system.colormap()
        return {(v, n.lower()): _rgba(colours[v]) for v, n in values.items() if v in colours}
    except Exception:  # noqa: BLE001 - any failure means "no colours from the taxonomy"
        return {}


def _rgba(colour: Any) -> tuple[int, int, int, int]:
    if isinstance(colour, str):
        h = colour.lstrip("#")
        vals = [int(h[i : i + 2], 16) for i in range(0, len(h), 2)]
    else:
        vals = [int(v) for v in colour]
    if len(vals) == 3:
        vals.append(255)
    return (vals[0], vals[1], vals[2], vals[3])


# --------------------------------------------------------------------------- predictor

#: Seconds to wait for ``scheduler="tcp://..."`` to answer (tests lower it).
_CONNECT_TIMEOUT_S = 10.0


def predict_raster(
    checkpoint_or_model: ModelLike,
    image: str | os.PathLike[str],
    out: str | os.PathLike[str],
    extras: Sequence[str | os.PathLike[str]] = (),
    window: int = 1024,
    overlap: int = 128,
    tta: str | None = None,
    batch: int = 8,
    mask: str | os.PathLike[str] | None = None,
    probs_out: str | os.PathLike[str] | None = None,
    footprint_out: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    threshold: float = 0.5,
    probs_dtype: str = "float32",
    pad_multiple: int = 32,
    quiet: bool = False,
    bands: Sequence[int] | None = None,
    blend: bool = False,
    block_windows: int = 4,
    scheduler: Any = None,
    workers: int = 2,
    resume: bool = False,
    on_block: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Predict a class map (and optionally probabilities) over a raster of any size.

    The window layout is cut into blocks of ``block_windows`` x ``block_windows``
    windows, computed by :func:`~landforge.inference.blocks.predict_block` into a parts
    directory ``OUT.parts/`` beside ``out`` and assembled into the COGs at the end (see
    :mod:`landforge.inference.blocks`); the parts directory is removed after success.

    Args:
        checkpoint_or_model: checkpoint path (``NAME.safetensors``/``NAME.json``/stem) or
            a ``(model, card)`` pair.
        image: the image raster; its bands come first in the model input.
        out: the class map COG to write.
        extras: further rasters appended as bands in order (e.g. POI maps); together
            with the image they must match ``card.bands``. Each must be on the image
            grid, or in the same CRS at the same resolution with pixel-aligned origin
            (a different extent: pixels outside it are nodata).
        window: window size in pixels; ``overlap``: context margin dropped per side.
        tta: None, ``"flips"`` or ``"d4"`` (see :mod:`.tta`).
        batch: windows per forward pass (batches do not cross blocks).
        mask: optional built-up mask (aligned like ``extras``, e.g. from
            ``landforge builtup --like IMAGE``); windows whose kept region holds no mask
            pixel (> 0, not nodata) are not predicted (class 0, footprint probability 0,
            class probabilities nodata).
        probs_out: optional class-probability COG; ``probs_dtype`` float32 or uint8.
        footprint_out: optional footprint-probability COG (models with a footprint head).
        device: torch device, e.g. ``"cpu"`` or ``"cuda"``.
        threshold: footprint probability at or above which a pixel is a building.
        pad_multiple: windows are padded by reflection to a multiple of this.
        quiet: no progress bar.
        bands: 1-based image bands to use; by default all of them or, when the image
            has more bands than the model takes, those whose descriptions match the
            band names in the model card (e.g. red, green, blue of an RGB+NIR image).
        blend: average overlapping windows with a smooth weight instead of keeping
            window centres (see :mod:`.blocks`).
        block_windows: windows per block side (the unit of work and of resume).
        scheduler: None (in-process), ``"local"`` (a local Dask cluster of ``workers``
            single-threaded processes), ``"tcp://host:port"`` or a Dask Client.
        workers: worker processes for ``scheduler="local"``.
        resume: reuse the finished blocks of an interrupted run with the same model,
            options and inputs; without it an existing parts directory is discarded.
        on_block: called in this process with each newly computed block's record.

    Returns:
        A summary: window counts (predicted, skipped by the mask), block counts
        (computed, reused), pixel counts per class, seconds, throughput, output paths.

    Raises:
        InputError: unreadable inputs, rasters on different grids, a band count that
            differs from the model card, bad options, unwritable outputs, a scheduler
            that does not answer.
    """
    from landforge.distributed import dask_client
    from landforge.inference import blocks as B

    started = time.perf_counter()
    if batch < 1:
        raise InputError("--batch", f"batch must be at least 1, got {batch}")
    if probs_dtype not in ("float32", "uint8"):
        raise InputError("probs_dtype", f"use float32 or uint8, got {probs_dtype!r}")
    transforms(tta)  # validate the mode before any work
    torch_device = _device(device)
    model, card = _load_model(checkpoint_or_model)
    model = model.to(torch_device).eval()
    plan = resolve_heads(card)
    if footprint_out is not None and plan.footprint is None:
        raise InputError("--footprint-prob", "the model has no footprint head")
    if len(card.mean) != len(card.bands) or len(card.std) != len(card.bands):
        raise InputError("model", "model card mean/std do not match its band list")
    for path in (out, probs_out, footprint_out):
        if path is not None:
            ensure_writable_parent(path)

    with contextlib.ExitStack() as stack:
        img = stack.enter_context(open_raster(image))
        grid = RasterGrid(img.crs, img.transform, img.width, img.height)
        sources = [img]
        offsets = [(0, 0)]
        for extra in extras:
            src = stack.enter_context(open_raster(extra))
            offsets.append(_placement(grid, src, extra, "extra"))
            sources.append(src)
        mask_spec = None
        if mask is not None:
            msrc = stack.enter_context(open_raster(mask))
            mrow, mcol = _placement(grid, msrc, mask, "mask")
            mask_spec = B.SourceSpec(str(mask), (1,), mrow, mcol)
        indexes = _select_bands(card, image, sources, bands)
    B.plan_blocks(1, 1, window, overlap, block_windows, blend)  # validate before work

    paths = [image, *extras] + ([mask] if mask is not None else [])
    if isinstance(checkpoint_or_model, tuple):
        model_hash = B.hash_model(model, card.model_dump_json())
        model_path = None
    else:
        weights, card_path = checkpoint_paths(checkpoint_or_model)
        model_hash = B.hash_files([weights, card_path])
        model_path = str(weights)
    names = ["classes"]
    if probs_out is not None:
        names.append("probs")
    if footprint_out is not None:
        names.append("footprint")
    key = B.run_key(
        {
            "format": B.PARTS_FORMAT,
            "model": model_hash,
            "inputs": [B.file_identity(p) for p in paths],
            "indexes": indexes,
            "offsets": offsets,
            "options": [window, overlap, tta, threshold, blend, block_windows, pad_multiple],
            "outputs": names,
            "probs_dtype": probs_dtype,
        }
    )
    parts = B.parts_dir_for(out)
    specs_src = tuple(
        B.SourceSpec(str(p), tuple(idx), r, c)
        for p, idx, (r, c) in zip([image, *extras], indexes, offsets, strict=True)
    )
    layout = B.plan_blocks(grid.height, grid.width, window, overlap, block_windows, blend)
    n_windows = sum(len(owned) for *_, owned in layout)

    with dask_client(
        scheduler, workers, timeout=_CONNECT_TIMEOUT_S, source="--scheduler",
        workers_source="--workers",
    ) as client:  # fmt: skip
        local_processes = isinstance(scheduler, str) and scheduler == "local"
        if client is not None and model_path is None:
            model_path = str(_save_for_workers(model, card, parts))
        job = B.Job(
            model_path=model_path,
            model_key=model_hash,
            model_name=card.model,
            device=str(torch_device),
            sources=specs_src,
            mask=mask_spec,
            mean=tuple(float(v) for v in card.mean),
            std=tuple(float(v) for v in card.std),
            footprint_head=plan.footprint,
            classes_head=plan.classes,
            n_probs=len(plan.class_names),
            outputs=tuple(names),
            probs_dtype=probs_dtype,
            tta=tta,
            threshold=float(threshold),
            pad_multiple=pad_multiple,
            batch=batch,
            window=window,
            overlap=overlap,
            blend=blend,
            height=grid.height,
            width=grid.width,
            crs=grid.crs.to_wkt() if grid.crs else None,
            transform=tuple(grid.transform)[:6],
            parts=str(parts),
            key=key,
            torch_threads=1 if local_processes else None,
        )
        reusable = B.prepare_parts(parts, key, resume)
        if client is None:
            B.register_model(model_hash, str(torch_device), model)
        todo = [
            B.BlockSpec(job, idx, region, tiles, owned)
            for idx, region, tiles, owned in layout
            if idx not in reusable
        ]
        records = dict(reusable)
        try:
            with contextlib.closing(_execute(client, todo)) as results:
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
        outputs = _open_outputs(
            stack, grid, out, probs_out, footprint_out, plan, card, probs_dtype, tta
        )
        B.assemble(parts, [(idx, region) for idx, region, *_ in layout], outputs, grid.width)
        written = {name: str(w.finish()) for name, w in outputs.items()}
    shutil.rmtree(parts, ignore_errors=True)

    counts = np.zeros(256, dtype=np.int64)
    for rec in records.values():
        counts += np.asarray(rec["counts"], dtype=np.int64)
    skipped = sum(int(rec["skipped"]) for rec in records.values())
    seconds = time.perf_counter() - started
    pixels = grid.width * grid.height
    return {
        "image": str(image),
        "model": card.model,
        "width": grid.width,
        "height": grid.height,
        "window": window,
        "overlap": overlap,
        "tta": tta,
        "blend": blend,
        "device": str(torch_device),
        "windows": n_windows,
        "windows_predicted": n_windows - skipped,
        "windows_skipped": skipped,
        "blocks": len(layout),
        "blocks_reused": len(reusable),
        "nodata_pixels": int(sum(int(rec["nodata"]) for rec in records.values())),
        "class_pixels": {"background": int(counts[0])}
        | {name: int(counts[k]) for k, name in enumerate(plan.class_names, start=1)},
        "seconds": round(seconds, 3),
        "megapixels_per_second": round(pixels / 1e6 / max(seconds, 1e-9), 3),
        "outputs": written,
    }


def _execute(client: Any, specs: list[Any]) -> Iterator[dict[str, Any]]:
    """Records of the blocks in ``specs``: in-process in order, or as Dask finishes them."""
    from landforge.inference.blocks import predict_block

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
    from landforge.models.checkpoint import save_checkpoint

    parts.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(model, card, parts / "model")


def _placement(
    grid: RasterGrid, src: Any, path: str | os.PathLike[str], what: str
) -> tuple[int, int]:
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


def _open_outputs(
    stack: contextlib.ExitStack,
    grid: RasterGrid,
    out: str | os.PathLike[str],
    probs_out: str | os.PathLike[str] | None,
    footprint_out: str | os.PathLike[str] | None,
    plan: HeadPlan,
    card: ModelCard,
    probs_dtype: str,
    tta: str | None,
) -> dict[str, StagedCOG]:
    classes = {str(k): n for k, n in enumerate(plan.class_names, start=1)}
    tags = {
        CLASSES_TAG: json.dumps(classes),
        "LANDFORGE_MODEL": card.model,
        "LANDFORGE_TTA": str(tta),
    }
    if card.taxonomy:
        tags["LANDFORGE_TAXONOMY"] = card.taxonomy
    outputs: dict[str, StagedCOG] = {}

    def opened(name: str, staged: StagedCOG) -> None:
        outputs[name] = staged
        stack.callback(staged.abort)  # no-op after finish(); cleans up on error

    opened(
        "classes",
        StagedCOG(
            out,
            grid,
            1,
            np.uint8,
            NODATA_CLASS,
            descriptions=["class"],
            colormap=class_colormap(plan.class_names, card.taxonomy),
            tags=tags,
        ),
    )
    if probs_out is not None:
        uint8 = probs_dtype == "uint8"
        opened(
            "probs",
            StagedCOG(
                probs_out,
                grid,
                len(plan.class_names),
                probs_dtype,
                NODATA_CLASS if uint8 else float("nan"),
                descriptions=plan.class_names,
                tags=tags,
                scale=1.0 / PROB_SCALE if uint8 else None,
            ),
        )
    if footprint_out is not None:
        opened(
            "footprint",
            StagedCOG(
                footprint_out,
                grid,
                1,
                np.float32,
                float("nan"),
                descriptions=["footprint_probability"],
                tags=tags,
            ),
        )
    return outputs


def _select_bands(
    card: ModelCard,
    image: str | os.PathLike[str],
    sources: Sequence[Any],
    bands: Sequence[int] | None,
) -> list[list[int]]:
    """1-based band indexes to read from each source, checked against the card."""
    img = sources[0]
    extra_count = sum(src.count for src in sources[1:])
    if bands is not None:
        bad = [b for b in bands if not 1 <= int(b) <= img.count]
        if bad:
            raise InputError("--bands", f"band(s) {bad} not in {image} ({img.count} bands)")
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
        raise InputError("--device", f"unknown device {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", "CUDA is not available on this machine; use --device cpu")
    return dev
