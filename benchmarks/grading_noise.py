"""How well does grading find wrong labels? Injected label noise on the synthetic city.

Data: ``landforge synth city`` (seed 0, 6 km at 8 m: ~930 parcels, ``use_primary``
labels, POIs), equivalent to
``landforge synth city --out city --size-m 6000 --gsd 8 --no-t2 --no-s1 --no-s2
--no-population`` then ``landforge parcels features city/parcels.gpkg --poi
city/pois.parquet --category-col gbt_category``. Classes with fewer than 20 parcels are
dropped. Features: POI counts per category, ``n_pois``, POIs/ha (no imagery: this
measures the grading, not the fusion model). Parcels without POIs are level 0 and left
out of the measures below (their label cannot be judged by a POI model).

Noise (ours): a share (10 %, 25 %) of the gradable parcels gets a wrong label, either
``uniform`` (any other class) or ``confusable`` (drawn from the off-diagonal row of the
true class in the confusion matrix of a clean-label model, cross-fitted on spatial
blocks: the mistakes a model, and plausibly an annotator, makes).

Methods (``landforge.quality.grade``; every model a standardised logistic regression by
default, ``--model hgb`` for HistGradientBoosting: ~50x the CPU time):
``softprob`` (in-sample, as MSLU), ``softprob_oof`` (cross-fitted, not in the paper),
``cascade`` (tiers of 10 % and 50 % of the gradable parcels: tier 1 = unmixed parcels
(``clean``, not knowing which labels were flipped), tier 2 = those tier 1 agrees with;
in-sample as MSLU), ``cascade_oof`` (the same, tiers' own samples cross-fitted) and
``cleanlab`` (out-of-fold, 5 spatially blocked folds of 300 m).

Measures per run (``landforge.quality.tables``): share of flipped labels in levels <= 2,
share of right labels in levels >= 4, AUROC of the level and of the method's score for
"label is wrong", and MSLU Table 5: train on one level (noisy labels), test on a gold set
(20 % of 300 m blocks, true labels). Seeds 0, 1, 2 (noise, folds, models).

Run: ``python benchmarks/grading_noise.py [--size-m 6000] [--seeds 0,1,2]``; the last
line is JSON; a Markdown summary precedes it. ``--out DIR`` keeps the city.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before sklearn: lean and reproducible

RATES = (0.10, 0.25)
MODES = ("uniform", "confusable")
METHODS = ("softprob", "softprob_oof", "cascade", "cascade_oof", "cleanlab")
MIN_PER_CLASS = 20


def _city(root: Path, size_m: float) -> tuple[object, object]:
    import geopandas as gpd

    from landforge.features.parcel_features import parcel_poi_features
    from landforge.synth import make_city

    city = root / f"city_{int(size_m)}"
    if not (city / "parcels.gpkg").is_file():
        make_city(city, seed=0, size_m=size_m, gsd=8.0, t2=False, s1=False, s2=False,
                  population=False, quiet=True)  # fmt: skip
    parcels = gpd.read_file(city / "parcels.gpkg")
    pois = gpd.read_parquet(city / "pois.parquet")
    feats = parcel_poi_features(parcels, pois, None, category_col="gbt_category")
    return parcels, feats


def _confusion_rows(x, y, k, blocks, seed: int, model: str) -> np.ndarray:
    from landforge.quality.models import block_folds, out_of_fold_proba

    p = out_of_fold_proba(x, y, k, block_folds(blocks, 5, seed), model, seed)
    cm = np.zeros((k, k))
    np.add.at(cm, (y, p.argmax(axis=1)), 1)
    np.fill_diagonal(cm, 0)
    return cm


def _flip(y, k, rate, mode, cm, rng) -> np.ndarray:
    noisy = y.copy()
    idx = rng.choice(len(y), int(round(rate * len(y))), replace=False)
    for i in idx:
        row = cm[y[i]].copy() if mode == "confusable" else np.ones(k)
        row[y[i]] = 0
        if row.sum() == 0:
            row = np.ones(k)
            row[y[i]] = 0
        noisy[i] = rng.choice(k, p=row / row.sum())
    return noisy


def _run(method: str, x, y_noisy, k, blocks, purity, seed: int, model: str) -> object:
    from landforge.quality import grade

    base = {"seed": seed, "folds": 5, "tier_sizes": [0.1, 0.5], "tier_rules": ["clean", "agree"],
            "tier_models": [model] * 3}  # fmt: skip
    if method.startswith("softprob"):
        probs = "out_of_fold" if method.endswith("_oof") else "in_sample"
        return grade(y_noisy, None, x, method="softprob", probabilities=probs, n_classes=k,
                     groups=blocks, **base)  # fmt: skip
    if method.startswith("cascade"):
        probs = "out_of_fold" if method.endswith("_oof") else "in_sample"
        return grade(y_noisy, None, x, method="cascade", probabilities=probs, n_classes=k,
                     groups=blocks, purity=purity, **base)  # fmt: skip
    return grade(y_noisy, None, x, method="cleanlab", n_classes=k, groups=blocks, **base)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-m", type=float, default=6000.0)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default=None, help="folder to keep the city in")
    parser.add_argument("--model", default="logistic", choices=("logistic", "hgb", "forest"))
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import geopandas as gpd
    import pandas as pd

    from landforge.datasets.splits import block_split, feature_blocks
    from landforge.quality.tables import (
        train_by_level,
        wrong_label_auroc,
        wrong_label_shares,
    )

    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="grading_noise_"))
    parcels, feats = _city(root, args.size_m)
    counts = parcels["use_primary"].value_counts()
    classes = sorted(c for c, n in counts.items() if n >= MIN_PER_CLASS)
    keep = (parcels["use_primary"].isin(classes) & (feats["n_pois"] > 0)).to_numpy()
    parcels, feats = parcels[keep].reset_index(drop=True), feats[keep].reset_index(drop=True)
    k = len(classes)
    y = parcels["use_primary"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    # log(1 + count): counts are heavy-tailed; monotone, so trees see the same splits
    x = np.log1p(feats.drop(columns=["parcel_id"], errors="ignore").to_numpy(dtype=np.float64))
    blocks = feature_blocks(parcels, 300.0).to_numpy()
    purity = np.where(parcels["mixed"].astype(bool).to_numpy(), 0.5, 1.0)
    gdf = gpd.GeoDataFrame({"label": parcels["use_primary"].to_numpy()},
                           geometry=parcels.geometry.values, crs=parcels.crs)  # fmt: skip
    gold = (block_split(gdf, ratios={"train": 0.8, "gold": 0.2}, block_size_m=300.0,
                        strata_col="label", seed=0) == "gold").to_numpy()  # fmt: skip
    info = {"parcels_graded": len(y), "classes": classes, "gold": int(gold.sum()),
            "blocks": len(set(blocks)), "labels": {c: int(n) for c, n in
            zip(classes, np.bincount(y, minlength=k), strict=True)}}  # fmt: skip
    print(f"data: {info}", file=sys.stderr, flush=True)
    rows = []
    for seed in seeds:
        cm = _confusion_rows(x, y, k, blocks, seed, args.model)
        for rate in RATES:
            for mode in MODES:
                rng = np.random.default_rng(1000 * seed + int(rate * 100) + len(mode))
                noisy = _flip(y, k, rate, mode, cm, rng)
                wrong = noisy != y
                for method in args.methods.split(","):
                    g = _run(method, x, noisy, k, blocks, purity, seed, args.model)
                    t5 = train_by_level(
                        x, noisy, g.levels, gold, k, gold_labels=y, model=args.model, seeds=(seed,)
                    )
                    row = {"seed": seed, "rate": rate, "mode": mode, "method": method,
                           **wrong_label_shares(wrong, g.levels),
                           "auroc_level": wrong_label_auroc(wrong, g.levels),
                           "auroc_score": wrong_label_auroc(wrong, g.score),
                           "levels": {str(v): int((g.levels == v).sum()) for v in range(2, 6)},
                           "wrong_by_level": {str(v): int((wrong & (g.levels == v)).sum())
                                              for v in range(2, 6)},
                           "train_by_level": {str(r["train_level"]): r["accuracy"] for r in t5}}  # fmt: skip
                    rows.append(row)
                    print(f"seed {seed} {rate:.0%} {mode} {method}: wrong<=2 "
                          f"{row['wrong_in_le2']:.2f} right>=4 {row['right_in_ge4']:.2f} "
                          f"AUROC {row['auroc_level']:.3f}/{row['auroc_score']:.3f}",
                          file=sys.stderr, flush=True)  # fmt: skip
    df = pd.DataFrame(rows)
    summary = []
    for (rate, mode, method), grp in df.groupby(["rate", "mode", "method"], sort=False):
        t5 = pd.DataFrame(list(grp["train_by_level"]))
        summary.append({
            "rate": rate, "mode": mode, "method": method,
            **{m: round(float(grp[m].mean()), 3) for m in
               ("wrong_in_le2", "right_in_ge4", "auroc_level", "auroc_score")},
            "auroc_level_sd": round(float(grp["auroc_level"].std(ddof=0)), 3),
            "train_on_level": {c: (round(float(t5[c].mean()), 3) if t5[c].notna().any()
                                   else None) for c in t5.columns},
        })  # fmt: skip
    _markdown(summary)
    report = {"benchmark": "grading_noise", "data": info, "seeds": seeds, "model": args.model,
              "summary": summary, "runs": rows,
              "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(json.dumps(report))
    return 0


def _markdown(summary: list[dict[str, object]]) -> None:
    print("| noise | method | flipped in <=2 | right in >=4 | AUROC level | AUROC score |"
          " train on 5 / 4 / 3 / 2 / all / majority (gold OA) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for s in summary:
        t5 = s["train_on_level"]
        acc = " / ".join("–" if t5.get(c) is None else f"{t5[c]:.3f}"
                         for c in ("5", "4", "3", "2", "full", "majority"))  # fmt: skip
        print(
            f"| {s['rate']:.0%} {s['mode']} | {s['method']} | {s['wrong_in_le2']:.3f} | "
            f"{s['right_in_ge4']:.3f} | {s['auroc_level']:.3f} ± {s['auroc_level_sd']:.3f} | "
            f"{s['auroc_score']:.3f} | {acc} |"
        )


if __name__ == "__main__":
    sys.exit(main())
