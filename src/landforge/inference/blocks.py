"""Block-wise prediction: the unit of work of ``landforge predict`` and how it is computed.

The sliding-window layout of a raster (:mod:`.windows`) is cut into **blocks** of
``block_windows`` x ``block_windows`` windows. A block's *region* is the union of the
kept regions of its windows, so the regions of all blocks tile the raster exactly.
:func:`predict_block` is a pure function of its :class:`BlockSpec`: it opens the
rasters, reads its windows, runs the model (loaded once per process and cached by
checkpoint), and writes the block's region of every output to small GeoTIFFs in the
*parts directory* ``OUT.parts/`` next to the class map, then a ``done`` record (JSON,
written atomically after the files). The same function runs in-process, on a local
Dask cluster or on remote Dask workers that see the same files.

The part files, their assembly into the final COGs and the run key that decides which
finished blocks a resumed run may reuse live in :mod:`.parts`; every block is computed
the same way whoever computes it, so a resumed run is bit-identical to an
uninterrupted one.

Blended mode (``blend=True``): instead of keeping each window's centre, every window
contributes to every pixel it covers with a separable weight that is 0 within
``overlap/2`` pixels of an inner window edge (edges on the raster boundary are not
tapered), rises as ``sin²`` to 1 at ``overlap`` pixels, and is 1 inside; overlapping
contributions are averaged by weight. Each window's own kept region lies at least
``overlap`` pixels inside it, so the weights there sum to at least 1, and the
cross-fade between two windows is centred on the kept boundary. For a model whose
receptive-field radius is at most ``overlap/2`` every contribution equals the
whole-image prediction, so blending changes nothing; for real networks it removes
seams. A block computes every window whose non-zero weight reaches its region,
including windows that belong to neighbouring blocks (about ``((B+2)/B)²`` times the
model work of centre cropping for blocks of B x B windows; use larger blocks).
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.enums
import rasterio.windows
import torch
from rasterio.windows import Window

from landforge.errors import InputError, OptionError
from landforge.inference.constants import NODATA_CLASS, PROB_SCALE
from landforge.inference.forward import model_probabilities, pad_window
from landforge.inference.options import PredictOptions
from landforge.inference.parts import (
    PARTS_FORMAT,
    done_path,
    hash_files,
    part_path,
    write_json,
    write_part,
)
from landforge.inference.windows import Tile, axis_layout, pad_to_multiple, sliding_windows
from landforge.io.raster import open_raster
from landforge.models.checkpoint import load_checkpoint

__all__ = [
    "SourceSpec",
    "Job",
    "BlockSpec",
    "plan_blocks",
    "predict_block",
    "register_model",
    "blend_weights",
    "hash_files",  # from .parts: benchmarks/bench_mapping.py keys warm models with it
]

OUTPUT_DTYPES = {"classes": "uint8", "footprint": "float32"}


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class SourceSpec:
    """One input raster and where it sits on the image grid.

    ``row_off``/``col_off``: the raster's top-left pixel in image pixel coordinates
    (0, 0 for a raster on the image grid; other values for an aligned raster with a
    different extent, read boundlessly: pixels outside it are nodata).
    """

    path: str
    indexes: tuple[int, ...]
    row_off: int = 0
    col_off: int = 0


@dataclass(frozen=True)
class Job:
    """Everything a block needs besides its windows (picklable, no open files).

    ``opts`` are the run's options (window, overlap, TTA, threshold, batch, ...); the
    other fields are what the driver derived from the model and the rasters.
    """

    opts: PredictOptions
    model_path: str | None  # checkpoint; None: an in-memory model registered in-process
    model_key: str
    model_name: str
    device: str  # the resolved torch device
    sources: tuple[SourceSpec, ...]
    mask: SourceSpec | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    footprint_head: str | None
    classes_head: str | None
    n_probs: int
    outputs: tuple[str, ...]
    height: int
    width: int
    crs: str | None
    transform: tuple[float, ...]
    parts: str
    key: str
    torch_threads: int | None = None

    def dtype(self, name: str) -> np.dtype:
        """The array type of output ``name`` (classes, probs, footprint)."""
        return np.dtype(self.opts.probs_dtype if name == "probs" else OUTPUT_DTYPES[name])

    def count(self, name: str) -> int:
        """The band count of output ``name``."""
        return self.n_probs if name == "probs" else 1


@dataclass(frozen=True)
class BlockSpec:
    """One unit of work: the block's region and the windows it computes.

    Attributes:
        index: block number (row-major).
        region: (row, col, height, width) of the block's region in the raster.
        tiles: windows to compute (centre crop: the block's own windows; blend: every
            window whose weight reaches the region).
        owned: indexes of the block's own windows (their kept regions tile the region).
    """

    job: Job
    index: int
    region: tuple[int, int, int, int]
    tiles: tuple[Tile, ...]
    owned: frozenset[int]


def plan_blocks(
    height: int, width: int, window: int, overlap: int, block_windows: int, blend: bool
) -> list[tuple[int, tuple[int, int, int, int], tuple[Tile, ...], frozenset[int]]]:
    """(index, region, tiles, owned) of every block, row-major."""
    if block_windows < 1:
        raise OptionError("block_windows", f"must be at least 1, got {block_windows}")
    rows = axis_layout(height, window, overlap)
    cols = axis_layout(width, window, overlap)
    tiles = sliding_windows(height, width, window, overlap)
    ncols = len(cols)
    row_zone = [_positive_zone(s, min(window, height), height, overlap) for s, _, _ in rows]
    col_zone = [_positive_zone(s, min(window, width), width, overlap) for s, _, _ in cols]
    blocks = []
    index = 0
    for bi in range(0, len(rows), block_windows):
        gr = range(bi, min(bi + block_windows, len(rows)))
        r0, r1 = rows[gr[0]][1], rows[gr[-1]][2]
        for bj in range(0, ncols, block_windows):
            gc = range(bj, min(bj + block_windows, ncols))
            c0, c1 = cols[gc[0]][1], cols[gc[-1]][2]
            owned = frozenset(i * ncols + j for i in gr for j in gc)
            if blend:
                near_r = [i for i, (a, b) in enumerate(row_zone) if a < r1 and b > r0]
                near_c = [j for j, (a, b) in enumerate(col_zone) if a < c1 and b > c0]
                chosen = tuple(tiles[i * ncols + j] for i in near_r for j in near_c)
            else:
                chosen = tuple(tiles[i] for i in sorted(owned))
            blocks.append((index, (r0, c0, r1 - r0, c1 - c0), chosen, owned))
            index += 1
    return blocks


def blend_weights(start: int, length: int, total: int, overlap: int) -> np.ndarray:
    """Blending weight along one axis of a window starting at ``start`` (see module doc)."""
    w = np.ones(length, dtype=np.float64)
    if overlap <= 0:
        return w.astype(np.float32)
    d = np.arange(length) + 0.5
    m0, m1 = overlap / 2.0, float(overlap)

    def ramp(dist: np.ndarray) -> np.ndarray:
        t = np.clip((dist - m0) / (m1 - m0), 0.0, 1.0)
        return np.sin(0.5 * np.pi * t) ** 2

    if start > 0:
        w *= ramp(d)
    if start + length < total:
        w *= ramp(length - d)
    return w.astype(np.float32)


def _positive_zone(start: int, length: int, total: int, overlap: int) -> tuple[int, int]:
    nz = np.flatnonzero(blend_weights(start, length, total, overlap) > 0)
    return start + int(nz[0]), start + int(nz[-1]) + 1


# --------------------------------------------------------------------------- models

_MODELS: collections.OrderedDict[tuple[str, str], torch.nn.Module] = collections.OrderedDict()
_MODELS_LOCK = threading.Lock()
_MAX_MODELS = 2
_LOADS = [0]  # checkpoint loads in this process (tests check "once per process")


def register_model(key: str, device: str, model: torch.nn.Module) -> None:
    """Put an already loaded model into this process's cache."""
    with _MODELS_LOCK:
        _MODELS[(key, device)] = model
        _MODELS.move_to_end((key, device))
        while len(_MODELS) > _MAX_MODELS:
            _MODELS.popitem(last=False)


def _model(job: Job) -> torch.nn.Module:
    ck = (job.model_key, job.device)
    with _MODELS_LOCK:  # load under the lock: threads of one process load it once
        model = _MODELS.get(ck)
        if model is not None:
            _MODELS.move_to_end(ck)
            return model
        if job.model_path is None:  # pragma: no cover - the driver registers it
            raise RuntimeError("in-memory model is not registered in this process")
        model, _ = load_checkpoint(job.model_path)
        model = model.to(torch.device(job.device)).eval()
        _LOADS[0] += 1
        _MODELS[ck] = model
        while len(_MODELS) > _MAX_MODELS:
            _MODELS.popitem(last=False)
        return model


# --------------------------------------------------------------------------- reading


class _Source:
    """An open input raster placed on the image grid (boundless reads)."""

    def __init__(self, ds: Any, spec: SourceSpec) -> None:
        self.ds = ds
        self.spec = spec
        self.needs_mask = ds.nodata is not None or any(
            rasterio.enums.MaskFlags.per_dataset in f or rasterio.enums.MaskFlags.alpha in f
            for f in ds.mask_flag_enums
        )

    def _clip(self, window: Window) -> tuple[Window | None, tuple[slice, slice]]:
        r0 = int(window.row_off) - self.spec.row_off
        c0 = int(window.col_off) - self.spec.col_off
        h, w = int(window.height), int(window.width)
        a, b = max(r0, 0), min(r0 + h, self.ds.height)
        c, d = max(c0, 0), min(c0 + w, self.ds.width)
        if a >= b or c >= d:
            return None, (slice(0, 0), slice(0, 0))
        return Window(c, a, d - c, b - a), (slice(a - r0, b - r0), slice(c - c0, d - c0))

    def _whole(self, win: Window | None, window: Window) -> bool:
        return win is not None and (win.height, win.width) == (window.height, window.width)

    def read(self, window: Window, out_dtype: str | None = "float32") -> np.ndarray:
        # self.ds comes from open_raster: a failed read raises InputError naming the file
        win, (rs, cs) = self._clip(window)
        idx = list(self.spec.indexes)
        if self._whole(win, window):
            return self.ds.read(idx, window=win, out_dtype=out_dtype)
        out = np.zeros(
            (len(idx), int(window.height), int(window.width)),
            dtype=out_dtype or self.ds.dtypes[0],
        )
        if win is not None:
            out[:, rs, cs] = self.ds.read(idx, window=win, out_dtype=out_dtype)
        return out

    def valid(self, window: Window) -> np.ndarray:
        win, (rs, cs) = self._clip(window)
        if self._whole(win, window) and not self.needs_mask:
            return np.ones((int(window.height), int(window.width)), dtype=bool)
        out = np.zeros((int(window.height), int(window.width)), dtype=bool)
        if win is None:
            return out
        out[rs, cs] = self.ds.dataset_mask(window=win) > 0 if self.needs_mask else True
        return out


def _open(stack: contextlib.ExitStack, spec: SourceSpec) -> _Source:
    return _Source(stack.enter_context(open_raster(spec.path)), spec)


class _Inputs:
    """The open sources of one block: normalised reads, validity, mask hits."""

    def __init__(self, job: Job, sources: list[_Source], mask: _Source | None) -> None:
        self.job = job
        self.sources = sources
        self.mask = mask
        self.mean = np.asarray(job.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(job.std, dtype=np.float32)[:, None, None]
        self.std = np.where(std > 0, std, 1.0).astype(np.float32)

    def window(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Normalised (C, h, w) float32 input and its (h, w) validity mask."""
        parts = [s.read(window) for s in self.sources]
        x = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
        valid = self.valid(window) & np.isfinite(x).all(axis=0)
        x = (x - self.mean) / self.std
        x[:, ~valid] = 0.0  # nodata -> band mean; masked out of the outputs anyway
        return x, valid

    def valid(self, window: Window) -> np.ndarray:
        valid = np.ones((int(window.height), int(window.width)), dtype=bool)
        for s in self.sources:
            valid &= s.valid(window)
        return valid

    def skip(self, tile: Tile) -> bool:
        """True when a mask is given and the window's kept region holds no mask pixel."""
        if self.mask is None:
            return False
        m = self.mask.read(tile.keep_window, out_dtype=None)[0]
        hit = m > 0
        if self.mask.ds.nodata is not None:
            hit &= m != self.mask.ds.nodata
        return not bool(hit.any())


# --------------------------------------------------------------------------- compute


def _forward(
    job: Job, model: torch.nn.Module, xs: Sequence[np.ndarray]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Footprint (N, h, w) and class (N, K, h, w) probabilities of a batch of windows."""
    o = job.opts
    h, w = xs[0].shape[1:]
    ph, pw = pad_to_multiple(h, w, o.pad_multiple)
    x = np.stack([pad_window(x, ph, pw) for x in xs])
    try:
        probs = model_probabilities(model, torch.from_numpy(x).to(torch.device(job.device)), o.tta)
    except RuntimeError as exc:
        if h < o.window or w < o.window:
            raise OptionError(
                "window",
                f"raster ({job.width}x{job.height}) is smaller than the {o.window}-pixel "
                f"window and model {job.model_name!r} cannot run on it padded to "
                f"{w + pw}x{h + ph} ({str(exc).splitlines()[0][:120]}); use "
                f"{min(job.width, job.height)} or less, a larger raster or a fully "
                "convolutional model",
            ) from None
        raise
    heads = [hd for hd in (job.footprint_head, job.classes_head) if hd]
    missing = [hd for hd in heads if hd not in probs]
    if missing:
        raise InputError("model", f"model output lacks head(s) {missing}; has {list(probs)}")
    fp = cp = None
    if job.footprint_head:
        fp = probs[job.footprint_head][:, 0, :h, :w].float().cpu().numpy()
    if job.classes_head:
        cp = probs[job.classes_head][:, :, :h, :w].float().cpu().numpy()
    return fp, cp


def _alloc(job: Job, h: int, w: int) -> dict[str, np.ndarray]:
    arrays = {}
    for name in job.outputs:
        dtype = job.dtype(name)
        fill = NODATA_CLASS if dtype == np.uint8 else np.nan
        arrays[name] = np.full((job.count(name), h, w), fill, dtype=dtype)
    return arrays


def _place(
    job: Job,
    arrays: dict[str, np.ndarray],
    at: tuple[slice, slice],
    fp: np.ndarray | None,
    cp: np.ndarray | None,
    ok: np.ndarray,
) -> None:
    """Write class map / probabilities of one kept region (fp (h, w), cp (K, h, w))."""
    if cp is not None:
        classes = cp.argmax(0).astype(np.uint8) + 1
        if fp is not None:
            classes[fp < job.opts.threshold] = 0
    else:
        classes = (fp >= job.opts.threshold).astype(np.uint8)  # type: ignore[operator]
    classes[~ok] = NODATA_CLASS
    rs, cs = at
    arrays["classes"][0, rs, cs] = classes
    if "probs" in arrays:
        src = cp if cp is not None else fp[None]  # type: ignore[index]
        if job.opts.probs_dtype == "uint8":
            q = np.rint(np.clip(src, 0, 1) * PROB_SCALE).astype(np.uint8)
            q[:, ~ok] = NODATA_CLASS
        else:
            q = src.astype(np.float32, copy=True)
            q[:, ~ok] = np.nan
        arrays["probs"][:, rs, cs] = q
    if "footprint" in arrays:
        f = fp.astype(np.float32, copy=True)  # type: ignore[union-attr]
        f[~ok] = np.nan
        arrays["footprint"][0, rs, cs] = f


def _place_skipped(
    arrays: dict[str, np.ndarray], at: tuple[slice, slice], valid: np.ndarray
) -> None:
    """A window skipped by the mask: class 0, footprint 0, probabilities nodata."""
    rs, cs = at
    arrays["classes"][0, rs, cs] = np.where(valid, 0, NODATA_CLASS)
    if "footprint" in arrays:
        arrays["footprint"][0, rs, cs] = np.where(valid, 0.0, np.nan)
    # probabilities stay at their nodata fill


def _local(tile_window: Window, region: tuple[int, int, int, int]) -> tuple[slice, slice]:
    r = int(tile_window.row_off) - region[0]
    c = int(tile_window.col_off) - region[1]
    return slice(r, r + int(tile_window.height)), slice(c, c + int(tile_window.width))


def _batches(
    spec: BlockSpec, inputs: _Inputs, on_skip: Callable[[Tile], None]
) -> Iterable[list[tuple[Tile, np.ndarray, np.ndarray]]]:
    pending: list[tuple[Tile, np.ndarray, np.ndarray]] = []
    for tile in spec.tiles:
        if inputs.skip(tile):
            on_skip(tile)
            continue
        x, valid = inputs.window(tile.window)
        pending.append((tile, x, valid))
        if len(pending) == spec.job.opts.batch:
            yield pending
            pending = []
    if pending:
        yield pending


def _crop_block(spec: BlockSpec, model: torch.nn.Module, inputs: _Inputs) -> tuple[dict, int]:
    job, region = spec.job, spec.region
    arrays = _alloc(job, region[2], region[3])
    skipped = [0]

    def on_skip(tile: Tile) -> None:
        skipped[0] += 1
        _place_skipped(arrays, _local(tile.keep_window, region), inputs.valid(tile.keep_window))

    for pending in _batches(spec, inputs, on_skip):
        fp, cp = _forward(job, model, [x for _, x, _ in pending])
        for i, (tile, _, valid) in enumerate(pending):
            rs, cs = tile.keep_slices
            _place(
                job,
                arrays,
                _local(tile.keep_window, region),
                fp[i, rs, cs] if fp is not None else None,
                cp[i, :, rs, cs] if cp is not None else None,
                valid[rs, cs],
            )
    return arrays, skipped[0]


def _blend_block(spec: BlockSpec, model: torch.nn.Module, inputs: _Inputs) -> tuple[dict, int]:
    job, region = spec.job, spec.region
    h, w = region[2], region[3]
    arrays = _alloc(job, h, w)
    acc_f = np.zeros((h, w), np.float32) if job.footprint_head else None
    acc_c = np.zeros((job.n_probs, h, w), np.float32) if job.classes_head else None
    wsum = np.zeros((h, w), np.float32)
    valid_region = np.zeros((h, w), bool)
    skipped_region = np.zeros((h, w), bool)
    skipped = [0]
    region_win = Window(region[1], region[0], w, h)

    def on_skip(tile: Tile) -> None:
        if tile.index in spec.owned:
            skipped[0] += 1
            at = _local(tile.keep_window, region)
            valid = inputs.valid(tile.keep_window)
            _place_skipped(arrays, at, valid)
            skipped_region[at] = True

    for pending in _batches(spec, inputs, on_skip):
        fp, cp = _forward(job, model, [x for _, x, _ in pending])
        for i, (tile, _, valid) in enumerate(pending):
            inter = rasterio.windows.intersection(tile.window, region_win)
            at = _local(inter, region)
            ws = _local(inter, (tile.row, tile.col, 0, 0))
            wy = blend_weights(tile.row, tile.height, job.height, job.opts.overlap)
            wx = blend_weights(tile.col, tile.width, job.width, job.opts.overlap)
            wgt = np.outer(wy, wx)[ws]
            if acc_f is not None:
                acc_f[at] += wgt * fp[i][ws]  # type: ignore[index]
            if acc_c is not None:
                acc_c[(slice(None), *at)] += wgt * cp[i][(slice(None), *ws)]  # type: ignore[index]
            wsum[at] += wgt
            valid_region[at] = valid[ws]
    done = ~skipped_region
    if done.any():
        denom = np.where(wsum > 0, wsum, 1.0)
        fp_b = acc_f / denom if acc_f is not None else None
        cp_b = acc_c / denom if acc_c is not None else None
        keep = {name: arr.copy() for name, arr in arrays.items()}
        _place(job, arrays, (slice(None), slice(None)), fp_b, cp_b, valid_region)
        for name, arr in arrays.items():  # skipped windows keep their skipped values
            arr[:, skipped_region] = keep[name][:, skipped_region]
    return arrays, skipped[0]


def predict_block(spec: BlockSpec) -> dict[str, Any]:
    """Compute one block and write its part files and done record; returns the record.

    Pure apart from the files it writes in ``spec.job.parts``; safe to run on any Dask
    worker that sees the input and parts paths. A user error (e.g. an unreadable
    raster) is raised as :class:`InputError`, which pickles whole, so Dask re-raises
    it in the driver as it is.
    """
    job = spec.job
    t0 = time.perf_counter()
    if job.torch_threads:
        torch.set_num_threads(job.torch_threads)
    model = _model(job)
    with contextlib.ExitStack() as stack:
        sources = [_open(stack, s) for s in job.sources]
        mask = _open(stack, job.mask) if job.mask is not None else None
        inputs = _Inputs(job, sources, mask)
        compute = _blend_block if job.opts.blend else _crop_block
        arrays, skipped = compute(spec, model, inputs)
    classes = arrays["classes"][0]
    valid = classes != NODATA_CLASS
    counts = np.bincount(classes[valid].ravel(), minlength=256)
    parts = Path(job.parts)
    for name, arr in arrays.items():
        write_part(part_path(parts, spec.index, name), arr, job.crs, job.transform, spec.region)
    record = {
        "format": PARTS_FORMAT,
        "key": job.key,
        "index": spec.index,
        "region": list(spec.region),
        "outputs": list(arrays),
        "counts": [int(c) for c in counts],
        "nodata": int((~valid).sum()),
        "windows": len([t for t in spec.tiles if t.index in spec.owned]),
        "windows_computed": len(spec.tiles),
        "skipped": skipped,
        "seconds": round(time.perf_counter() - t0, 3),
        "pid": os.getpid(),
    }
    write_json(done_path(parts, spec.index), record)
    return record
