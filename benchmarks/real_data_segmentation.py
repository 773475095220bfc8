"""Segmentation on the small real scenes of ../shared/data (issue 5, "Real data").

Each scene goes through the user's path: ``build_chips`` (spatially blocked split inside
the scene) -> ``train`` -> ``predict_raster`` over the whole scene -> metrics on the
test-split windows only (pixels no training chip saw). Binary tasks are scored at the
0.5 probability threshold and (``tuned``) at the threshold that maximises IoU on the
validation windows (training tiles for Lausanne), a standard choice for small data:

- ``spacenet_buildings``: SpaceNet-4 Atlanta, 900 x 900 panchromatic 0.5 m, building
  mask from the 43 footprints; footprint head (BCE + Dice); IoU / F1 of buildings.
- ``spacenet_roads``: SpaceNet-3 Las Vegas, 1300 x 1300 panchromatic ~0.3 m, road mask;
  road head; pixel IoU plus centre-line completeness / correctness / quality against the
  9 reference centre lines (buffer tolerance ``--road-tolerance-m``).
- ``lausanne_trees``: SWISSIMAGE 0.5 m RGB, tree masks on 4 of the 25 tiles (175 x 120
  each); leave-one-labelled-tile-out (4 folds); IoU / F1 of trees on the held-out tile.
- ``brandenburg``: Sentinel-2 4-band 10 m, OSM land use (8 classes, ~70 % unlabelled and
  ignored); land-cover head (CE + Dice); OA, kappa, mIoU vs the majority baseline.

    python benchmarks/real_data_segmentation.py --out runs/real                  # all
    python benchmarks/real_data_segmentation.py --out runs/real --only brandenburg --model hrnet_ocr

The data are small: the numbers show that the path works on real files and how far a
few CPU minutes get, not what these architectures reach with real training sets.
Writes OUT/<scene>/metrics.json and OUT/results.json, prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.windows import Window

import landforge  # noqa: F401  (torchvision shim before Lightning)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SLIM = {"encoder": "resnet18", "encoder_depth": 4, "decoder_channels": [64, 32, 16, 8]}
MODELS: dict[str, dict[str, Any]] = {
    "multitask_unet": SLIM,
    "unet": {"encoder": "resnet18", "encoder_depth": 4, "decoder_channels": [64, 32, 16, 8]},
    "hrnet_ocr": {"backbone": "hrnet_w18_small_v2", "ocr_mid_channels": 128,
                  "ocr_key_channels": 64},
    "hrnet": {"backbone": "hrnet_w18_small_v2"},
    "deeplabv3plus": {"encoder": "resnet18"},
    "pspnet": {"encoder": "resnet18"},
}


def region_mask(store: Path, split: str, shape: tuple[int, int]) -> np.ndarray:
    """Pixels covered by the chips of ``split`` in a chip store."""
    index = gpd.read_parquet(store / "index.parquet")
    mask = np.zeros(shape, bool)
    for r in index[index["split"] == split].itertuples():
        mask[r.row : r.row + r.height, r.col : r.col + r.width] = True
    return mask


def train_and_predict(
    store: Path, run: Path, heads: dict[str, Any], image: Path, model: str, steps: int,
    minutes: float, seed: int, batch: int = 8, val: bool = True, lr: float = 0.003,
) -> tuple[Path, float]:
    from landforge.inference.predictor import predict_raster
    from landforge.training.options import TrainConfig
    from landforge.training.train import train

    # classes (and head) come from the one head: multitask_unet's use head, unused
    # here, then has one channel
    kwargs = dict(MODELS.get(model, {}))
    cfg = TrainConfig.build({
        "chips": str(store), "out": str(run), "model": model, "model_kwargs": kwargs,
        "heads": heads, "epochs": 10_000, "max_steps": steps, "max_minutes": minutes,
        "batch_size": batch, "lr": lr, "seed": seed, "val_split": "val" if val else None,
        "monitor": "val/loss" if val else "train/loss", "early_stopping_patience": None,
        "taxonomy": None,
    })
    t0 = time.perf_counter()
    weights = train(cfg)
    seconds = time.perf_counter() - t0
    pred = run / "map.tif"
    binary = all(len(h["classes"]) == 1 for h in heads.values())
    predict_raster(weights, image, pred, window=256, overlap=32, quiet=True,
                   footprint_out=run / "prob.tif" if binary else None)
    return pred, seconds


def tuned_scores(
    run: Path, truth: np.ndarray, tune: np.ndarray, test: np.ndarray
) -> dict[str, Any]:
    """Test scores at the probability threshold that maximises IoU on ``tune`` pixels
    (validation or training region, never the test region)."""
    prob = np.nan_to_num(read1(run / "prob.tif"), nan=0.0)
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    best = max(grid, key=lambda t: np.nan_to_num(binary_scores(prob >= t, truth, tune)["iou"]))
    return {"threshold": float(best), **binary_scores(prob >= best, truth, test)}


def binary_scores(pred: np.ndarray, truth: np.ndarray, region: np.ndarray) -> dict[str, float]:
    p, t = pred[region].astype(bool), truth[region].astype(bool)
    tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
    return {
        "iou": tp / (tp + fp + fn) if tp + fp + fn else float("nan"),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "positive_share": float(t.mean()),
        "test_pixels": int(region.sum()),
    }


def read1(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def spacenet_buildings(out: Path, a: argparse.Namespace) -> dict[str, Any]:
    from landforge.datasets.chips import build_chips

    src = DATA / "spacenet_samples"
    image, mask = src / "sample_geotiff.tif", src / "derived_building_mask_georef.tif"
    store = build_chips(image, {"footprint": mask}, out / "chips", size=128, stride=128,
                        split={"train": 0.6, "val": 0.2, "test": 0.2, "block_size": 2},
                        seed=a.seed)
    heads = {"footprint": {"label": "footprint", "classes": ["building"], "loss": "bce_dice"}}
    pred, secs = train_and_predict(store, out / "model", heads, image, a.binary_model,
                                   a.steps, a.minutes, a.seed)
    truth = read1(mask) == 1
    region = region_mask(store, "test", truth.shape)
    tuned = tuned_scores(out / "model", truth, region_mask(store, "val", truth.shape), region)
    return {"train_s": round(secs, 1), **binary_scores(read1(pred) == 1, truth, region),
            "tuned": tuned}


def spacenet_roads(out: Path, a: argparse.Namespace) -> dict[str, Any]:
    from landforge.datasets.chips import build_chips
    from landforge.evaluation.roads import pixel_size_m, rasterize_lines, road_metrics

    src = DATA / "spacenet_samples"
    image, mask = src / "road_mask_input.tif", src / "sample_road_raster_mask.tif"
    store = build_chips(image, {"road": mask}, out / "chips", size=128, stride=128,
                        split={"train": 0.6, "val": 0.2, "test": 0.2, "block_size": 3},
                        seed=a.seed)
    # multitask_unet's binary output is called "footprint"; it is fed the road mask here
    heads = {"footprint": {"label": "road", "classes": ["road"], "values": [255],
                           "loss": "bce_dice"}}
    pred_path, secs = train_and_predict(store, out / "model", heads, image, a.binary_model,
                                        a.steps, a.minutes, a.seed)
    truth = read1(mask) == 255
    pred = read1(pred_path) == 1
    region = region_mask(store, "test", truth.shape)
    with rasterio.open(image) as ds:
        transform, crs = ds.transform, ds.crs
    lines = gpd.read_file(src / "sample_roads_for_masking.geojson")
    if lines.crs is not None and crs is not None and lines.crs != crs:
        lines = lines.to_crs(crs)
    centre = rasterize_lines(lines.geometry, transform, truth.shape)
    px = pixel_size_m(transform, crs)
    roads = road_metrics(pred, centre, px, tolerance_m=a.road_tolerance_m, valid=region)
    tuned = tuned_scores(out / "model", truth, region_mask(store, "val", truth.shape), region)
    prob = np.nan_to_num(read1(out / "model" / "prob.tif"), nan=0.0)
    tuned_roads = road_metrics(prob >= tuned["threshold"], centre, px,
                               tolerance_m=a.road_tolerance_m, valid=region)
    return {"train_s": round(secs, 1), **binary_scores(pred, truth, region),
            "pixel_m": round(px[0], 3), **roads, "tuned": tuned | {
                k: tuned_roads[k] for k in ("completeness", "correctness", "quality")}}


def lausanne_trees(out: Path, a: argparse.Namespace) -> dict[str, Any]:
    from landforge.datasets.chips import build_chips

    src = DATA / "lausanne_swissimage"
    tiles = sorted((src / "response_img_georef").glob("*.tif"))
    # The georeferenced tiles are stacked in one column with gaps (a placement made for
    # the sample, not their true position): stack the 4 labelled tiles' images and masks
    # into one 480 x 175 scene so each fold holds one tile out.
    images, masks, windows = [], [], {}
    for k, t in enumerate(tiles):
        with rasterio.open(src / "img" / t.name) as ds:
            images.append(ds.read())
            profile = ds.profile
        with rasterio.open(t) as ds:
            masks.append(ds.read(1))
        h, w = masks[-1].shape
        windows[t.stem] = Window(0, k * h, w, h)
    out.mkdir(parents=True, exist_ok=True)
    image, lab_path = out / "trees_rgb.tif", out / "tree_labels.tif"
    stacked = np.concatenate(images, axis=1)
    labels = np.concatenate(masks, axis=0).astype(np.uint8)
    shape = labels.shape
    base = {"driver": "GTiff", "height": shape[0], "width": shape[1], "count": 3,
            "dtype": "uint8", "crs": profile["crs"], "transform": profile["transform"]}
    with rasterio.open(image, "w", **base) as dst:
        dst.write(stacked)
    with rasterio.open(lab_path, "w", **(base | {"count": 1, "dtype": "uint8",
                                                  "nodata": 255})) as dst:
        dst.write(labels, 1)
    store = build_chips(image, {"tree": lab_path}, out / "chips", size=64, stride=16,
                        split=None, seed=a.seed)
    index = gpd.read_parquet(store / "index.parquet")
    folds = []
    for test_tile, tw in windows.items():
        # chips wholly inside a labelled tile; the held-out tile's chips form the test split
        def tile_of(r: Any) -> str | None:
            for name, w in windows.items():
                if (w.row_off <= r.row and r.row + r.height <= w.row_off + w.height
                        and w.col_off <= r.col and r.col + r.width <= w.col_off + w.width):
                    return name
            return None

        fold = out / f"fold_{test_tile}"
        fold.mkdir(parents=True, exist_ok=True)
        idx = index.copy()
        owner = [tile_of(r) for r in idx.itertuples()]
        idx["split"] = ["test" if o == test_tile else ("train" if o else "none")
                        for o in owner]
        fstore = fold / "chips"
        if not fstore.exists():
            import shutil

            shutil.copytree(store, fstore)
        idx.to_parquet(fstore / "index.parquet")
        heads = {"footprint": {"label": "tree", "classes": ["tree"], "values": [1],
                               "ignore_values": [255], "loss": "bce_dice"}}
        pred, secs = train_and_predict(fstore, fold / "model", heads, image, a.binary_model,
                                       a.steps // 2, a.minutes / 2, a.seed, val=False)
        region = np.zeros(shape, bool)
        region[tw.row_off : tw.row_off + tw.height, tw.col_off : tw.col_off + tw.width] = True
        s = binary_scores(read1(pred) == 1, labels == 1, region)
        train_px = (labels != 255) & ~region
        s["tuned"] = tuned_scores(fold / "model", labels == 1, train_px, region)
        folds.append({"test_tile": test_tile, "train_s": round(secs, 1),
                      "train_chips": int((idx["split"] == "train").sum()), **s})
        print(json.dumps(folds[-1]), flush=True)
    mean = {k: float(np.nanmean([f[k] for f in folds])) for k in ("iou", "f1", "precision",
                                                                    "recall")}
    mean["tuned_iou"] = float(np.nanmean([f["tuned"]["iou"] for f in folds]))
    mean["tuned_f1"] = float(np.nanmean([f["tuned"]["f1"] for f in folds]))
    sd = {f"{k}_sd": float(np.nanstd([f[k] for f in folds], ddof=1)) for k in ("iou", "f1")}
    return {**mean, **sd, "train_s": sum(f["train_s"] for f in folds), "folds": folds}


def brandenburg(out: Path, a: argparse.Namespace) -> dict[str, Any]:
    from landforge.datasets.chips import build_chips
    from landforge.evaluation.metrics import ConfusionMatrix

    src = DATA / "brandenburg_s2" / "derived_geotiff"
    image = src / "S2L1C_20170216_10m_B02_B03_B04_B08.tif"
    labels = src / "osm_landuse_water_10m_labels.tif"
    names = json.loads((src / "osm_landuse_water_10m_labels.classes.json").read_text())
    classes = [names[str(v)] for v in range(1, 9)]
    store = build_chips(image, {"landcover": labels}, out / "chips", size=128, stride=128,
                        split={"train": 0.6, "val": 0.2, "test": 0.2, "block_size": 2},
                        seed=a.seed)
    heads = {"landcover": {"label": "landcover", "classes": classes,
                           "values": list(range(1, 9)), "loss": "ce_dice"}}
    pred_path, secs = train_and_predict(store, out / "model", heads, image, a.lc_model,
                                        a.steps, a.minutes, a.seed)
    truth, pred = read1(labels), read1(pred_path)
    region = region_mask(store, "test", truth.shape)
    cm = ConfusionMatrix(labels=range(1, 9), names=classes, ignore=[0, 255])
    cm.update(truth[region], pred[region])
    s = cm.summary()
    return {
        "train_s": round(secs, 1), "model": a.lc_model, "labelled_test_pixels": cm.total,
        "oa": s["overall_accuracy"], "kappa": s["kappa"], "miou": s["miou"],
        "baseline_oa": s["baseline"]["overall_accuracy"],
        "f1": {c: s["per_class"][c]["f1"] for c in classes},
    }


SCENES = {
    "spacenet_buildings": spacenet_buildings,
    "spacenet_roads": spacenet_roads,
    "lausanne_trees": lausanne_trees,
    "brandenburg": brandenburg,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/real"))
    ap.add_argument("--only", nargs="+", choices=list(SCENES), default=list(SCENES))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--minutes", type=float, default=5.0, help="time cap per training run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--binary-model", default="multitask_unet", choices=["multitask_unet"])
    ap.add_argument("--lc-model", default="hrnet_ocr", choices=list(MODELS))
    ap.add_argument("--road-tolerance-m", type=float, default=2.0)
    a = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"error: {DATA}: shared sample data not found")
    os.environ.setdefault("LANDFORGE_QUIET", "1")
    results: dict[str, Any] = {}
    if (a.out / "results.json").exists():
        results = json.loads((a.out / "results.json").read_text())
    for name in a.only:
        out = a.out / name
        if out.exists():
            import shutil

            shutil.rmtree(out)
        out.mkdir(parents=True)
        r = SCENES[name](out, a)
        r["args"] = {"steps": a.steps, "seed": a.seed}
        (out / "metrics.json").write_text(json.dumps(r, indent=2))
        results[name] = r
        print(name, json.dumps({k: v for k, v in r.items() if k != "folds"}), flush=True)
        (a.out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
