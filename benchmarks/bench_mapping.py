"""Large-area mapping engine: pipeline overhead, throughput, Dask scaling, peak memory.

Measures in one run (all on CPU, random weights: speed does not depend on them):

(a) ``overhead``: end-to-end ``predict_raster`` time / pure model forward time on the
    same windows in the same batches (multitask_unet, resnet34, window 1024, overlap
    128, batch 8, 2048 x 2048 raster). Target <= 1.15.
    ``assembly_share``: of that run, the seconds spent assembling the part files into
    the final COGs (``assemble`` plus the COG copies) / the rest (the prediction);
    target <= 0.10.
(b) ``throughput_mpix_s``: finished map megapixels per second of that run.
(c) ``dask_speedup``: the same prediction on a local Dask cluster of 1 and of 2 worker
    processes (one thread each, ``torch.set_num_threads(1)``), cluster start-up and
    model loading excluded; target >= 1.7 on 2 idle cores. ``--dask-runs N`` repeats
    the pair N times back to back (1, 2, 1, 2, ...) and reports every ratio.
(d) ``peak_rss_mb``: peak resident memory of a child process predicting a 20,000 x
    20,000 x 3 raster (generated on the fly, tiled and compressed, written by blocks)
    with a tiny conv model, against the raster's own size (``raster_mb``): it must stay
    bounded by blocks, not grow with the raster.

Run: ``python benchmarks/bench_mapping.py [--quick] [--dask-runs N] [--skip-rss]``
(``--quick``: small sizes, to check that it works; ``--skip-rss``: leave out (d);
``--dask-only``: only (c)). Prints one JSON line last; results in BENCHMARKS.md ("Large-area mapping").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
import torch.nn as nn
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from landforge.inference import blocks as B
from landforge.inference.predictor import model_probabilities, predict_raster
from landforge.models.checkpoint import ModelCard, save_checkpoint
from landforge.models.registry import _BUILDERS, build, register

BANDS = ["red", "green", "blue"]


class TinyConv(nn.Module):
    """Two 3x3 convolutions and 1x1 heads: memory matters in (d), not the model."""

    def __init__(self, in_channels: int = 3, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
        )
        self.footprint = nn.Conv2d(width, 1, 1)
        self.use = nn.Conv2d(width, 3, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.body(x)
        return {"footprint": self.footprint(f), "use": self.use(f)}


if "bench_tiny_conv" not in _BUILDERS:
    register("bench_tiny_conv")(TinyConv)


def card(model: str, kwargs: dict[str, Any]) -> ModelCard:
    return ModelCard(
        model=model,
        model_kwargs=kwargs,
        bands=BANDS,
        mean=[100.0] * 3,
        std=[50.0] * 3,
        heads={"footprint": ["building"], "use": ["residential", "commercial", "industrial"]},
        taxonomy="rci",
        gsd_m=0.5,
    )


def unet_checkpoint(folder: Path) -> Path:
    torch.manual_seed(0)
    kwargs = {"in_channels": 3, "classes": 3, "encoder": "resnet34"}
    return save_checkpoint(
        build("multitask_unet", **kwargs), card("multitask_unet", kwargs), folder / "unet"
    )


def write_raster(path: Path, size: int, block: int = 1024) -> Path:
    """A size x size x 3 uint8 raster, tiled and compressed, written block by block."""
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint8",
        "crs": CRS.from_epsg(32650),
        "transform": Affine(0.5, 0, 500000, 0, -0.5, 3400000),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "zlevel": 1,
        "BIGTIFF": "IF_SAFER",
    }
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for r in range(0, size, block):
            for c in range(0, size, block):
                h, w = min(block, size - r), min(block, size - c)
                yy = np.arange(r, r + h, dtype=np.int32)[:, None] // 53
                xx = np.arange(c, c + w, dtype=np.int32)[None, :] // 37
                base = (((xx + yy) % 7) * 30 + 20).astype(np.uint8)
                noise = rng.integers(0, 8, size=(3, h, w), dtype=np.uint8)
                arr = base[None] + noise + (np.arange(3, dtype=np.uint8) * 5)[:, None, None]
                dst.write(arr, window=Window(c, r, w, h))
    return path


def pure_forward(ckpt: Path, image: Path, window: int, overlap: int, batch: int, bw: int) -> float:
    """Seconds of model forward alone over the same windows and batches as predict."""
    from landforge.models.checkpoint import load_checkpoint

    model, c = load_checkpoint(ckpt)
    with rasterio.open(image) as src:
        layout = B.plan_blocks(src.height, src.width, window, overlap, bw, False)
        mean = np.asarray(c.mean, np.float32)[:, None, None]
        std = np.asarray(c.std, np.float32)[:, None, None]
        batches = []
        for _, _, tiles, _ in layout:
            xs = [(src.read(window=t.window, out_dtype="float32") - mean) / std for t in tiles]
            batches += [np.stack(xs[i : i + batch]) for i in range(0, len(xs), batch)]
    model_probabilities(model, torch.from_numpy(batches[0][:1]))  # warm-up
    t0 = time.perf_counter()
    for x in batches:
        model_probabilities(model, torch.from_numpy(x))
    return time.perf_counter() - t0


def dask_seconds(ckpt: Path, image: Path, out: Path, n: int, window: int, overlap: int) -> float:
    from dask.distributed import Client, LocalCluster

    key = B.hash_files([ckpt, ckpt.with_suffix(".json")])

    def warm(path: str, key: str) -> int:
        import torch

        from landforge.inference import blocks
        from landforge.models.checkpoint import load_checkpoint

        torch.set_num_threads(1)
        model, _ = load_checkpoint(path)
        blocks.register_model(key, "cpu", model.eval())
        return os.getpid()

    with (
        LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=50,
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        client.run(warm, str(ckpt), key)
        t0 = time.perf_counter()
        predict_raster(
            ckpt, image, out, window=window, overlap=overlap, batch=1, block_windows=1,
            client=client, quiet=True,
        )  # fmt: skip
        return time.perf_counter() - t0


class AssemblyTimer:
    """Times ``predict_raster``'s assembly: ``assemble`` and the outputs' ``finish``."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> AssemblyTimer:
        from landforge.inference import predictor
        from landforge.io import raster

        self._patched = [
            (predictor, "assemble", predictor.assemble),
            (raster.StagedCOG, "finish", raster.StagedCOG.finish),
        ]
        for owner, name, fn in self._patched:
            setattr(owner, name, self._timed(fn))
        return self

    def _timed(self, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        return wrapper

    def __exit__(self, *exc: Any) -> None:
        for owner, name, fn in self._patched:
            setattr(owner, name, fn)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss survives exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(size: int, folder: Path) -> dict[str, Any]:
    """(d) in this process: generate the raster, predict, report peak RSS."""
    base = peak_rss_mb()
    image = write_raster(folder / "big.tif", size)
    gen = peak_rss_mb()
    torch.manual_seed(0)
    ckpt = save_checkpoint(TinyConv(), card("bench_tiny_conv", {}), folder / "tiny")
    t0 = time.perf_counter()
    s = predict_raster(
        ckpt, image, folder / "big_map.tif", window=1024, overlap=32, batch=4,
        probs_out=folder / "big_probs.tif", probs_dtype="uint8", quiet=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()
    return {
        "size": size,
        "raster_mb": round(size * size * 3 / 2**20, 1),
        "peak_rss_mb": round(peak, 1),
        "rss_after_imports_mb": round(base, 1),
        "rss_after_generation_mb": round(gen, 1),
        "seconds": round(seconds, 1),
        "mpix_s": round(size * size / 1e6 / seconds, 2),
        "blocks": s["blocks"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: check that it works")
    ap.add_argument("--dask-runs", type=int, default=1, help="(c) pairs of runs, back to back")
    ap.add_argument("--skip-rss", action="store_true", help="leave out (d), the 20,000² run")
    ap.add_argument("--dask-only", action="store_true", help="only (c); implies --skip-rss")
    ap.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        print(json.dumps(rss_child(args.rss_child, args.dir)))
        return 0
    q = args.quick
    size_a, window, overlap, batch = (1024, 512, 64, 8) if q else (2048, 1024, 128, 8)
    size_c, window_c, overlap_c = (768, 256, 32) if q else (1536, 512, 64)
    size_d = 4000 if q else 20000
    result: dict[str, Any] = {"quick": q, "cpus": os.cpu_count(), "load_avg": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench_mapping.") as tmp:
        folder = Path(tmp)
        ckpt = unet_checkpoint(folder)
        image = write_raster(folder / "a.tif", size_a) if not args.dask_only else None
        if not args.dask_only:
            forward = pure_forward(ckpt, image, window, overlap, batch, 4)
            t0 = time.perf_counter()
            with AssemblyTimer() as assembly:
                s = predict_raster(
                    ckpt, image, folder / "a_map.tif", window=window, overlap=overlap,
                    batch=batch, probs_out=folder / "a_probs.tif", quiet=True,
                )  # fmt: skip
            end_to_end = time.perf_counter() - t0
            result["a"] = {
                "size": size_a, "window": window, "overlap": overlap, "batch": batch,
                "windows": s["windows"], "forward_s": round(forward, 2),
                "predict_s": round(end_to_end, 2), "overhead": round(end_to_end / forward, 3),
                "assembly_s": round(assembly.seconds, 3),
                "assembly_share": round(assembly.seconds / (end_to_end - assembly.seconds), 4),
            }  # fmt: skip
            result["overhead"] = result["a"]["overhead"]
            result["assembly_share"] = result["a"]["assembly_share"]
            result["throughput_mpix_s"] = round(size_a * size_a / 1e6 / end_to_end, 4)
            print(f"(a,b) {json.dumps(result['a'])}", file=sys.stderr, flush=True)

        image_c = write_raster(folder / "c.tif", size_c)
        runs = []
        for _ in range(max(1, args.dask_runs)):
            t1 = dask_seconds(ckpt, image_c, folder / "c1.tif", 1, window_c, overlap_c)
            t2 = dask_seconds(ckpt, image_c, folder / "c2.tif", 2, window_c, overlap_c)
            runs.append((t1, t2, os.getloadavg()[0]))
            print(f"(c) run {len(runs)}: {t1:.2f} s / {t2:.2f} s", file=sys.stderr, flush=True)
        with rasterio.open(folder / "c1.tif") as a, rasterio.open(folder / "c2.tif") as b:
            identical = bool((a.read() == b.read()).all())
        t1, t2 = runs[0][:2]
        speedups = [round(a / b, 3) for a, b, _ in runs]
        result["c"] = {
            "size": size_c, "window": window_c, "overlap": overlap_c,
            "one_worker_s": [round(a, 2) for a, _, _ in runs],
            "two_workers_s": [round(b, 2) for _, b, _ in runs],
            "load_avg_1min": [round(la, 1) for *_, la in runs],
            "speedups": speedups, "class_maps_identical": identical,
        }  # fmt: skip
        result["dask_speedup"] = min(speedups)
        result["dask_speedup_spread"] = [min(speedups), max(speedups)]
        print(f"(c) {json.dumps(result['c'])}", file=sys.stderr, flush=True)

        if args.skip_rss or args.dask_only:
            result["load_avg_end"] = os.getloadavg()
            print(json.dumps(result))
            return 0
        child = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(size_d), "--dir", str(folder)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        result["d"] = json.loads(child.stdout.strip().splitlines()[-1])
        result["peak_rss_mb"] = result["d"]["peak_rss_mb"]
        result["raster_mb"] = result["d"]["raster_mb"]
    result["load_avg_end"] = os.getloadavg()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
