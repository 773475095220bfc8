"""``landforge change predict``: change map and T1/T2 class maps of a whole scene.

Uses the block layout, part files, resume records and Dask execution of ``landforge
predict`` (:func:`landforge.inference.blocks.plan_blocks`, :mod:`landforge.inference.parts`,
:func:`landforge.distributed.dask_client`): the scene is cut into windows of the
training patch size (centre-cropped by ``overlap``), grouped into blocks of
``block_windows`` x ``block_windows`` windows; :func:`change_block` (a pure function of
its :class:`ChangeBlock`) reads T1, T2 and, for every window, the series over the
window's 5x footprint **by geographic bounds**, runs the model and writes the block's
part files and ``done`` record; the parts are then assembled into COGs in ``OUT/``:
``change.tif`` (0/1), ``change_prob.tif`` (uint8, probability x 255), ``t1_classes.tif``
and ``t2_classes.tif``. A resumed run reuses blocks whose record carries the same run
key (model, options, inputs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from landforge.change.chips import check_pair, footprint_bounds
from landforge.change.options import ChangePredictOptions, pick_time_steps
from landforge.errors import InputError, OptionError
from landforge.inference.blocks import plan_blocks
from landforge.inference.parts import (
    PARTS_FORMAT,
    assemble,
    done_path,
    file_identity,
    hash_files,
    part_path,
    parts_dir_for,
    prepare_parts,
    run_key,
    write_json,
    write_part,
)
from landforge.inference.windows import Tile
from landforge.io.raster import RasterGrid, StagedCOG, read_grid
from landforge.progress import track

__all__ = ["OUTPUTS", "ChangeBlock", "change_block", "predict_change"]

#: output name -> file name in OUT/
OUTPUTS = {
    "change": "change.tif",
    "change_prob": "change_prob.tif",
    "t1": "t1_classes.tif",
    "t2": "t2_classes.tif",
}


@dataclass(frozen=True)
class ChangeBlock:
    """Everything one block needs: a pure description (picklable for Dask)."""

    index: int
    region: tuple[int, int, int, int]  # row, col, height, width
    tiles: tuple[Tile, ...]
    t1: str
    t2: str
    series: str | None
    checkpoint: str
    card: dict[str, Any]
    opts: dict[str, Any]
    parts: str
    key: str
    crs: str
    transform: tuple[float, ...]
    resample: bool


_MODELS: dict[tuple[str, str], tuple[torch.nn.Module, Any]] = {}


def _model(block: ChangeBlock) -> tuple[torch.nn.Module, Any]:
    from landforge.models.checkpoint import load_checkpoint

    key = (block.key, block.opts["device"])
    if key not in _MODELS:
        _MODELS.clear()
        model, card = load_checkpoint(block.checkpoint)
        _MODELS[key] = (model.to(torch.device(block.opts["device"])).eval(), card)
    return _MODELS[key]


def _read(ds: Any, win: Window, size: int, grid: RasterGrid | None = None) -> np.ndarray:
    """A window padded with 0 to ``size`` x ``size`` (through a VRT when ``grid`` is given)."""
    if grid is not None:
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT

        with WarpedVRT(
            ds,
            crs=grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=Resampling.nearest,
        ) as vrt:
            a = vrt.read(window=win)
    else:
        a = ds.read(window=win)
    out = np.zeros((a.shape[0], size, size), np.float32)
    out[:, : a.shape[1], : a.shape[2]] = a
    return out


def change_block(block: ChangeBlock) -> dict[str, Any]:
    """Predict one block and write its parts and done record; returns the record."""
    from landforge.change.series import open_series

    model, card = _model(block)
    sc = block.card
    size = int(block.opts["size"])
    device = torch.device(block.opts["device"])
    mean = np.asarray(card.mean, np.float32)[:, None, None]
    std = np.asarray(card.std, np.float32)[:, None, None]
    r0, c0, h, w = block.region
    acc = {
        "change": np.zeros((1, h, w), np.uint8),
        "change_prob": np.zeros((1, h, w), np.uint8),
        "t1": np.zeros((1, h, w), np.uint8),
        "t2": np.zeros((1, h, w), np.uint8),
    }
    with contextlib.ExitStack() as stack:
        d1 = stack.enter_context(rasterio.open(block.t1))
        d2 = stack.enter_context(rasterio.open(block.t2))
        full = RasterGrid(d1.crs, d1.transform, d1.width, d1.height)
        ser = stack.enter_context(open_series(block.series)) if block.series else None
        steps = pick_time_steps(len(ser.dates), int(sc["time_steps"])) if ser else []
        chan = [ser.channels.index(n) for n in sc["series_channels"]] if ser else []
        smean = np.asarray(sc["series_mean"], np.float32)[None, :, None, None]
        sstd = np.asarray(sc["series_std"], np.float32)[None, :, None, None]
        tiles = list(block.tiles)
        for i in range(0, len(tiles), int(block.opts["batch"])):
            batch = tiles[i : i + int(block.opts["batch"])]
            x1, x2, ss, dd, mm = [], [], [], [], []
            for t in batch:
                win = Window(t.col, t.row, t.width, t.height)
                x1.append((_read(d1, win, size) - mean) / std)
                x2.append((_read(d2, win, size, full if block.resample else None) - mean) / std)
                if ser is not None:
                    fp = footprint_bounds(
                        full, Window(t.col, t.row, size, size), sc["footprint_scale"]
                    )
                    if ser.coverage(fp, full.crs) < block.opts["min_coverage"]:
                        raise InputError(
                            block.series,
                            f"covers {100 * ser.coverage(fp, full.crs):.0f} % of the series "
                            f"footprint of the window at row {t.row}, col {t.col} "
                            f"(min_coverage {block.opts['min_coverage']:g})",
                        )
                    cut = ser.read(fp, full.crs, sc["series_res"], block.opts["max_cloud"])
                    s = cut.data[steps][:, chan]
                    m = cut.mask[steps]
                    ss.append(np.where(m[:, None, None, None], (s - smean) / sstd, 0.0))
                    dd.append(cut.days[steps])
                    mm.append(m)
            inputs: dict[str, torch.Tensor] = {
                "img1": torch.from_numpy(np.stack(x1)).float().to(device),
                "img2": torch.from_numpy(np.stack(x2)).float().to(device),
            }
            if ser is not None:
                inputs.update(
                    series=torch.from_numpy(np.stack(ss)).float().to(device),
                    days=torch.from_numpy(np.stack(dd)).long().to(device),
                    series_mask=torch.from_numpy(np.stack(mm)).to(device),
                )
            from landforge.change.train import forward, predict_maps

            with torch.no_grad():
                out = forward(model, inputs)
                p1, p2, pc = predict_maps(out, float(block.opts["threshold"]))
                prob = torch.sigmoid(out["change"][:, 0]) if "change" in out else pc.float()
            maps = {
                "change": pc.to(torch.uint8).cpu().numpy(),
                "change_prob": (prob * 255).round().to(torch.uint8).cpu().numpy(),
                "t1": p1.to(torch.uint8).cpu().numpy(),
                "t2": p2.to(torch.uint8).cpu().numpy(),
            }
            for j, t in enumerate(batch):
                kr, kc = t.keep_row - t.row, t.keep_col - t.col
                rr, cc = t.keep_row - r0, t.keep_col - c0
                for name, a in maps.items():
                    acc[name][0, rr : rr + t.keep_height, cc : cc + t.keep_width] = a[
                        j, kr : kr + t.keep_height, kc : kc + t.keep_width
                    ]
    parts = Path(block.parts)
    for name, a in acc.items():
        write_part(part_path(parts, block.index, name), a, block.crs, block.transform, block.region)
    rec = {
        "format": PARTS_FORMAT,
        "key": block.key,
        "index": block.index,
        "region": list(block.region),
        "outputs": list(acc),
        "changed_pixels": int(acc["change"].sum()),
    }
    write_json(done_path(parts, block.index), rec)
    return rec


def predict_change(
    t1: str | os.PathLike[str],
    t2: str | os.PathLike[str],
    model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    series: str | os.PathLike[str] | None = None,
    opts: ChangePredictOptions | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Write the change map, its probability and the T1/T2 class maps (see module doc)."""
    from landforge.change.series import open_series
    from landforge.change.train import read_series_card
    from landforge.models.checkpoint import checkpoint_paths, load_checkpoint

    o = ChangePredictOptions.build(opts, **overrides)
    sc = read_series_card(model)
    weights, card_path = checkpoint_paths(model)
    _, card = load_checkpoint(model)  # checks the checkpoint before any work
    if o.resample:
        grid = read_grid(t1)
        read_grid(t2)
    else:
        grid = check_pair(t1, t2)
    for img in (t1, t2):
        with rasterio.open(img) as ds:
            if ds.count != len(card.bands):
                bands = ", ".join(card.bands)
                raise InputError(
                    img, f"{ds.count} band(s); the model takes {len(card.bands)} ({bands})"
                )
    need = int(sc.get("time_steps", 0))
    if need and series is None:
        raise OptionError("series", f"the model uses {need} series dates: give the series")
    if need and series is not None:
        with open_series(series, o.min_dates) as ser:
            missing = [c for c in sc["series_channels"] if c not in ser.channels]
            if missing:
                raise InputError(series, f"lacks channel(s) {', '.join(missing)} the model uses")
            if len(ser.dates) < need:
                raise InputError(series, f"{len(ser.dates)} date(s); the model expects {need}")
    series_used = str(series) if need and series is not None else None
    size = o.window or int(sc["size"])
    overlap = o.overlap if size - 2 * o.overlap > 0 else 0
    plan = plan_blocks(grid.height, grid.width, size, overlap, o.block_windows, False)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = parts_dir_for(out_dir / OUTPUTS["change"])
    sidecar = weights.with_name(weights.stem + ".change.json")
    inputs = [t1, t2] + ([series_used] if series_used else [])
    key = run_key(
        {
            "model": hash_files([weights, card_path, sidecar]),
            "opts": o.model_dump(mode="json", exclude={"resume", "workers", "quiet", "device"}),
            "size": size,
            "inputs": [file_identity(p) for p in inputs],
        }
    )
    done = prepare_parts(parts, key, o.resume)
    opt = {**o.model_dump(mode="json"), "size": size}
    specs = [
        ChangeBlock(
            idx,
            region,
            tiles,
            str(t1),
            str(t2),
            series_used,
            str(weights),
            sc,
            opt,
            str(parts),
            key,
            grid.crs.to_string(),
            tuple(grid.transform)[:6],
            o.resample,
        )
        for idx, region, tiles, _ in plan
        if idx not in done
    ]
    records = list(done.values())
    from landforge.distributed import dask_client

    with dask_client("local" if o.workers else None, max(o.workers, 1)) as client:
        if client is None:
            for spec in track(specs, "change predict", quiet=o.quiet):
                records.append(change_block(spec))
        else:
            from dask.distributed import as_completed

            futures = client.map(change_block, specs, pure=False)
            for fut in as_completed(futures):
                records.append(fut.result())
    names = sc.get("classes") or card.heads.get("seg", [])
    colours = sc.get("colours")
    cmap = {i: tuple(c) for i, c in enumerate(colours)} if colours else None
    writers = {
        "change": StagedCOG(
            out_dir / OUTPUTS["change"],
            grid,
            1,
            "uint8",
            None,
            ["change"],
            {0: (0, 0, 0), 1: (255, 0, 0)},
        ),
        "change_prob": StagedCOG(
            out_dir / OUTPUTS["change_prob"], grid, 1, "uint8", None, ["change probability x 255"]
        ),
        "t1": StagedCOG(out_dir / OUTPUTS["t1"], grid, 1, "uint8", None, ["t1 class"], cmap),
        "t2": StagedCOG(out_dir / OUTPUTS["t2"], grid, 1, "uint8", None, ["t2 class"], cmap),
    }
    try:
        assemble(parts, [(idx, region) for idx, region, _, _ in plan], writers, grid.width)
        for wr in writers.values():
            wr.finish()
    except BaseException:
        for wr in writers.values():
            wr.abort()
        raise
    shutil.rmtree(parts, ignore_errors=True)
    changed = sum(int(r.get("changed_pixels", 0)) for r in records)
    return {
        "blocks": len(plan),
        "computed": len(specs),
        "reused": len(done),
        "changed_pixels": changed,
        "changed_share": changed / float(grid.width * grid.height),
        "classes": names,
        "outputs": {k: str(out_dir / v) for k, v in OUTPUTS.items()},
    }
