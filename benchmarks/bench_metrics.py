"""Confusion-matrix accumulation vs scikit-learn on the same pixels.

Prints a JSON line: seconds for landforge's block-wise ConfusionMatrix.update and for
sklearn.metrics.confusion_matrix over 2e7 random uint8 labels (8 classes), their ratio,
and whether the matrices agree.
"""

from __future__ import annotations

import json
import time

import numpy as np
from sklearn.metrics import confusion_matrix

from landforge.evaluation.metrics import ConfusionMatrix

N = 20_000_000
K = 8


def main() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, K, N, dtype=np.uint8)
    pred = np.where(rng.random(N) < 0.8, truth, rng.integers(0, K, N, dtype=np.uint8))
    t0 = time.perf_counter()
    cm = ConfusionMatrix(labels=list(range(K)))
    for start in range(0, N, 1 << 20):  # blocks, as over raster windows
        cm.update(truth[start : start + (1 << 20)], pred[start : start + (1 << 20)])
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = confusion_matrix(truth, pred, labels=list(range(K)))
    t_ref = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "pixels": N,
                "classes": K,
                "landforge_s": round(t_ours, 3),
                "sklearn_s": round(t_ref, 3),
                "speedup_vs_sklearn": round(t_ref / t_ours, 1),
                "mpix_per_s": round(N / t_ours / 1e6, 1),
                "equal": bool((cm.matrix == ref).all()),
            }
        )
    )


if __name__ == "__main__":
    main()
