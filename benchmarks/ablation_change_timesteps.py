"""Time-step and Sentinel-1 ablation of change segmentation (FUSU Tables 7 and 8 design).

Variants, all with the same model family, step budget, batch, learning rate and seeds:
0, 9, 18 and 25 monthly time steps (the 9 and 18 are evenly spaced over the 25 months,
first and last included: months 1, 4, 7, ..., 25 for 9; ours, FUSU does not state its
rule), each with and without the Sentinel-1 channels (VV, VH). The 0-step variant is
the bi-temporal branch alone (``fusu_hrnet`` for ``--model fusu_net``).

Data: a synthetic city (``--size-m``, ``--gsd``, 25 months of Sentinel-2/1, change rate
``--change-rate``), cut into ``--patch`` px change chips with a spatially blocked
train / val / test split. Every model is scored on the **test** split with
``landforge change evaluate`` metrics, beside two baselines: "no change" (change
nowhere, the majority train class at both dates) and the 0-step model.

Models: ``--model fusu_net`` (the registered FUSU-Net, small HRNet; needs a GPU for
a useful budget) or ``--model tiny`` (defined here: a 2-layer conv bi-temporal branch
and a per-date 1x1 conv series branch with attention pooling over the dates using the
day offsets, centre-cropped to the patch and added to both dates' features, as FUSU-Net
adds its U-TAE branch; for a CPU budget).

    python benchmarks/ablation_change_timesteps.py --out runs/change_ablation --model tiny
    python benchmarks/ablation_change_timesteps.py --out runs/change_ablation_gpu \
        --model fusu_net --device cuda --steps 2000 --size-m 3000 --gsd 0.5 --patch 512

Writes OUT/results.json and OUT/results.md (mean +- std over seeds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from landforge.change.chips import build_change_chips
from landforge.change.dataset import ChangeChipDataset
from landforge.change.evaluate import evaluate_change_chips
from landforge.change.metrics import ChangeMetrics
from landforge.change.train import train_change
from landforge.models.registry import register
from landforge.synth.city import make_city

KEYS = ("change_iou", "change_f1", "seg_miou", "semantic_change_miou", "sek", "fusu_score")


class TinyChange(nn.Module):
    """Small FUSU-like model: shared conv encoder, series branch with day-aware pooling.

    The series branch pools the dates with ``HEADS`` attention heads (scores from the
    frame features plus an embedding of the season and of the position in the series,
    so a head can attend to early or late dates); the pooled maps are added to both
    dates' features (as FUSU-Net adds its U-TAE branch) *and* given to the change head,
    since anything added equally to both dates cancels in their difference. Without a
    series the change head gets zeros in their place: the same network.
    """

    HEADS = 2

    def __init__(
        self, in_channels: int = 4, series_channels: int = 14, classes: int = 8, width: int = 24
    ) -> None:
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.frame = nn.Sequential(nn.Conv2d(series_channels, width, 1), nn.ReLU())
        self.day = nn.Linear(3, width)
        self.score = nn.Linear(width, self.HEADS)
        self.mix = nn.Conv2d(self.HEADS * width, width, 1)
        self.seg = nn.Conv2d(width, classes, 1)
        self.ts = nn.Conv2d(width, classes, 1)
        self.width = width
        self.chg = nn.Sequential(
            nn.Conv2d((1 + self.HEADS) * width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 1, 1),
        )

    def forward(
        self,
        img1: torch.Tensor,
        img2: torch.Tensor,
        series: torch.Tensor | None = None,
        days: torch.Tensor | None = None,
        series_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        f1, f2 = self.enc(img1), self.enc(img2)
        out: dict[str, torch.Tensor] = {}
        if series is not None and series.shape[1] > 0:
            b, t, c, h, w = series.shape
            z = self.frame(series.reshape(b * t, c, h, w)).reshape(b, t, -1, h, w)
            d = days.float()
            phase = 2 * np.pi * d / 365.25
            span = d.amax(1, keepdim=True).clamp(min=1.0)
            emb = self.day(torch.stack([phase.sin(), phase.cos(), d / span], -1))  # (B, T, W)
            logit = self.score(torch.tanh(z.mean((-2, -1)) + emb))  # (B, T, heads)
            logit = logit.masked_fill(~series_mask[..., None], -1e4)
            att = torch.softmax(logit, 1)  # over the dates, per head
            pooled = torch.einsum("btcyx,btk->bkcyx", z, att).reshape(b, -1, h, w)
            pooled = pooled[..., 2 * h // 5 : 3 * h // 5 + 1, 2 * w // 5 : 3 * w // 5 + 1]
            pooled = F.interpolate(
                pooled, size=img1.shape[-2:], mode="bilinear", align_corners=False
            )  # the patch
            s = self.mix(pooled)
            f1, f2 = f1 + s, f2 + s
            out["seg_ts"] = self.ts(s)
        else:
            pooled = f1.new_zeros(f1.shape[0], self.HEADS * self.width, *f1.shape[-2:])
        change = self.chg(torch.cat([(f1 - f2).abs(), pooled], 1))
        out.update(seg1=self.seg(f1), seg2=self.seg(f2), change=change)
        return out


register("tiny_change", TinyChange)


def _no_change(chips: Path) -> dict[str, Any]:
    """Baseline: no change anywhere; the majority train class at both dates."""
    train = ChangeChipDataset(chips, "train", 0)
    counts = np.zeros(train.classes, np.int64)
    for i in range(len(train)):
        y = train[i]["y1"].numpy()
        counts += np.bincount(y[y > 0], minlength=train.classes)
    major = int(counts.argmax())
    acc = ChangeMetrics(train.classes, train.meta["classes"])
    test = ChangeChipDataset(chips, "test", 0)
    for i in range(len(test)):
        it = test[i]
        p = np.full(it["y1"].shape, major)
        acc.update(it["y1"].numpy(), it["y2"].numpy(), p, p, np.zeros(p.shape, bool))
    return acc.summary()


def _row(m: dict[str, Any]) -> dict[str, float]:
    return {
        "change_iou": m["binary"]["change_iou"],
        "change_f1": m["binary"]["change_f1"],
        "seg_miou": m["seg_miou"],
        "semantic_change_miou": m["semantic_change"]["miou"],
        "sek": m["sek"],
        "fusu_score": m["fusu_score"],
    }


def _fmt(values: list[float]) -> str:
    v = [x for x in values if x == x]
    if not v:
        return "n/a"
    if len(v) == 1:
        return f"{100 * v[0]:.1f}"
    return f"{100 * statistics.mean(v):.1f} ± {100 * statistics.stdev(v):.1f}"


def main() -> None:
    """Run the ablation; write results.json and results.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", default="tiny", help="tiny or fusu_net")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=60, help="training steps per run")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--size-m", type=float, default=1000.0)
    ap.add_argument("--gsd", type=float, default=2.0)
    ap.add_argument("--patch", type=int, default=32)
    ap.add_argument("--change-rate", type=float, default=0.3)
    ap.add_argument("--steps-list", default="0,9,18,25")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    city = a.out / "city"
    if not (city / "city.json").exists():
        make_city(
            city,
            seed=0,
            size_m=a.size_m,
            gsd=a.gsd,
            months=25,
            change_rate=a.change_rate,
            population=False,
            quiet=True,
        )
    chips = a.out / "chips"
    if not (chips / "chips.json").exists():
        build_change_chips(
            city / "image.tif",
            city / "t2" / "image.tif",
            city / "labels" / "landuse.tif",
            city / "t2" / "labels" / "landuse.tif",
            chips,
            city,
            size=a.patch,
            taxonomy="mslu",
            min_coverage=0.3,
            split_block=3,
        )
    meta = json.loads((chips / "chips.json").read_text())
    print(
        f"data ready in {time.perf_counter() - t0:.0f} s: {meta['chips']} chips, "
        f"{meta['changed_chips']} with change, splits {meta['splits']}",
        flush=True,
    )
    name = {"tiny": "tiny_change"}.get(a.model, a.model)
    kwargs: dict[str, Any] = {}
    if a.model == "fusu_net":
        kwargs = {"backbone": "hrnet_w18_small", "head_channels": 64}
    steps_list = [int(s) for s in a.steps_list.split(",")]
    variants = [(0, True)] + [(t, s1) for t in steps_list if t for s1 in (True, False)]
    results: list[dict[str, Any]] = []
    for t, s1 in variants:
        for seed in range(a.seeds):
            model = name if t or a.model != "fusu_net" else "fusu_hrnet"
            kw = {k: v for k, v in kwargs.items() if t or k != "utae"}
            run = a.out / "runs" / f"t{t}_{'s1' if s1 else 'nos1'}_seed{seed}"
            t1 = time.perf_counter()
            w = train_change(
                chips=str(chips),
                out=str(run),
                model=model,
                model_kwargs=kw,
                time_steps=t,
                s1=s1,
                seed=seed,
                epochs=1000,
                max_steps=a.steps,
                batch=a.batch,
                lr=a.lr,
                device=a.device,
                quiet=True,
            )
            m = evaluate_change_chips(chips, w, run / "test_metrics.json", "test", 16, a.device)
            row = {
                "time_steps": t,
                "s1": s1,
                "seed": seed,
                **_row(m),
                "seconds": round(time.perf_counter() - t1, 1),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    base = _row(_no_change(chips))
    out = {
        "args": {k: str(v) for k, v in vars(a).items()},
        "data": {k: meta[k] for k in ("chips", "changed_chips", "splits")},
        "no_change": base,
        "runs": results,
    }
    (a.out / "results.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "| time steps | S1 | change IoU | change F1 | seg mIoU | sem.-change mIoU | SeK | FUSU score |",
        "|---|---|---|---|---|---|---|---|",
        "| no-change baseline | - | " + " | ".join(_fmt([base[k]]) for k in KEYS) + " |",
    ]
    for t, s1 in variants:
        rows = [r for r in results if r["time_steps"] == t and r["s1"] == s1]
        lines.append(
            f"| {t} | {'yes' if s1 and t else ('no' if t else '-')} | "
            + " | ".join(_fmt([r[k] for r in rows]) for k in KEYS)
            + " |"
        )
    (a.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
