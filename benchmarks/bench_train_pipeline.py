"""Training throughput through the chip store vs in-memory tensors.

Both paths run the same training step (forward, multi-task loss, backward, AdamW step)
on the same model for the same number of steps:

- ``store``: ``ChipDataset(augment=True)`` + ``DataLoader(shuffle=True)`` as
  ``landforge train`` uses them (npz read, dtype conversion, normalisation, nodata
  masking, random dihedral augmentation, collation);
- ``memory``: batches pre-stacked once in memory, no augmentation.

``overhead = 1 - t_memory / t_store`` is the share of the training time the data
pipeline costs. The two paths alternate in ``--reps`` blocks so a load change on a
shared machine hits both. Prints one JSON line per model: the multi-task U-Net with a
ResNet-34 encoder at 256 px and the slim demo model (ResNet-18, depth 4, decoder
64/32/16/8) at the demo's 128 px, batch 8, plus the 1-minute load average.

    python benchmarks/bench_train_pipeline.py [--steps 20] [--reps 2] [--threads N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from landforge.datasets.chips import ChipDataset, build_chips
from landforge.models import build
from landforge.synth.toy import make_toy_scene
from landforge.training.module import SegmentationTask
from landforge.training.options import TrainConfig

MODELS: dict[str, dict[str, Any]] = {
    "unet_resnet34_256": {"size": 256, "kwargs": {"encoder": "resnet34"}},
    "demo_slim_128": {
        "size": 128,
        "kwargs": {"encoder": "resnet18", "encoder_depth": 4, "decoder_channels": [64, 32, 16, 8]},
    },
}
BATCH = 8


def _store(tmp: Path, size: int) -> Path:
    scene = make_toy_scene(tmp / "scene", size=1024, seed=0)
    return build_chips(
        scene["image"],
        {"footprint": scene["footprint"], "use": scene["use"]},
        tmp / f"chips_{size}",
        extras=[scene["poi"]],
        size=size,
    )


def _run(task: SegmentationTask, opt: torch.optim.Optimizer, batches: Any, steps: int) -> float:
    task.train()
    t0 = time.perf_counter()
    for batch in itertools.islice(batches, steps):
        total, *_ = task._step(batch)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
    return time.perf_counter() - t0


def _forever(loader: DataLoader) -> Any:
    while True:
        yield from loader


def bench(name: str, spec: dict[str, Any], store: Path, steps: int, reps: int) -> dict[str, Any]:
    torch.manual_seed(0)
    heads = TrainConfig.build({"chips": "c", "out": "o"}).heads
    model = build("multitask_unet", in_channels=4, classes=3, **spec["kwargs"])
    task = SegmentationTask(model, heads)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ds = ChipDataset(store, split=None, augment=True)
    loader = DataLoader(ds, batch_size=BATCH, shuffle=True, drop_last=True, num_workers=0)
    plain = ChipDataset(store, split=None, augment=False)
    mem = [
        {k: torch.stack([plain[i][k] for i in range(j, j + BATCH)]) for k in plain[0]}
        for j in range(0, len(plain) - BATCH + 1, BATCH)
    ]
    store_it, mem_it = _forever(loader), itertools.cycle(mem)
    _run(task, opt, mem_it, 1)  # warm-up (allocator, first-call paths)
    _run(task, opt, store_it, 1)
    per = max(1, steps // reps)
    t_mem = t_store = 0.0
    for _ in range(reps):
        t_mem += _run(task, opt, mem_it, per)
        t_store += _run(task, opt, store_it, per)
    # the data pipeline alone, for the record
    t0 = time.perf_counter()
    n_load = 0
    for _batch in itertools.islice(_forever(loader), per):
        n_load += 1
    t_load = (time.perf_counter() - t0) / n_load
    n = per * reps
    return {
        "model": name,
        "chip": spec["size"],
        "batch": BATCH,
        "steps": n,
        "t_memory_s": round(t_mem, 3),
        "t_store_s": round(t_store, 3),
        "chips_per_s_memory": round(n * BATCH / t_mem, 2),
        "chips_per_s_store": round(n * BATCH / t_store, 2),
        "overhead": round(1.0 - t_mem / t_store, 4),
        "load_s_per_batch": round(t_load, 4),
        "threads": torch.get_num_threads(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per path")
    parser.add_argument("--reps", type=int, default=2, help="alternating blocks")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        stores: dict[int, Path] = {}
        for name in args.models.split(","):
            spec = MODELS[name]
            if spec["size"] not in stores:
                stores[spec["size"]] = _store(Path(tmp), spec["size"])
            print(json.dumps(bench(name, spec, stores[spec["size"]], args.steps, args.reps)))


if __name__ == "__main__":
    main()
