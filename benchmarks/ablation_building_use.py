"""Building-use ablations on the synthetic city (building-use paper, Table 2 design).

Variants, all with the same model family (slim ResNet-18 U-Net of the demo), the same
step budget, batch size, learning rate and seeds:

- ``img_single``: RGB -> one 4-class head (background, residential, commercial,
  industrial), CE + Dice over every pixel;
- ``img_poi_single``: RGB + 3 POI probability maps -> the same single head;
- ``img_poi_multi``: RGB + POI -> footprint head (BCE + Dice) + use head (CE + Dice on
  building pixels), the class map = use where the footprint probability >= 0.5.

Honest hold-out: the city (3 km at 1 m, seed 0) is cut into a western training region
(chips, split train/val by blocks) and an eastern test strip that no chip touches; each
model maps the test strip with ``predict_raster`` (windows 512, overlap 64) and is scored
with ``evaluate_rasters`` against the synthetic truth (OA, kappa, mIoU, per-class F1 and
one-vs-rest accuracy). ``--patch-sizes`` adds the patch-size ablation (multi-task
variant, one seed, the same pixels per step at every size).

    python benchmarks/ablation_building_use.py --out runs/ablation            # 3 x 3 runs
    python benchmarks/ablation_building_use.py --out runs/ablation --patch-sizes 128 256 512

Writes OUT/results.json and prints a markdown table (copied into docs/results.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

import landforge  # noqa: F401  (torchvision shim before Lightning)

USE_CLASSES = ["residential", "commercial", "industrial"]
SINGLE = {
    "use": {
        "label": "use",
        "classes": ["background", *USE_CLASSES],
        "values": [0, 1, 2, 3],
        "loss": "ce_dice",
    }
}
MULTI = {
    "footprint": {"label": "footprint", "classes": ["building"], "loss": "bce_dice"},
    "use": {
        "label": "use",
        "classes": USE_CLASSES,
        "values": [1, 2, 3],
        "loss": "ce_dice",
        "mask_by": "footprint",
    },
}
VARIANTS = {
    "img_single": {"poi": False, "heads": SINGLE},
    "img_poi_single": {"poi": True, "heads": SINGLE},
    "img_poi_multi": {"poi": True, "heads": MULTI},
}
SLIM = {"encoder": "resnet18", "encoder_depth": 4, "decoder_channels": [64, 32, 16, 8]}


def crop(src_path: Path, dst_path: Path, col0: int, col1: int) -> Path:
    """Columns [col0, col1) of a raster as a GeoTIFF (same bands, nodata, descriptions)."""
    with rasterio.open(src_path) as src:
        win = Window(col0, 0, col1 - col0, src.height)
        profile = src.profile | {
            "driver": "GTiff",
            "width": col1 - col0,
            "height": src.height,
            "transform": src.window_transform(win),
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
        }
        profile.pop("interleave", None)
        data = src.read(window=win)
        with rasterio.open(dst_path, "w", **profile) as dst:
            dst.write(data)
            dst.descriptions = src.descriptions
            with contextlib.suppress(ValueError):
                dst.write_colormap(1, src.colormap(1))
    return dst_path


def prepare(out: Path, size_m: float, gsd: float, test_share: float) -> dict[str, Path]:
    from landforge.features.poi_maps import write_poi_probability_maps
    from landforge.io.poi import read_pois
    from landforge.io.raster import read_grid
    from landforge.synth import make_city
    from landforge.taxonomy import load_mapping

    city = out / "city"
    if not (city / "city.json").exists():
        make_city(city, seed=0, size_m=size_m, gsd=gsd, t2=False, s2=False, s1=False,
                  population=False, quiet=True)
    poi = out / "poi.tif"
    if not poi.exists():
        pois = read_pois(city / "pois.parquet", category_col="gbt_category")
        write_poi_probability_maps(
            poi, pois, read_grid(city / "image.tif"),
            dmax={"residential": 300, "commercial": 300, "industrial": 800},
            mapping=load_mapping("gbt35648_rci"), category_col="gbt_category",
        )
    with rasterio.open(city / "image.tif") as src:
        width = src.width
    split_col = int(round(width * (1 - test_share)))
    paths: dict[str, Path] = {}
    for region, (c0, c1) in {"train": (0, split_col), "test": (split_col, width)}.items():
        d = out / region
        d.mkdir(parents=True, exist_ok=True)
        for name, src in {
            "image": city / "image.tif",
            "poi": poi,
            "footprint": city / "labels" / "footprint.tif",
            "use": city / "labels" / "building_use.tif",
        }.items():
            p = d / f"{name}.tif"
            if not p.exists():
                crop(src, p, c0, c1)
            paths[f"{region}_{name}"] = p
    return paths


def chips(paths: dict[str, Path], out: Path, poi: bool, size: int) -> Path:
    from landforge.datasets.chips import build_chips

    store = out / f"chips_{'poi' if poi else 'img'}_{size}"
    if not (store / "index.parquet").exists():
        build_chips(
            paths["train_image"],
            {"footprint": paths["train_footprint"], "use": paths["train_use"]},
            store,
            extras=[paths["train_poi"]] if poi else [],
            bands=[1, 2, 3],
            size=size,
            split={"train": 0.8, "val": 0.2, "block_size": max(1, 768 // size)},
            seed=0,
        )
    return store


def run_one(
    name: str, variant: dict[str, Any], store: Path, paths: dict[str, Path], out: Path,
    seed: int, steps: int, batch: int, minutes: float,
) -> dict[str, Any]:
    from landforge.evaluation.evaluate import evaluate_rasters
    from landforge.inference.predictor import predict_raster
    from landforge.training.options import TrainConfig
    from landforge.training.train import train

    run = out / "runs" / f"{name}_s{seed}"
    metrics_path = run / "metrics.json"
    if metrics_path.exists():
        return json.loads(metrics_path.read_text())
    cfg = TrainConfig.build({
        "chips": str(store), "out": str(run), "model": "multitask_unet",
        "model_kwargs": SLIM, "heads": variant["heads"], "epochs": 1000, "max_steps": steps,
        "max_minutes": minutes, "batch_size": batch, "lr": 0.003, "seed": seed,
        "monitor": "val/loss", "monitor_mode": "min", "early_stopping_patience": None,
    })
    t0 = time.perf_counter()
    weights = train(cfg)
    t_train = time.perf_counter() - t0
    pred = run / "test_map.tif"
    predict_raster(
        weights, paths["test_image"], pred,
        extras=[paths["test_poi"]] if variant["poi"] else [],
        window=512, overlap=64, quiet=True,
    )
    if "footprint" not in variant["heads"]:
        # single-task class map: value k = k-th class of the head (1 = background)
        with rasterio.open(pred) as ds:
            a, profile = ds.read(1), ds.profile
        pred = run / "test_map_values.tif"
        with rasterio.open(pred, "w", **(profile | {"driver": "GTiff"})) as ds:
            ds.write(np.where(a == 255, 255, a - 1).astype(np.uint8), 1)
    m = evaluate_rasters(
        pred, paths["test_use"],
        classes={0: "background", 1: "residential", 2: "commercial", 3: "industrial"},
        quiet=True,
    )
    result = {
        "variant": name, "seed": seed, "train_s": round(t_train, 1),
        "oa": m["overall_accuracy"], "kappa": m["kappa"], "miou": m["miou"],
        "f1": {c: m["per_class"][c]["f1"] for c in m["per_class"]},
        "ovr_accuracy": {c: m["per_class"][c].get("ovr_accuracy") for c in m["per_class"]},
        "baseline_oa": m.get("baseline", {}).get("overall_accuracy"),
    }
    metrics_path.write_text(json.dumps(result, indent=2))
    return result


def _ms(vals: list[float]) -> str:
    vals = [v for v in vals if v is not None and not np.isnan(v)]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}"


def table(results: list[dict[str, Any]], key: str = "variant") -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(str(r[key]), []).append(r)
    classes = ["background", *USE_CLASSES]
    head = ["run", "n", "OA", "kappa", "mIoU", *[f"F1 {c}" for c in classes],
            *[f"OvR acc {c}" for c in USE_CLASSES]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g, rs in groups.items():
        row = [g, str(len(rs)), _ms([r["oa"] for r in rs]), _ms([r["kappa"] for r in rs]),
               _ms([r["miou"] for r in rs])]
        row += [_ms([r["f1"].get(c) for r in rs]) for c in classes]
        row += [_ms([r["ovr_accuracy"].get(c) for r in rs]) for c in USE_CLASSES]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/ablation"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=128, help="chip size of the main ablation")
    ap.add_argument("--minutes", type=float, default=15.0, help="time cap per training run")
    ap.add_argument("--size-m", type=float, default=3000.0)
    ap.add_argument("--gsd", type=float, default=1.0)
    ap.add_argument("--test-share", type=float, default=1 / 3)
    ap.add_argument("--patch-sizes", type=int, nargs="*", default=[],
                    help="also run the multi-task variant at these chip sizes (seed 0)")
    args = ap.parse_args()
    os.environ.setdefault("LANDFORGE_QUIET", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    paths = prepare(args.out, args.size_m, args.gsd, args.test_share)
    results: list[dict[str, Any]] = []
    for name in args.variants:
        v = VARIANTS[name]
        store = chips(paths, args.out, v["poi"], args.size)
        for seed in args.seeds:
            r = run_one(name, v, store, paths, args.out, seed, args.steps, args.batch,
                        args.minutes)
            print(json.dumps(r), flush=True)
            results.append(r)
    patch: list[dict[str, Any]] = []
    pixels_per_step = args.batch * args.size**2
    for size in args.patch_sizes:
        v = VARIANTS["img_poi_multi"]
        store = chips(paths, args.out, True, size)
        batch = max(1, pixels_per_step // size**2)
        # the main size is the multi-task run of seed 0 (same store, batch and steps)
        name = "img_poi_multi" if size == args.size else f"patch{size}"
        r = run_one(name, v, store, paths, args.out, 0, args.steps, batch,
                    args.minutes)
        r["patch"] = size
        r["batch"] = batch
        print(json.dumps(r), flush=True)
        patch.append(r)
    (args.out / "results.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "ablation": results,
         "patch_size": patch}, indent=2))
    if results:
        print(table(results))
    if patch:
        print(table(patch, key="patch"))


if __name__ == "__main__":
    main()
