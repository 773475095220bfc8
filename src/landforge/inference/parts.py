"""The parts directory of block-wise prediction: part files, done records, run key.

Every block of ``landforge predict`` (see :mod:`.blocks`) writes its region of every
output to a small GeoTIFF in ``OUT.parts/`` beside the class map, then a ``done``
record (JSON, written atomically after the files). :func:`assemble` streams the part
files, a few hundred rows at a time, into the final COGs
(:class:`~landforge.io.raster.StagedCOG`), so neither the driver nor a worker ever
holds a whole output raster.

Resume: every record carries the *run key* (:func:`run_key`), a hash of the model
(weights and card), the options that change pixels and the identity of every input
raster (resolved path, size, modification time). :func:`prepare_parts` keeps the
blocks whose record carries the current key; with resume off it discards them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.windows import Window

from landforge.errors import InputError
from landforge.io.raster import open_raster

__all__ = [
    "PARTS_FORMAT",
    "assemble",
    "done_path",
    "file_identity",
    "hash_files",
    "hash_model",
    "part_path",
    "parts_dir_for",
    "prepare_parts",
    "run_key",
    "write_json",
    "write_part",
]

PARTS_FORMAT = "landforge-parts/1"


def parts_dir_for(out: str | os.PathLike[str]) -> Path:
    """The parts directory of a class map: ``OUT.parts`` beside it."""
    p = Path(out)
    return p.with_name(p.name + ".parts")


def part_path(parts: Path, index: int, name: str) -> Path:
    """The part file of output ``name`` of block ``index``."""
    return parts / f"b{index:06d}.{name}.tif"


def done_path(parts: Path, index: int) -> Path:
    """The done record of block ``index``."""
    return parts / f"b{index:06d}.done.json"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def write_part(
    path: Path,
    arr: np.ndarray,
    crs: str | None,
    transform: Sequence[float],
    region: tuple[int, int, int, int],
) -> None:
    """Write one block's (bands, h, w) array atomically; ``transform`` of the raster."""
    tmp = _tmp_name(path)
    at = Affine(*transform[:6]) @ Affine.translation(region[1], region[0])
    profile = {
        "driver": "GTiff",
        "width": arr.shape[2],
        "height": arr.shape[1],
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "crs": crs,
        "transform": at,
        "tiled": False,
        "blockysize": 16,
        "compress": "zstd",  # level 1: ~2x cheaper than DEFLATE 1 to write and read back
        "zstd_level": 1,
        "BIGTIFF": "IF_SAFER",
    }
    try:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically."""
    tmp = _tmp_name(path)
    try:
        tmp.write_text(json.dumps(obj))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def prepare_parts(parts: Path, key: str, resume: bool) -> dict[int, dict[str, Any]]:
    """Create the parts directory; return the reusable done records by block index.

    Without ``resume`` an existing parts directory (left by an interrupted run) is
    removed, with a warning saying how many finished blocks are discarded. With
    ``resume`` the blocks whose record carries ``key`` and whose files exist are kept.
    """
    if parts.exists() and not parts.is_dir():
        raise InputError(parts, "exists and is not a directory (the class map's parts directory)")
    reusable: dict[int, dict[str, Any]] = {}
    if parts.is_dir():
        records = sorted(parts.glob("b*.done.json"))
        if not resume:
            if records:
                warnings.warn(
                    f"{parts}: discarding {len(records)} finished block(s) of an earlier "
                    "run (resume is off)",
                    UserWarning,
                    stacklevel=3,
                )
            shutil.rmtree(parts)
        else:
            for path in records:
                try:
                    rec = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if rec.get("key") != key or rec.get("format") != PARTS_FORMAT:
                    continue
                idx = int(rec["index"])
                if all(part_path(parts, idx, n).exists() for n in rec.get("outputs", [])):
                    reusable[idx] = rec
    try:
        parts.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(parts, f"cannot create the parts directory: {exc.strerror}") from None
    write_json(parts / "run.json", {"format": PARTS_FORMAT, "key": key})
    return reusable


def assemble(
    parts: Path,
    blocks: Sequence[tuple[int, tuple[int, int, int, int]]],
    outputs: dict[str, Any],
    width: int,
    budget_bytes: int = 64 * 2**20,
) -> None:
    """Stream the part files of all blocks into the staged outputs, strip by strip.

    Holds at most ``budget_bytes`` of full-width rows (all outputs together) at once.
    """
    by_row: dict[int, list[tuple[int, tuple[int, int, int, int]]]] = {}
    for index, region in blocks:
        by_row.setdefault(region[0], []).append((index, region))
    bytes_per_row = sum(w.ds.count * w.dtype.itemsize for w in outputs.values()) * width
    step = max(1, budget_bytes // max(bytes_per_row, 1))
    for row0 in sorted(by_row):
        row_blocks = sorted(by_row[row0], key=lambda b: b[1][1])
        height = row_blocks[0][1][2]
        with contextlib.ExitStack() as stack:
            opened = {
                (idx, name): stack.enter_context(open_raster(part_path(parts, idx, name)))
                for idx, _ in row_blocks
                for name in outputs
            }
            for r in range(0, height, step):
                n = min(step, height - r)
                for name, writer in outputs.items():
                    strip = np.empty((writer.ds.count, n, width), dtype=writer.dtype)
                    for idx, (_, c0, _, w) in row_blocks:
                        strip[:, :, c0 : c0 + w] = opened[idx, name].read(window=Window(0, r, w, n))
                    writer.write(strip, row0 + r)


# --------------------------------------------------------------------------- run key


def file_identity(path: str | os.PathLike[str]) -> list[Any]:
    """Cheap identity of an input file: resolved path, size, modification time (ns)."""
    p = Path(path).resolve()
    st = p.stat()
    return [str(p), st.st_size, st.st_mtime_ns]


def hash_files(paths: Iterable[Path]) -> str:
    """SHA-256 of the contents of ``paths`` in order (a checkpoint's weights and card)."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def hash_model(model: torch.nn.Module, card_json: str) -> str:
    """SHA-256 of an in-memory model's card and state dict."""
    h = hashlib.sha256(card_json.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        t = t.detach().cpu().contiguous()
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def run_key(parts: dict[str, Any]) -> str:
    """The run key: a hash of everything that changes the pixels of a block."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
