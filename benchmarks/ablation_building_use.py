"""Building-use ablations on the synthetic city (building-use paper, Table 2 design).

Variants, all with the same model (slim U-Net; ResNet-18 encoder unless ``--encoder``),
the same step budget, batch size, chip size, learning rate and seeds:

- ``img_single``: RGB -> one 4-class head (background, residential, commercial,
  industrial), CE + Dice over every pixel;
- ``img_poi_single``: RGB + 3 POI probability maps -> the same single head;
- ``img_poi_multi``: RGB + POI -> footprint head (BCE + Dice) + use head (CE + Dice on
  building pixels), the class map = use where the footprint probability >= 0.5.

Each variant runs at every use-ambiguity level (``--ambiguity``, the share of urban
parcels whose buildings' size, shape, height and roof palette are drawn independently
of their use: ``synth city --use-ambiguity``; one city per level, same seed, so roads,
parcels, uses and POI generator are the same) and every seed (``--seeds``).

Honest hold-out: the city (``--size-m`` at ``--gsd``, seed 0) is cut into a western
training region (chips, split train/val by blocks) and an eastern test strip that no chip touches; each
model maps the test strip with ``predict_raster`` (windows 512, overlap 64) and is scored
with ``evaluate_prediction`` against the synthetic truth: pixel level (OA, kappa, mIoU,
per-class F1 and one-vs-rest accuracy) and building level (``--buildings``: each true
building whose representative point lies in the strip gets the majority of the
predicted use pixels inside its footprint; per-class precision / recall / F1 /
one-vs-rest accuracy, kappa, majority baseline) with two votes: the majority of the
predicted use pixels (a building the map left as background counts as wrong) and the
soft vote of ``evaluate --building-probs`` (the use with the highest mean probability
inside the footprint: which use, whether or not the footprint was found). Training
curves (train loss per logged step, validation loss per epoch) go to OUT/curves_a<A>.png; each run records whether
its validation loss had flattened (change over the last quarter of the run < 5 %).
``--patch-sizes`` adds the patch-size ablation (multi-task variant, every seed, first
ambiguity level, the same pixels per step at every size).

    python benchmarks/ablation_building_use.py --smoke --out /tmp/abl_smoke   # ~1-2 min
    python benchmarks/ablation_building_use.py --out runs/ablation \
        --ambiguity 0 0.5 1 --seeds 0 1 2 --steps 3000                   # hours of CPU
    python benchmarks/ablation_building_use.py --out runs/ablation --patch-sizes 128 256 512
    # what docs/results.md reports (2 m, 64 px chips, a light encoder; ~5 min per run):
    python benchmarks/ablation_building_use.py --out runs/abl3 --ambiguity 0 0.5 1 \
        --steps 1000 --batch 16 --size 64 --gsd 2 --size-m 3000 --block-px 384 \
        --encoder timm-regnetx_002

Writes OUT/results.json and OUT/results.md (markdown tables, mean ± standard deviation
over seeds), OUT/curves_a<A>.png, and prints the tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from ablation_tables import USE_CLASSES, building_table, plot_curves, read_curve, table
from rasterio.windows import Window

import landforge  # noqa: F401  (torchvision shim before Lightning)

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


def prepare(
    out: Path, size_m: float, gsd: float, test_share: float, ambiguity: float = 0.0
) -> dict[str, Path]:
    from landforge.features.poi_maps import write_poi_probability_maps
    from landforge.io.poi import read_pois
    from landforge.io.raster import read_grid
    from landforge.synth import make_city
    from landforge.taxonomy import load_mapping

    city = out / "city"
    if not (city / "city.json").exists():
        make_city(
            city,
            seed=0,
            size_m=size_m,
            gsd=gsd,
            t2=False,
            s2=False,
            s1=False,
            population=False,
            quiet=True,
            use_ambiguity=ambiguity,
        )
    poi = out / "poi.tif"
    if not poi.exists():
        pois = read_pois(city / "pois.parquet", category_col="gbt_category")
        write_poi_probability_maps(
            poi,
            pois,
            read_grid(city / "image.tif"),
            dmax={"residential": 300, "commercial": 300, "industrial": 800},
            mapping=load_mapping("gbt35648_rci"),
            category_col="gbt_category",
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
    paths["buildings"] = city / "buildings.gpkg"
    paths["test_blocks"] = test_blocks(paths["test_image"], out / "test_blocks.gpkg")
    return paths


def test_blocks(test_image: Path, path: Path) -> Path:
    """The test strip as a split-blocks layer (one block, split "test")."""
    import geopandas as gpd
    from shapely.geometry import box

    if not path.exists():
        with rasterio.open(test_image) as src:
            bounds, crs = src.bounds, src.crs
        gpd.GeoDataFrame({"split": ["test"]}, geometry=[box(*bounds)], crs=crs).to_file(
            path, engine="pyogrio"
        )
    return path


def chips(paths: dict[str, Path], out: Path, poi: bool, size: int, block_px: int = 768) -> Path:
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
            split={"train": 0.8, "val": 0.2, "block_size": max(1, block_px // size)},
            seed=0,
        )
    return store


@dataclass(frozen=True)
class Budget:
    """What every run of one invocation shares: steps, batch, time cap, encoder."""

    steps: int
    batch: int
    minutes: float
    encoder: str = "resnet18"


def run_one(
    name: str,
    variant: dict[str, Any],
    store: Path,
    paths: dict[str, Path],
    out: Path,
    seed: int,
    budget: Budget,
) -> dict[str, Any]:
    """Train one variant and seed (or read its finished metrics) and score the test strip."""
    from landforge.evaluation.evaluate import evaluate_prediction
    from landforge.inference.predictor import predict_raster
    from landforge.training.options import TrainConfig
    from landforge.training.train import train

    run = out / "runs" / f"{name}_s{seed}"
    metrics_path = run / "metrics.json"
    if metrics_path.exists():
        return json.loads(metrics_path.read_text())
    cfg = TrainConfig.build(
        {
            "chips": str(store),
            "out": str(run),
            "model": "multitask_unet",
            "model_kwargs": SLIM | {"encoder": budget.encoder},
            "heads": variant["heads"],
            "epochs": 1000,
            "max_steps": budget.steps,
            "max_minutes": budget.minutes,
            "batch_size": budget.batch,
            "lr": 0.003,
            "seed": seed,
            "monitor": "val/loss",
            "monitor_mode": "min",
            "early_stopping_patience": None,
            "log_every_n_steps": max(1, min(10, budget.steps // 4)),
        }
    )
    t0 = time.perf_counter()
    weights = train(cfg)
    t_train = time.perf_counter() - t0
    pred = run / "test_map.tif"
    predict_raster(
        weights,
        paths["test_image"],
        pred,
        extras=[paths["test_poi"]] if variant["poi"] else [],
        probs_out=run / "test_probs.tif",
        window=512,
        overlap=64,
        quiet=True,
    )
    if "footprint" not in variant["heads"]:
        # single-task class map: value k = k-th class of the head (1 = background)
        with rasterio.open(pred) as ds:
            a, profile = ds.read(1), ds.profile
        pred = run / "test_map_values.tif"
        with rasterio.open(pred, "w", **(profile | {"driver": "GTiff"})) as ds:
            ds.write(np.where(a == 255, 255, a - 1).astype(np.uint8), 1)
    m = evaluate_prediction(
        pred,
        paths["test_use"],
        classes={0: "background", 1: "residential", 2: "commercial", 3: "industrial"},
        quiet=True,
        buildings=paths["buildings"],
        split_blocks=paths["test_blocks"],
        split="test",
        use_col="use",
        building_probs=run / "test_probs.tif",
        out=run / "test_metrics.json",
    )
    curve = read_curve(run)
    result = {
        "variant": name,
        "seed": seed,
        "train_s": round(t_train, 1),
        "steps": budget.steps,
        "batch": budget.batch,
        "chip": chip_size(store),
        "encoder": budget.encoder,
        "train_chips": n_chips(store, "train"),
        "val_chips": n_chips(store, "val"),
        "last_logged_step": curve["last_logged_step"],
        "val_flat": curve["val_flat"],
        "oa": m["overall_accuracy"],
        "kappa": m["kappa"],
        "miou": m["miou"],
        "f1": {c: m["per_class"][c]["f1"] for c in m["per_class"]},
        "ovr_accuracy": {c: m["per_class"][c].get("ovr_accuracy") for c in m["per_class"]},
        "baseline_oa": m.get("baseline", {}).get("overall_accuracy"),
        "bld": building_scores(m["buildings"]["true_footprints"]),
        "bld_soft": building_scores(m["buildings"]["true_footprints_soft"]),
    }
    metrics_path.write_text(json.dumps(result, indent=2))
    return result


def building_scores(b: dict[str, Any]) -> dict[str, Any]:
    """The building-level numbers the tables show (one voting rule)."""
    return {
        "n": b["n"],
        "oa": b["overall_accuracy"],
        "kappa": b["kappa"],
        "macro_f1": b.get("macro_f1"),
        "f1": {c: b["per_class"][c]["f1"] for c in USE_CLASSES},
        "precision": {c: b["per_class"][c]["precision"] for c in USE_CLASSES},
        "recall": {c: b["per_class"][c]["recall"] for c in USE_CLASSES},
        "ovr_accuracy": {c: b["per_class"][c]["ovr_accuracy"] for c in USE_CLASSES},
        "no_use_predicted": b["n_no_use_predicted"],
        "baseline_oa": b["baseline"]["overall_accuracy"],
        "baseline_class": b["baseline"]["class"],
    }


def collect(out: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Every finished run under OUT (``a<A>/runs/<name>_s<seed>/metrics.json``), no training.

    Runs of several invocations (levels, seeds or patch sizes run apart, e.g. one
    process per core) become one table; a level with ``patch<size>`` runs also lists
    its multi-task runs in the patch-size table under their chip size.
    """
    order = {v: i for i, v in enumerate(VARIANTS)}
    results: list[dict[str, Any]] = []
    patch: list[dict[str, Any]] = []
    curves: list[str] = []
    levels = sorted((d for d in out.glob("a*") if d.is_dir()), key=lambda d: float(d.name[1:]))
    for lout in levels:
        level = float(lout.name[1:])
        runs = sorted((lout / "runs").glob("*_s*"))
        done = [
            json.loads((r / "metrics.json").read_text()) | {"ambiguity": level}
            for r in runs
            if (r / "metrics.json").exists()
        ]
        done.sort(key=lambda r: (order.get(r["variant"], len(order)), r["variant"], r["seed"]))
        results += [r for r in done if r["variant"] in VARIANTS]
        sizes = [r for r in done if r["variant"].startswith("patch")]
        if sizes:
            multi = [r for r in done if r["variant"] == "img_poi_multi"]
            patch += [r | {"patch": r["chip"]} for r in multi + sizes]
        png = plot_curves(out, f"{level:g}", runs, list(VARIANTS))
        if png is not None:
            curves.append(str(png))
    return results, patch, curves


def chip_size(store: Path) -> int:
    """Chip side in pixels (stores are named chips_<kind>_<size>)."""
    return int(store.name.rsplit("_", 1)[-1])


def n_chips(store: Path, split: str) -> int:
    import pandas as pd

    idx = pd.read_parquet(store / "index.parquet")
    return int((idx["split"] == split).sum()) if "split" in idx.columns else len(idx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/ablation"))
    ap.add_argument(
        "--ambiguity",
        type=float,
        nargs="+",
        default=[0.0, 0.5, 1.0],
        help="use-ambiguity levels of the synthetic city (synth city --use-ambiguity)",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--variants",
        nargs="*",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help="variants of the main ablation (none: only the patch sizes)",
    )
    ap.add_argument("--steps", type=int, default=3000, help="training steps of every run")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument(
        "--encoder",
        default="resnet18",
        help="encoder of the slim U-Net of every run (e.g. timm-regnetx_002, faster per "
        "step on a CPU than resnet18: docs/results.md)",
    )
    ap.add_argument("--size", type=int, default=128, help="chip size of the main ablation")
    ap.add_argument(
        "--minutes",
        type=float,
        default=360.0,
        help="time cap per training run (a cut run shows fewer logged steps in the table)",
    )
    ap.add_argument("--size-m", type=float, default=3000.0)
    ap.add_argument("--gsd", type=float, default=1.0)
    ap.add_argument("--test-share", type=float, default=1 / 3)
    ap.add_argument(
        "--block-px", type=int, default=768, help="side of the train/val split blocks (pixels)"
    )
    ap.add_argument(
        "--patch-sizes",
        type=int,
        nargs="*",
        default=[],
        help="also run the multi-task variant at these chip sizes (seed 0)",
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="one tiny configuration (600 m city at 2 m, ambiguity 0.5, seed 0, "
        "64 px chips, 4 steps per variant): checks the script end to end in ~1-2 "
        "minutes; its numbers mean nothing",
    )
    ap.add_argument(
        "--collect",
        action="store_true",
        help="train nothing: tables and curves of every finished run under --out "
        "(runs of several invocations, e.g. one process per core, in one table)",
    )
    args = ap.parse_args()
    if args.collect:
        write_results(args, *collect(args.out), 0.0)
        return
    if args.smoke:
        args.ambiguity, args.seeds, args.steps, args.batch = [0.5], [0], 4, 2
        args.size, args.size_m, args.gsd, args.minutes, args.patch_sizes = 64, 600.0, 2.0, 5, []
        args.block_px = 64
    os.environ.setdefault("LANDFORGE_QUIET", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    budget = Budget(args.steps, args.batch, args.minutes, args.encoder)
    results: list[dict[str, Any]] = []
    patch: list[dict[str, Any]] = []
    curves: list[str] = []
    for k, level in enumerate(args.ambiguity):
        tag = f"{level:g}"
        lout = args.out / f"a{tag}"
        lout.mkdir(parents=True, exist_ok=True)
        paths = prepare(lout, args.size_m, args.gsd, args.test_share, level)
        for name in args.variants:
            v = VARIANTS[name]
            store = chips(paths, lout, v["poi"], args.size, args.block_px)
            for seed in args.seeds:
                r = run_one(name, v, store, paths, lout, seed, budget)
                r["ambiguity"] = level
                print(json.dumps(r), flush=True)
                results.append(r)
        png = plot_curves(args.out, tag, sorted((lout / "runs").glob("*_s*")), list(VARIANTS))
        if png is not None:
            curves.append(str(png))
        if k == 0:
            pixels_per_step = args.batch * args.size**2
            for size in args.patch_sizes:
                v = VARIANTS["img_poi_multi"]
                store = chips(paths, lout, True, size, args.block_px)
                batch = max(1, pixels_per_step // size**2)
                # the main size is the multi-task run (same store, batch and steps)
                name = "img_poi_multi" if size == args.size else f"patch{size}"
                sized = replace(budget, batch=batch)
                for seed in args.seeds:
                    r = run_one(name, v, store, paths, lout, seed, sized)
                    r.update(patch=size, batch=batch, ambiguity=level)
                    print(json.dumps(r), flush=True)
                    patch.append(r)
    write_results(args, results, patch, curves, time.perf_counter() - t_start)


def write_results(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    patch: list[dict[str, Any]],
    curves: list[str],
    seconds: float,
) -> None:
    """OUT/results.json and OUT/results.md (markdown tables), tables printed."""
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "ablation": results,
                "patch_size": patch,
                "curves": curves,
                "seconds": round(seconds, 1),
            },
            indent=2,
        )
    )
    md = []
    if results:
        md += [
            "Building level (test strip), majority of the predicted use pixels:",
            "",
            building_table(results),
            "",
            "Building level (test strip), soft vote (highest mean use probability):",
            "",
            building_table(results, "bld_soft"),
            "",
            "Pixel level (test strip):",
            "",
            table([r | {"run": f"a{r['ambiguity']:g} {r['variant']}"} for r in results], key="run"),
        ]
    if patch:
        md += ["", "Patch size:", "", table(patch, key="patch")]
        md += ["", "Patch size, building level:", "", building_table(patch)]
        md += ["", "Patch size, building level, soft vote:", "", building_table(patch, "bld_soft")]
    (args.out / "results.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    print(f"total {seconds:.0f} s; curves: {', '.join(curves)}")


if __name__ == "__main__":
    main()
