"""Binary change on real image pairs (DSIFN sample): FC-Siam-diff against simple baselines.

The DSIFN sample in ``../shared/data/research_only/dsifn_change/`` (research use only:
read in place, never copied into the repository) holds 10 bi-temporal 256 x 256 RGB
pairs of Chinese cities (``A/``, ``B/``) with binary change masks (``label/``, 0/255).
They are not georeferenced, so this script reads them as arrays (Pillow) rather than
through ``landforge change chips``; the model, loss weighting and metrics are
landforge's (``fc_siam_diff`` from the model registry, BCE, ``binary_change_metrics``).

Split (ours): the pairs sorted by name, the last three (``7_4``, ``8_3``, ``9_3``) are the
test pairs, the other seven train; normalisation statistics from the training pairs only.
Training: random 64 px crops with flips and 90-degree rotations, batch 8, Adam lr 1e-3,
BCE with the positive weight of the training change share, ``--steps`` steps, seeds
``--seeds``; the model is scored on the whole test pairs.

Baselines on the same test pairs: "no change", "all change", and change-vector analysis
(CVA: the per-pixel Euclidean norm of the normalised difference, thresholded at the value
that maximises change F1 on the *training* pairs).

    python benchmarks/change_dsifn.py --out runs/dsifn            # ~3 min per seed, 1 core

Writes OUT/results.json and prints a markdown table (mean +- std over seeds).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from ablation_change_timesteps import _fmt  # mean ± std in percent (same table style)
from PIL import Image

from landforge.evaluation.change import binary_change_metrics
from landforge.models.registry import build

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "research_only" / "dsifn_change"
KEYS = ("change_iou", "change_f1", "change_precision", "change_recall", "overall_accuracy")


def load(root: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Names, A (N,3,H,W) float32, B likewise, labels (N,H,W) bool."""
    names = sorted(p.stem for p in (root / "label").glob("*.png"))
    if not names:
        raise SystemExit(f"error: {root}: no DSIFN pairs (label/*.png)")

    def img(sub: str, n: str) -> np.ndarray:
        return np.asarray(Image.open(root / sub / f"{n}.png").convert("RGB"), np.float32)

    a = np.stack([img("A", n).transpose(2, 0, 1) for n in names])
    b = np.stack([img("B", n).transpose(2, 0, 1) for n in names])
    y = np.stack([np.asarray(Image.open(root / "label" / f"{n}.png")) > 127 for n in names])
    return names, a, b, y


def matrix(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """2x2 change confusion matrix (rows: truth)."""
    t, p = truth.ravel().astype(np.int64), pred.ravel().astype(np.int64)
    return np.bincount(2 * t + p, minlength=4).reshape(2, 2)


def score(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The keys of :data:`KEYS` for a binary prediction."""
    m = binary_change_metrics(matrix(truth, pred))
    return {k: float(m[k]) for k in KEYS}


def cva(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Change magnitude: Euclidean norm of the difference of normalised images."""
    return np.sqrt(((a - b) ** 2).sum(axis=1))


def best_threshold(mag: np.ndarray, truth: np.ndarray) -> float:
    """The magnitude threshold with the highest change F1 (on the training pairs)."""
    best, thr = -1.0, float(np.median(mag))
    for q in np.linspace(0.05, 0.99, 95):
        t = float(np.quantile(mag, q))
        f1 = binary_change_metrics(matrix(truth, mag > t))["change_f1"]
        if f1 == f1 and f1 > best:
            best, thr = f1, t
    return thr


def train_one(
    a: np.ndarray, b: np.ndarray, y: np.ndarray, seed: int, steps: int, batch: int = 8
) -> torch.nn.Module:
    """FC-Siam-diff on random 64 px crops of the training pairs."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build("fc_siam_diff", in_channels=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    share = float(y.mean())
    pos_weight = torch.tensor([(1 - share) / max(share, 1e-6)])
    n, _, h, w = a.shape
    size = 64
    model.train()
    for _ in range(steps):
        idx = rng.integers(0, n, batch)
        r = rng.integers(0, h - size + 1, batch)
        c = rng.integers(0, w - size + 1, batch)
        xa, xb, yy = [], [], []
        for i, rr, cc in zip(idx, r, c, strict=True):
            pa = a[i, :, rr : rr + size, cc : cc + size]
            pb = b[i, :, rr : rr + size, cc : cc + size]
            py = y[i, rr : rr + size, cc : cc + size]
            k = int(rng.integers(4))
            flip = bool(rng.integers(2))
            pa, pb, py = (np.rot90(t, k, axes=(-2, -1)) for t in (pa, pb, py))
            if flip:
                pa, pb, py = (t[..., ::-1] for t in (pa, pb, py))
            if rng.integers(2):  # the order of the dates does not matter for binary change
                pa, pb = pb, pa
            xa.append(pa.copy())
            xb.append(pb.copy())
            yy.append(py.copy())
        logits = model(torch.from_numpy(np.stack(xa)), torch.from_numpy(np.stack(xb)))["change"]
        target = torch.from_numpy(np.stack(yy)).float()[:, None]
        loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def predict(model: torch.nn.Module, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Change (N,H,W) bool on whole images."""
    with torch.no_grad():
        logits = model(torch.from_numpy(a), torch.from_numpy(b))["change"][:, 0]
    return (logits > 0).numpy()


def main() -> None:
    """Train and score; write OUT/results.json; print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--test", type=int, default=3, help="the last N pairs by name are the test set")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names, a, b, y = load(args.data)
    tr, te = slice(0, len(names) - args.test), slice(len(names) - args.test, None)
    mean = np.concatenate([a[tr], b[tr]]).mean(axis=(0, 2, 3), keepdims=True)
    std = np.concatenate([a[tr], b[tr]]).std(axis=(0, 2, 3), keepdims=True) + 1e-6
    a, b = (a - mean) / std, (b - mean) / std
    rows: dict[str, list[dict[str, float]]] = {}
    rows["no change"] = [score(y[te], np.zeros_like(y[te]))]
    rows["all change"] = [score(y[te], np.ones_like(y[te]))]
    thr = best_threshold(cva(a[tr], b[tr]), y[tr])
    rows["CVA (threshold fitted on train)"] = [score(y[te], cva(a[te], b[te]) > thr)]
    seconds = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        model = train_one(a[tr], b[tr], y[tr], seed, args.steps)
        seconds.append(round(time.perf_counter() - t0, 1))
        rows.setdefault("FC-Siam-diff", []).append(score(y[te], predict(model, a[te], b[te])))
        print(json.dumps({"seed": seed, **rows["FC-Siam-diff"][-1], "seconds": seconds[-1]}))
    args.out.mkdir(parents=True, exist_ok=True)
    out = {
        "train_pairs": names[tr],
        "test_pairs": names[te],
        "test_change_share": float(y[te].mean()),
        "steps": args.steps,
        "seeds": args.seeds,
        "train_seconds": seconds,
        "results": rows,
    }
    (args.out / "results.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "| method | change IoU | change F1 | precision | recall | OA |",
        "|---|---|---|---|---|---|",
    ]
    for name, rs in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt([r[k] for r in rs]) for k in KEYS) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
