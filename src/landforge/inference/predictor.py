"""Large-area prediction: sliding windows, centre crops, COG outputs.

:func:`predict_raster` runs a checkpoint over an image of any size without holding it
in memory: it reads one window at a time (image bands plus extra rasters such as POI
probability maps, all on the same grid), normalises them with the model card's mean
and std, batches windows through the model under ``torch.inference_mode``, and keeps the
centre of each window (see :mod:`landforge.inference.windows`). Kept regions of one row
of windows form a horizontal strip; finished strips go to temporary on-disk GeoTIFFs
that are converted to Cloud-Optimised GeoTIFFs at the end (atomically), so memory stays
at a few strips whatever the raster size.

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
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import torch
import torch.nn as nn
from rasterio.windows import Window

from landforge.errors import InputError
from landforge.inference.constants import CLASSES_TAG, NODATA_CLASS, PROB_SCALE
from landforge.inference.tta import apply_tta, transforms
from landforge.inference.windows import Tile, pad_to_multiple, sliding_windows
from landforge.io.raster import RasterGrid, StagedCOG, check_same_grid, open_raster
from landforge.models.checkpoint import ModelCard, load_checkpoint
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


# --------------------------------------------------------------------------- outputs


@dataclass
class _Strip:
    """The kept rows of one row of windows, filled window by window."""

    row: int
    remaining: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


# --------------------------------------------------------------------------- predictor


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
) -> dict[str, Any]:
    """Predict a class map (and optionally probabilities) over a raster of any size.

    Args:
        checkpoint_or_model: checkpoint path (``NAME.safetensors``/``NAME.json``/stem) or
            a ``(model, card)`` pair.
        image: the image raster; its bands come first in the model input.
        out: the class map COG to write.
        extras: further rasters on the image's grid (e.g. POI maps), appended as bands
            in order; together with the image they must match ``card.bands``.
        window: window size in pixels; ``overlap``: context margin dropped per side.
        tta: None, ``"flips"`` or ``"d4"`` (see :mod:`.tta`).
        batch: windows per forward pass.
        mask: optional built-up mask on the same grid; windows whose kept region holds
            no mask pixel (> 0) are not predicted (class 0, footprint probability 0,
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

    Returns:
        A summary: window counts (predicted, skipped by the mask), pixel counts per
        class, seconds, throughput and output paths.

    Raises:
        InputError: unreadable inputs, rasters on different grids, a band count that
            differs from the model card, bad options.
    """
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

    with contextlib.ExitStack() as stack:
        img = stack.enter_context(open_raster(image))
        grid = RasterGrid(img.crs, img.transform, img.width, img.height)
        sources = [img]
        for extra in extras:
            check_same_grid(grid, extra)
            sources.append(stack.enter_context(open_raster(extra)))
        mask_src = None
        if mask is not None:
            check_same_grid(grid, mask)
            mask_src = stack.enter_context(open_raster(mask))
        indexes = _select_bands(card, image, sources, bands)
        mean = np.asarray(card.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(card.std, dtype=np.float32)[:, None, None]
        std = np.where(std > 0, std, 1.0).astype(np.float32)

        tiles = sliding_windows(grid.height, grid.width, window, overlap)
        outputs = _open_outputs(
            stack, grid, out, probs_out, footprint_out, plan, card, probs_dtype, tta
        )
        stats = _Stats(len(plan.class_names))
        strips: dict[int, _Strip] = {}
        per_row: dict[int, int] = {}
        for t in tiles:
            per_row[t.grid_row] = per_row.get(t.grid_row, 0) + 1

        def place(tile: Tile, result: dict[str, np.ndarray]) -> None:
            strip = strips.get(tile.grid_row)
            if strip is None:
                strip = _Strip(tile.keep_row, per_row[tile.grid_row])
                strip.arrays = {
                    name: np.empty((w.ds.count, tile.keep_height, grid.width), w.dtype)
                    for name, w in outputs.items()
                }
                strips[tile.grid_row] = strip
            cols = slice(tile.keep_col, tile.keep_col + tile.keep_width)
            for name, arr in result.items():
                if name in strip.arrays:
                    strip.arrays[name][:, :, cols] = arr
            strip.remaining -= 1
            if strip.remaining == 0:
                for name, writer in outputs.items():
                    writer.write(strip.arrays[name], strip.row)
                del strips[tile.grid_row]

        run = _Run(
            model,
            plan,
            tta,
            threshold,
            probs_dtype,
            outputs,
            pad_multiple,
            torch_device,
            place,
            stats,
            str(image),
            window,
            card.model,
        )
        pending: list[tuple[Tile, np.ndarray, np.ndarray]] = []
        desc = f"predict {Path(image).name}"
        for tile in track(tiles, desc, total=len(tiles), quiet=quiet):
            if mask_src is not None and not _mask_hits(mask_src, tile):
                valid = _valid_mask(sources, tile.keep_window)
                place(tile, _skipped_result(valid, plan, outputs, probs_dtype))
                stats.add_skipped(valid)
                continue
            x, valid = _read_window(sources, tile.window, mean, std, indexes)
            pending.append((tile, x, valid))
            if len(pending) == batch:
                _run_batch(run, pending)
                pending = []
        if pending:
            _run_batch(run, pending)
        if strips:  # pragma: no cover - would be a layout bug
            raise RuntimeError(f"unfinished strips {sorted(strips)}")
        written = {name: str(w.finish()) for name, w in outputs.items()}

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
        "device": str(torch_device),
        "windows": len(tiles),
        "windows_predicted": len(tiles) - stats.skipped,
        "windows_skipped": stats.skipped,
        "nodata_pixels": int(stats.nodata),
        "class_pixels": {"background": int(stats.counts[0])}
        | {name: int(stats.counts[k]) for k, name in enumerate(plan.class_names, start=1)},
        "seconds": round(seconds, 3),
        "megapixels_per_second": round(pixels / 1e6 / max(seconds, 1e-9), 3),
        "outputs": written,
    }


class _Stats:
    def __init__(self, n_classes: int) -> None:
        self.counts = np.zeros(n_classes + 1, dtype=np.int64)
        self.nodata = 0
        self.skipped = 0

    def add(self, classes: np.ndarray) -> None:
        valid = classes != NODATA_CLASS
        self.nodata += int((~valid).sum())
        self.counts += np.bincount(classes[valid].ravel(), minlength=len(self.counts))[
            : len(self.counts)
        ]

    def add_skipped(self, valid: np.ndarray) -> None:
        self.skipped += 1
        self.counts[0] += int(valid.sum())
        self.nodata += int((~valid).sum())


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


@dataclass
class _Run:
    """What every batch of one prediction run needs."""

    model: nn.Module
    plan: HeadPlan
    tta: str | None
    threshold: float
    probs_dtype: str
    outputs: Mapping[str, StagedCOG]
    pad_multiple: int
    device: torch.device
    place: Callable[[Tile, dict[str, np.ndarray]], None]
    stats: _Stats
    image: str
    window: int
    model_name: str


def _run_batch(run: _Run, pending: list[tuple[Tile, np.ndarray, np.ndarray]]) -> None:
    plan, outputs, stats, probs_dtype, threshold = (
        run.plan,
        run.outputs,
        run.stats,
        run.probs_dtype,
        run.threshold,
    )
    h, w = pending[0][1].shape[1:]
    ph, pw = pad_to_multiple(h, w, run.pad_multiple)
    xs = np.stack([_pad(x, ph, pw) for _, x, _ in pending])
    x = torch.from_numpy(xs).to(run.device)
    try:
        probs = model_probabilities(run.model, x, run.tta)
    except RuntimeError as exc:
        if h < run.window or w < run.window:
            raise InputError(
                run.image,
                f"raster is smaller than the {run.window}-pixel window and model "
                f"{run.model_name!r} cannot run on the whole raster padded to "
                f"{h + ph}x{w + pw} ({str(exc).splitlines()[0][:120]}); use a larger raster "
                "or a fully convolutional model",
            ) from None
        raise
    missing = [hd for hd in (plan.footprint, plan.classes) if hd and hd not in probs]
    if missing:
        raise InputError("model", f"model output lacks head(s) {missing}; has {list(probs)}")
    fp = probs[plan.footprint][:, 0, :h, :w].float().cpu().numpy() if plan.footprint else None
    cp = probs[plan.classes][:, :, :h, :w].float().cpu().numpy() if plan.classes else None
    for i, (tile, _, valid) in enumerate(pending):
        rs, cs = tile.keep_slices
        ok = valid[rs, cs]
        if cp is not None:
            classes = cp[i, :, rs, cs].argmax(0).astype(np.uint8) + 1
            if fp is not None:
                classes[fp[i, rs, cs] < threshold] = 0
        else:
            classes = (fp[i, rs, cs] >= threshold).astype(np.uint8)  # type: ignore[index]
        classes[~ok] = NODATA_CLASS
        stats.add(classes)
        result = {"classes": classes[None]}
        if "probs" in outputs:
            src = cp[i, :, rs, cs] if cp is not None else fp[i, None, rs, cs]  # type: ignore[index]
            result["probs"] = _encode_probs(src, ok, probs_dtype)
        if "footprint" in outputs:
            f = fp[i, rs, cs].astype(np.float32)  # type: ignore[index]
            f[~ok] = np.nan
            result["footprint"] = f[None]
        run.place(tile, result)


def _encode_probs(p: np.ndarray, valid: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "uint8":
        q = np.rint(np.clip(p, 0, 1) * PROB_SCALE).astype(np.uint8)
        q[:, ~valid] = NODATA_CLASS
        return q
    q = p.astype(np.float32, copy=True)
    q[:, ~valid] = np.nan
    return q


def _skipped_result(
    valid: np.ndarray, plan: HeadPlan, outputs: Mapping[str, StagedCOG], probs_dtype: str
) -> dict[str, np.ndarray]:
    classes = np.where(valid, 0, NODATA_CLASS).astype(np.uint8)[None]
    result = {"classes": classes}
    if "probs" in outputs:
        k = outputs["probs"].ds.count
        fill = NODATA_CLASS if probs_dtype == "uint8" else np.nan
        result["probs"] = np.full((k, *valid.shape), fill, dtype=outputs["probs"].dtype)
    if "footprint" in outputs:
        result["footprint"] = np.where(valid, 0.0, np.nan).astype(np.float32)[None]
    return result


def _pad(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    if not ph and not pw:
        return x
    pads = ((0, 0), (0, ph), (0, pw))
    mode = "reflect" if min(x.shape[1:]) > 1 else "edge"
    return np.pad(x, pads, mode=mode)


def _read_window(
    sources: Sequence[rasterio.io.DatasetReader],
    window: Window,
    mean: np.ndarray,
    std: np.ndarray,
    indexes: Sequence[list[int]],
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (C, h, w) float32 input and its (h, w) validity mask."""
    parts = [
        src.read(idx, window=window, out_dtype="float32")
        for src, idx in zip(sources, indexes, strict=True)
    ]
    x = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    valid = _valid_mask(sources, window) & np.isfinite(x).all(axis=0)
    x = (x - mean) / std
    x[:, ~valid] = 0.0  # nodata -> band mean; masked out of the outputs anyway
    return x, valid


def _valid_mask(sources: Sequence[rasterio.io.DatasetReader], window: Window) -> np.ndarray:
    valid = np.ones((int(window.height), int(window.width)), dtype=bool)
    for src in sources:
        if src.nodata is not None or any(
            rasterio.enums.MaskFlags.per_dataset in f or rasterio.enums.MaskFlags.alpha in f
            for f in src.mask_flag_enums
        ):
            valid &= src.dataset_mask(window=window) > 0
    return valid


def _mask_hits(mask_src: rasterio.io.DatasetReader, tile: Tile) -> bool:
    m = mask_src.read(1, window=tile.keep_window)
    hit = m > 0
    if mask_src.nodata is not None:
        hit &= m != mask_src.nodata
    return bool(hit.any())


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
        raise InputError(image, f"model wants {want} bands ({shown}), got {got}{detail}")
    return [image_idx] + [list(range(1, src.count + 1)) for src in sources[1:]]
    if len(card.mean) != want or len(card.std) != want:
        raise InputError("model", "model card mean/std do not match its band list")


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


import rasterio.enums  # noqa: E402
