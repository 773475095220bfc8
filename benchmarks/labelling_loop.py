"""The labelling loop with simulated annotators on real OSM land use (Helsinki, Monaco).

Truth behind the simulated annotators: MSLU primary classes from OSM ``landuse=*``
(road parcels labelled by majority area + the land-use polygons themselves, as in
``benchmarks/poi_landuse_eval.py``; classes with fewer than 6 samples dropped).
Features of the retrained model: POI counts per category and POI density per parcel
(``parcel_poi_features``, no embeddings). Writes ``<out>/<city>_truth.parquet`` and runs

    landforge label simulate <out>/<city>_truth.parquet --truth-col label \
        --batch-size 20 --rounds 4 --seed S --out <out>/<city>_loop_S.json

for seeds 0, 1, 2; prints one table row per city, seed and round and, last, one JSON line.
Skips (one JSON line) when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/labelling")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    from poi_landuse_eval import CITIES, DATA, MIN_PER_CLASS, _samples

    if not all((DATA / f"{c}.osm.pbf").is_file() for c in CITIES):
        print(json.dumps({"benchmark": "labelling_loop", "skipped": f"no data at {DATA}"}))
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.simplefilter("ignore")
    from landforge.cli import main as cli
    from landforge.features.parcel_features import parcel_poi_features

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, object] = {"benchmark": "labelling_loop"}
    for city in CITIES:
        samples, pois = _samples(city)
        counts = samples["label"].value_counts()
        keep = sorted(c for c, n in counts.items() if n >= MIN_PER_CLASS)
        samples = samples[samples["label"].isin(keep)].reset_index(drop=True)
        feats = parcel_poi_features(samples, pois, None, category_col="category")
        num = feats.select_dtypes("number").drop(columns=["parcel_id"], errors="ignore")
        truth = samples[["parcel_id", "label", "geometry"]].copy()
        for c in num.columns:
            truth[f"f_{c}"] = num[c].to_numpy()
        path = out / f"{city}_truth.parquet"
        truth.to_parquet(path)
        runs = []
        for seed in (int(s) for s in args.seeds.split(",")):
            loop = out / f"{city}_loop_{seed}.json"
            argv = ["label", "simulate", str(path), "--truth-col", "label", "--batch-size",
                    "20", "--rounds", "4", "--seed", str(seed), "--out", str(loop)]  # fmt: skip
            if cli(argv) != 0:
                return 1
            runs.append(json.loads(loop.read_text()))
        report[city] = {
            "samples": len(truth),
            "classes": {k: int(v) for k, v in truth["label"].value_counts().items()},
            "features": len(num.columns),
            "runs": runs,
        }
        for r in runs:
            print(f"{city} seed {r['seed']}: majority {r['majority_accuracy']:.3f}, "
                  f"round 0 model {r['model_accuracy_round0']:.3f}")  # fmt: skip
            for x in r["rounds"]:
                print(
                    f"  round {x['round']}: tasks {x['tasks']} (revised {x['revised_tasks']}), "
                    f"pre-label acc {x['prelabel_accuracy']:.3f}, agreement {x['agreement']:.3f}, "
                    f"batches {x['batches_accepted']}/{x['batches']} accepted, acceptance "
                    f"{x['acceptance_rate']:.3f}, raw acc {x['annotated_accuracy']:.3f}, "
                    f"accepted acc {_num(x['accepted_accuracy'])} (all {_num(x['all_accepted_accuracy'])}), "
                    f"model {x['model_accuracy']:.3f}"
                )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
