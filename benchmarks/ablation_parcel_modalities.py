"""Modality ablation of the parcel classifier on the synthetic city (MSLU-100K design).

Variants of ``parcel_fusion``, all with the same budget (epochs, batch size, learning
rate schedule) and the same spatial-block split per seed:

- ``image``: the Swin image branch only;
- ``image+poi``: image and POI branches;
- ``image+poi+population``: all three (the paper's model);
- ``poi``: the POI branch only.

Data: ``landforge synth city`` (seed 0), POI features (``parcels features`` on the
``gbt_category`` column), samples with the image, the POI features and the 24 hourly
population rasters (``population/``), labels = the parcels' primary MSLU class; only the
paper's five classes R, B, A, M, E are trained and scored (S and X parcels are left out).
Each seed changes the split (blocks of ``--block-size-m``) and the initial weights;
scores are on the test blocks, beside the majority class of the training split.

The default image branch is a small Swin Transformer (random init, ``--swin`` sets its
size) so the script runs on a CPU; ``--backbone swin_tiny_patch4_window7_224 --patch-px
224`` is the paper-sized branch (a GPU job).

    python benchmarks/ablation_parcel_modalities.py --out runs/parcel_ablation
    python benchmarks/ablation_parcel_modalities.py --out runs/pa --size-m 2000 --epochs 5

Writes OUT/results.json and prints a markdown table (copied into docs/parcel_classifier.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import landforge  # noqa: F401  (torchvision shim before Lightning)

VARIANTS: dict[str, list[str]] = {
    "image": ["image"],
    "image+poi": ["image", "poi"],
    "image+poi+population": ["image", "poi", "population"],
    "poi": ["poi"],
}
CLASSES = ["R", "B", "A", "M", "E"]


def prepare(out: Path, a: argparse.Namespace) -> Path:
    """City, POI features and samples (reused when present)."""
    import geopandas as gpd
    import pandas as pd

    from landforge.features.parcel_features import parcel_poi_features
    from landforge.parcels.samples import build_parcel_samples, write_parcel_samples
    from landforge.synth.city import make_city

    city = out / "city"
    if not (city / "city.json").is_file():
        make_city(city, seed=0, size_m=a.size_m, gsd=a.gsd, t2=False, s2=False, s1=False)
    samples = out / f"samples_{a.patch_px}"
    if not (samples / "samples.json").is_file():
        parcels = gpd.read_file(city / "parcels.gpkg")
        pois = gpd.read_parquet(city / "pois.parquet")
        feats = parcel_poi_features(parcels, pois, category_col="gbt_category")
        s = build_parcel_samples(
            parcels,
            image=city / "image.tif",
            poi_features=pd.DataFrame(feats),
            population=city / "population",
            label_col="use_primary",
            patch_px=a.patch_px,
            max_patches=a.max_patches,
        )
        write_parcel_samples(s, samples)
    return samples


def run(a: argparse.Namespace) -> dict[str, Any]:
    """Every variant x seed; returns the results (also written to OUT/results.json)."""
    from landforge.parcels.samples import read_parcel_samples
    from landforge.training.parcel_train import train_parcel_classifier

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = read_parcel_samples(prepare(out, a))
    f = samples.frame
    depth, heads = a.swin
    swin = {
        "img_size": a.patch_px,
        "embed_dim": 24,
        "depths": [depth, depth],
        "num_heads": [heads, 2 * heads],
        "window_size": 4,
    }
    rows = []
    for seed in a.seeds:
        for name, mods in VARIANTS.items():
            t0 = time.perf_counter()
            r = train_parcel_classifier(
                samples,
                None,
                modalities=mods,
                classes=CLASSES,
                backbone=a.backbone,
                backbone_kwargs=swin if a.backbone.startswith("swin") and a.patch_px < 224 else {},
                epochs=a.epochs,
                batch_size=a.batch_size,
                block_size_m=a.block_size_m,
                embed_dim=64,
                seed=seed,
            )
            test = r.metrics["test"]
            row = {
                "variant": name,
                "seed": seed,
                "oa": test["metrics"]["overall_accuracy"],
                "kappa": test["metrics"]["kappa"],
                "macro_f1": test["metrics"]["macro_f1"],
                "baseline_oa": test["majority_baseline"]["oa"],
                "n_test": test["n"],
                "n_train": r.metrics["split_sizes"]["train"],
                "seconds": round(time.perf_counter() - t0, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {
        "parcels": len(f),
        "with_image": int(f["has_image"].sum()),
        "with_poi": int(f["has_poi"].sum()),
        "with_population": int(f["has_population"].sum()),
        "settings": {k: v for k, v in vars(a).items()},
        "runs": rows,
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def table(result: dict[str, Any]) -> str:
    """Markdown: mean ± sd over seeds per variant, and the majority baseline."""
    runs = result["runs"]

    def stat(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} ± {sd:.3f}"

    lines = [
        "| variant | test OA | test kappa | macro F1 | majority OA | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        rs = [r for r in runs if r["variant"] == name]
        if not rs:
            continue
        lines.append(
            f"| {name} | {stat([r['oa'] for r in rs])} | {stat([r['kappa'] for r in rs])} | "
            f"{stat([r['macro_f1'] for r in rs])} | {stat([r['baseline_oa'] for r in rs])} | "
            f"{len(rs)} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--size-m", type=float, default=3000.0)
    p.add_argument("--gsd", type=float, default=1.0)
    p.add_argument("--patch-px", type=int, default=32)
    p.add_argument("--max-patches", type=int, default=4)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--block-size-m", type=float, default=400.0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--backbone", default="swin_tiny_patch4_window7_224")
    p.add_argument("--swin", type=int, nargs=2, default=[1, 2], metavar=("DEPTH", "HEADS"))
    a = p.parse_args()
    result = run(a)
    print(table(result))


if __name__ == "__main__":
    main()
