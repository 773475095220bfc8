"""Does POI information predict OSM land use? Counts vs. category embeddings, real data.

Data: ``../shared/data/osm/{helsinki,monaco}.osm.pbf`` (© OpenStreetMap contributors,
ODbL 1.0). Skips (prints a JSON line with ``"skipped"``) when the data is absent.

Samples per city:

* **road parcels**: ``generate_parcels(read_osm_roads(pbf))`` (driving network), labelled
  with ``label_parcels(..., read_osm_landuse(pbf), "landuse", mapping=osm_mslu)``; only
  labelled parcels are kept. These are few (tens per city), so we also use
* **land-use polygons as parcels**: every ``landuse=*`` polygon whose value maps to an
  MSLU primary class (its own label, purity 1).

Classes with fewer than ``MIN_PER_CLASS`` samples in a city are dropped (for cross-city:
in either city). Features per sample (``parcel_poi_features``; OSM POIs, category =
"key=value"): (a) none, majority class of the training fold; (a') ``density``: n_pois
and POIs/ha only (does the parcel have POIs at all?); (b) ``counts``: n_pois, density and
one count per category; (c) ``emb``: n_pois, density, mean and TF-IDF mean category
embedding; (d) ``emb+counts``. Classifier: HistGradientBoostingClassifier (100 iterations,
``min_samples_leaf=5`` for the small samples, one thread).

Within a city: 5-fold spatially blocked cross-validation (300 m grid blocks by sample
centroid, blocks shuffled into folds with a seed), out-of-fold predictions pooled into
one confusion matrix, repeated for 3 seeds (mean ± sd). Embeddings are fit per city on
all its POIs (unsupervised: no labels are seen). Cross-city: embeddings fit on the
pooled POIs of both cities; train on all samples of one city, test on the other.

Run: ``python benchmarks/poi_landuse_eval.py [--dim 32]``; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm"
CITIES = ("helsinki", "monaco")
MIN_PER_CLASS = 6
BLOCK_M = 300.0
FOLDS = 5
SEEDS = (0, 1, 2)


def _samples(city: str) -> tuple[object, object]:
    """Labelled samples (road parcels + land-use polygons) and POIs of one city."""
    import geopandas as gpd

    from landforge.io.osm import read_osm_landuse, read_osm_pois, read_osm_roads
    from landforge.io.vector import to_metric
    from landforge.parcels import generate_parcels, label_parcels, map_labels
    from landforge.taxonomy import load_mapping

    pbf = DATA / f"{city}.osm.pbf"
    mapping = load_mapping("osm_mslu")
    pois = read_osm_pois(pbf)
    landuse = read_osm_landuse(pbf)
    parcels = generate_parcels(read_osm_roads(pbf))
    crs = parcels.crs
    labelled = label_parcels(parcels, landuse, "landuse", mapping=mapping)
    labelled = labelled[labelled["label"].notna()]
    road = gpd.GeoDataFrame(
        {"source": "road_parcel", "label": labelled["label"].astype(str).to_numpy()},
        geometry=labelled.geometry.values,
        crs=crs,
    )
    codes = map_labels(landuse["landuse"], mapping, "landuse")
    keep = codes.notna().to_numpy()
    lu = gpd.GeoDataFrame(
        {"source": "landuse_polygon", "label": codes[keep].astype(str).to_numpy()},
        geometry=landuse.geometry.values[keep],
        crs=landuse.crs,
    ).to_crs(crs)
    samples = pd.concat([road, lu], ignore_index=True)
    samples = gpd.GeoDataFrame(samples, geometry="geometry", crs=crs)
    g = samples.geometry
    samples = samples[~(g.isna() | g.is_empty).to_numpy() & (g.area > 0).to_numpy()]
    samples = samples.reset_index(drop=True)
    samples["city"] = city
    samples["parcel_id"] = np.arange(len(samples))
    return to_metric(samples), pois


def _blocks(samples: object, seed: int) -> np.ndarray:
    """Fold of each sample: 300 m grid blocks of the centroid, shuffled into folds."""
    c = samples.geometry.centroid
    key = pd.Series(
        list(
            zip(
                np.floor(c.x / BLOCK_M).astype(int),
                np.floor(c.y / BLOCK_M).astype(int),
                strict=True,
            )
        )
    )
    uniq = sorted(set(key))
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_of = {b: int(order[i] % FOLDS) for i, b in enumerate(uniq)}
    return key.map(fold_of).to_numpy()


def _columns(feats: pd.DataFrame, kind: str) -> list[str]:
    base = ["n_pois", "poi_density_ha"]
    counts = [c for c in feats.columns if c.startswith("n_") and c != "n_pois"]
    emb = [c for c in feats.columns if c.startswith("emb_")]
    return {
        "density": base,
        "counts": base + counts,
        "emb": base + emb,
        "emb+counts": base + counts + emb,
    }[kind]


def _model(seed: int) -> object:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.1,
        # sklearn's default of 20 leaves no split on a sparse count column with ~100
        # training samples (counts then score exactly like density alone)
        min_samples_leaf=5,
        early_stopping=False,
        random_state=seed,
    )


def _scores(truth: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, object]:
    from landforge.evaluation.metrics import (
        ConfusionMatrix,
        cohen_kappa,
        f1_score,
        overall_accuracy,
    )

    cm = ConfusionMatrix(labels=list(range(len(classes))))
    cm.update(truth, pred)
    f1 = f1_score(cm)
    return {
        "oa": float(overall_accuracy(cm)),
        "kappa": float(cohen_kappa(cm)),
        "macro_f1": float(np.mean(f1)),
        "f1": {c: float(v) for c, v in zip(classes, f1, strict=True)},
    }


def _predict(kind: str, x_tr, y_tr, x_te, seed: int) -> np.ndarray:
    if kind == "majority":
        return np.full(len(x_te), np.bincount(y_tr).argmax())
    return _model(seed).fit(x_tr, y_tr).predict(x_te)


KINDS = ("majority", "density", "counts", "emb", "emb+counts")


def _mean_sd(runs: list[dict[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in ("oa", "kappa", "macro_f1"):
        vals = np.array([r[key] for r in runs])
        out[key] = round(float(vals.mean()), 3)
        out[key + "_sd"] = round(float(vals.std()), 3)
    out["f1"] = {c: round(float(np.mean([r["f1"][c] for r in runs])), 3) for c in runs[0]["f1"]}
    return out


def _within(samples, feats: pd.DataFrame, classes: list[str]) -> dict[str, object]:
    y = samples["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    results: dict[str, object] = {}
    for kind in KINDS:
        x = feats[_columns(feats, kind)].to_numpy() if kind != "majority" else np.zeros((len(y), 1))
        runs = []
        for seed in SEEDS:
            fold = _blocks(samples, seed)
            pred = np.empty_like(y)
            for f in range(FOLDS):
                te = fold == f
                if not te.any():
                    continue
                pred[te] = _predict(kind, x[~te], y[~te], x[te], seed)
            runs.append(_scores(y, pred, classes))
        results[kind] = _mean_sd(runs)
        print(f"  {kind}: OA {results[kind]['oa']}", file=sys.stderr, flush=True)
    return results


def _cross(tr, f_tr, te, f_te, classes: list[str]) -> dict[str, object]:
    code = {c: i for i, c in enumerate(classes)}
    y_tr, y_te = tr["label"].map(code).to_numpy(), te["label"].map(code).to_numpy()
    results: dict[str, object] = {}
    for kind in KINDS:
        cols = _columns(f_tr, kind) if kind != "majority" else []
        x_tr = f_tr[cols].to_numpy() if cols else np.zeros((len(y_tr), 1))
        x_te = f_te[cols].to_numpy() if cols else np.zeros((len(y_te), 1))
        runs = [_scores(y_te, _predict(kind, x_tr, y_tr, x_te, seed), classes) for seed in SEEDS]
        results[kind] = _mean_sd(runs)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=32)
    args = parser.parse_args()
    if not all((DATA / f"{c}.osm.pbf").is_file() for c in CITIES):
        print(json.dumps({"benchmark": "poi_landuse_eval", "skipped": f"no data at {DATA}"}))
        return 0
    # one thread (set before sklearn loads OpenMP): lean on shared machines, reproducible
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.simplefilter("ignore")
    from landforge.features.parcel_features import parcel_poi_features
    from landforge.features.poi_embed import POIEmbedder

    t0 = time.perf_counter()
    samples, pois, models = {}, {}, {}
    for city in CITIES:
        samples[city], pois[city] = _samples(city)
        models[city] = POIEmbedder(dim=args.dim, seed=0).fit(pois[city], "category")
    pooled_pois = pd.concat([pois[c] for c in CITIES], ignore_index=True)
    pooled = POIEmbedder(dim=args.dim, seed=0).fit(pooled_pois, "category")
    t_fit = time.perf_counter() - t0

    report: dict[str, object] = {"benchmark": "poi_landuse_eval", "dim": args.dim}
    info: dict[str, object] = {}
    within: dict[str, object] = {}
    for city in CITIES:
        s = samples[city]
        counts = s["label"].value_counts()
        classes = sorted(c for c, n in counts.items() if n >= MIN_PER_CLASS)
        kept = s[s["label"].isin(classes)].reset_index(drop=True)
        feats = parcel_poi_features(kept, pois[city], models[city], category_col="category")
        info[city] = {
            "pois": len(pois[city]),
            "categories": len(models[city].categories_),
            "samples_by_source": s["source"].value_counts().to_dict(),
            "labels_all": {k: int(v) for k, v in counts.items()},
            "dropped_classes": sorted(set(counts.index) - set(classes)),
            "samples_used": len(kept),
            "share_with_pois": round(float((feats["n_pois"] > 0).mean()), 3),
            "blocks": len(set(map(tuple, np.floor(
                np.c_[kept.centroid.x, kept.centroid.y] / BLOCK_M).astype(int)))),
        }  # fmt: skip
        print(f"{city}: {info[city]}", file=sys.stderr, flush=True)
        within[city] = _within(kept, feats, classes)
        within[city]["classes"] = classes
    report["data"] = info
    report["within_city"] = within

    cross: dict[str, object] = {}
    counts = {c: samples[c]["label"].value_counts() for c in CITIES}
    classes = sorted(
        k for k in counts[CITIES[0]].index
        if counts[CITIES[0]][k] >= MIN_PER_CLASS and counts[CITIES[1]].get(k, 0) >= MIN_PER_CLASS
    )  # fmt: skip
    kept = {c: samples[c][samples[c]["label"].isin(classes)].reset_index(drop=True) for c in CITIES}
    vocab = pooled.categories_
    feats = {
        c: parcel_poi_features(kept[c], pois[c], pooled, category_col="category", categories=vocab)
        for c in CITIES
    }
    for a, b in (CITIES, CITIES[::-1]):
        cross[f"{a}->{b}"] = _cross(kept[a], feats[a], kept[b], feats[b], classes)
    cross["classes"] = classes
    report["cross_city"] = cross
    report["seconds"] = {
        "fit_embeddings": round(t_fit, 1),
        "total": round(time.perf_counter() - t0, 1),
    }
    _table(report)
    print(json.dumps(report))
    return 0


def _table(report: dict[str, object]) -> None:
    """Human-readable summary (Markdown) before the JSON line."""
    print("| run | classes | features | OA | kappa | macro F1 | per-class F1 |")
    print("|---|---|---|---|---|---|---|")
    rows = [(city, r) for city, r in report["within_city"].items()]
    rows += [(k, v) for k, v in report["cross_city"].items() if k != "classes"]
    for name, res in rows:
        classes = res.get("classes", report["cross_city"]["classes"])
        for kind in KINDS:
            m = res[kind]
            f1 = " ".join(f"{c} {v:.2f}" for c, v in m["f1"].items())
            sd = f" ± {m['oa_sd']:.3f}" if m["oa_sd"] else ""
            print(
                f"| {name} | {','.join(classes)} | {kind} | {m['oa']:.3f}{sd} | "
                f"{m['kappa']:.3f} | {m['macro_f1']:.3f} | {f1} |"
            )


if __name__ == "__main__":
    sys.exit(main())
