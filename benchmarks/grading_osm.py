"""Grading real OSM land-use labels (Helsinki, Monaco): level distribution, held-out
accuracy by level, train on one level and test across cities, against the majority class.

Data and samples exactly as ``benchmarks/poi_landuse_eval.py`` (docs/poi.md, section 5):
road parcels labelled by OSM ``landuse=*`` plus the land-use polygons themselves, MSLU
primary classes with >= 6 samples (B, E, R); features ``emb+counts`` (n_pois, POIs/ha,
one count per category, mean and TF-IDF mean of 32-d category embeddings). The truth is
unknown: OSM tags are the labels. A sample without POIs is level 0 (MSLU: lacks POI
information); only POIs are available (no imagery), so the cascade runs with
``require=[poi]``.

Models: standardised logistic regression by default (``--model hgb`` for the
HistGradientBoosting of docs/poi.md: ~50x the CPU time).

* **Within a city**: grade every sample (softprob in-sample as MSLU, softprob out of
  fold, cascade with tiers of 20 % / 50 % of the gradable samples, cleanlab); held-out
  predictions from 5-fold spatially blocked CV (300 m blocks, the POI classifier of
  docs/poi.md) are compared with the labels per level, beside the majority class of
  the training folds. 3 seeds (folds, models).
* **Across cities**: grade the source city, train on its samples of one level (and of
  levels >= 3, >= 4, all labelled), test on every labelled sample of the other city;
  embeddings fit on the pooled POIs, counts over the pooled vocabulary. Tested on all
  labelled samples of the other city and on those with POIs only.

Run: ``python benchmarks/grading_osm.py``; the last line is JSON. Skips (a JSON line with
``"skipped"``) when ``../shared/data/osm`` is absent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
METHODS = ("softprob", "softprob_oof", "cascade", "cleanlab")
SEEDS = (0, 1, 2)


def _poi_eval() -> object:
    spec = importlib.util.spec_from_file_location("poi_landuse_eval", HERE / "poi_landuse_eval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _grade(method: str, x, y, k, prior, blocks, seed: int, model: str) -> object:
    from landforge.quality import grade

    probs = "out_of_fold" if method.endswith("_oof") else "in_sample"
    return grade(y, None, x, method=method.replace("_oof", ""), probabilities=probs,
                 n_classes=k, prior=prior, groups=blocks, seed=seed, tier_sizes=[0.2, 0.5],
                 tier_rules=["random", "agree"], tier_models=[model] * 3)  # fmt: skip


def _scores(truth, pred, k) -> tuple[float | None, float | None]:
    from landforge.quality.tables import _oa_kappa

    if len(truth) == 0:
        return None, None
    return _oa_kappa(truth, pred, k)


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="logistic", choices=("logistic", "hgb", "forest"))
    model = parser.parse_args().model
    warnings.simplefilter("ignore")
    ev = _poi_eval()
    if not all((ev.DATA / f"{c}.osm.pbf").is_file() for c in ev.CITIES):
        print(json.dumps({"benchmark": "grading_osm", "skipped": f"no data at {ev.DATA}"}))
        return 0
    import pandas as pd

    from landforge.datasets.splits import feature_blocks
    from landforge.features.parcel_features import parcel_poi_features
    from landforge.features.poi_embed import POIEmbedder
    from landforge.quality.levels import prior_levels
    from landforge.quality.models import block_folds, fit_predict_proba, out_of_fold_proba

    t0 = time.perf_counter()
    samples, pois = {}, {}
    for city in ev.CITIES:
        samples[city], pois[city] = ev._samples(city)
    pooled = POIEmbedder(dim=32, seed=0).fit(
        pd.concat([pois[c] for c in ev.CITIES], ignore_index=True), "category"
    )
    counts = {c: samples[c]["label"].value_counts() for c in ev.CITIES}
    classes = sorted(
        c for c in counts[ev.CITIES[0]].index
        if all(counts[t].get(c, 0) >= ev.MIN_PER_CLASS for t in ev.CITIES)
    )  # fmt: skip
    k = len(classes)
    data = {}
    for city in ev.CITIES:
        s = samples[city][samples[city]["label"].isin(classes)].reset_index(drop=True)
        f = parcel_poi_features(s, pois[city], pooled, category_col="category",
                                categories=pooled.categories_)  # fmt: skip
        x = f[ev._columns(f, "emb+counts")].to_numpy(dtype=np.float64)
        x = np.sign(x) * np.log1p(np.abs(x))  # heavy-tailed counts; monotone for trees
        y = s["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
        prior = prior_levels(len(y), missing=(f["n_pois"] <= 0).to_numpy())
        blocks = feature_blocks(s, ev.BLOCK_M).to_numpy()
        data[city] = (s, x, y, prior, blocks)

    within: dict[str, object] = {}
    levels_of: dict[tuple[str, str], np.ndarray] = {}
    for city, (_s, x, y, prior, blocks) in data.items():
        res: dict[str, object] = {"samples": len(y), "level0_no_pois": int((prior == 0).sum())}
        for method in METHODS:
            dist, acc = [], {str(v): [] for v in (0, 2, 3, 4, 5, "all")}
            base = {str(v): [] for v in (0, 2, 3, 4, 5, "all")}
            for seed in SEEDS:
                g = _grade(method, x, y, k, prior, blocks, seed, model)
                if seed == 0:
                    levels_of[(city, method)] = g.levels
                dist.append([int((g.levels == v).sum()) for v in range(6)])
                fold = block_folds(blocks, ev.FOLDS, seed)
                pred = out_of_fold_proba(x, y, k, fold, model, seed).argmax(axis=1)
                major = np.empty_like(y)
                for f in np.unique(fold):
                    major[fold == f] = np.bincount(y[fold != f], minlength=k).argmax()
                for v in acc:
                    m = np.ones(len(y), bool) if v == "all" else g.levels == int(v)
                    acc[v].append(_scores(y[m], pred[m], k)[0])
                    base[v].append(_scores(y[m], major[m], k)[0])
            res[method] = {
                "levels": np.mean(dist, axis=0).round(1).tolist(),
                "heldout_oa_by_level": {v: _mean(a) for v, a in acc.items()},
                "majority_oa_by_level": {v: _mean(a) for v, a in base.items()},
                "samples_by_level": {str(v): float(np.mean([d[v] for d in dist]))
                                     for v in (0, 2, 3, 4, 5)},
            }  # fmt: skip
            print(f"{city} {method}: levels {res[method]['levels']} held-out OA by level "
                  f"{res[method]['heldout_oa_by_level']}", file=sys.stderr, flush=True)  # fmt: skip
        within[city] = res

    cross: dict[str, object] = {}
    for a, b in (ev.CITIES, ev.CITIES[::-1]):
        _, xa, ya, _, _ = data[a]
        _, xb_all, yb_all, prior_b, _ = data[b]
        res = {}
        # test on every labelled sample of the other city, and on those with POIs only
        # (levels >= 2 hold no POI-free sample, so a model trained on them never sees one)
        for method, target in [(m, t) for m in METHODS for t in ("all", "with_pois")]:
            keep_b = np.ones(len(yb_all), bool) if target == "all" else prior_b != 0
            xb, yb = xb_all[keep_b], yb_all[keep_b]
            lv = levels_of[(a, method)]
            rows = {}
            for name, m in (("5", lv == 5), ("4", lv == 4), ("3", lv == 3), ("2", lv == 2),
                            (">=4", lv >= 4), (">=3", lv >= 3), ("graded", lv >= 2),
                            ("all", np.ones(len(ya), bool))):  # fmt: skip
                if m.sum() == 0:
                    rows[name] = {"train": 0, "oa": None, "kappa": None}
                    continue
                oas = [_scores(yb, fit_predict_proba(xa[m], ya[m], xb, k, model, seed)
                               .argmax(axis=1), k) for seed in SEEDS]  # fmt: skip
                rows[name] = {"train": int(m.sum()), "oa": _mean([o[0] for o in oas]),
                              "kappa": _mean([o[1] for o in oas])}  # fmt: skip
            major = np.bincount(ya, minlength=k).argmax()
            rows["majority"] = dict(zip(("oa", "kappa"), _scores(yb, np.full(len(yb), major), k),
                                        strict=True))  # fmt: skip
            res[f"{method}|test={target}"] = rows
        cross[f"{a}->{b}"] = res
        print(f"{a}->{b}: {res}", file=sys.stderr, flush=True)
    report = {"benchmark": "grading_osm", "model": model, "classes": classes, "within_city": within,
              "cross_city": cross, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(json.dumps(report))
    return 0


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(float(np.mean(vals)), 3) if vals else None


if __name__ == "__main__":
    sys.exit(main())
