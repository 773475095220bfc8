"""Tables and training curves of the building-use ablation (``ablation_building_use.py``).

Markdown tables (mean ± standard deviation over seeds) at building level (either vote)
and pixel level, the Lightning CSV log read into train / validation curves, and one PNG
of the curves per ambiguity level.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

USE_CLASSES = ["residential", "commercial", "industrial"]


def read_curve(run: Path) -> dict[str, Any]:
    """Train loss per logged step and val loss per epoch of a run (Lightning CSV log)."""
    import pandas as pd

    logs = sorted((run / "logs").glob("version_*/metrics.csv"))
    out: dict[str, Any] = {"train": [], "val": [], "last_logged_step": 0, "val_flat": None}
    if not logs:
        return out
    df = pd.concat([pd.read_csv(p) for p in logs], ignore_index=True)
    if "train/loss_step" in df.columns:
        t = df.dropna(subset=["train/loss_step"]).drop_duplicates("step")
        out["train"] = [
            [int(a), float(b)] for a, b in zip(t["step"], t["train/loss_step"], strict=True)
        ]
    if "val/loss" in df.columns:
        v = df.dropna(subset=["val/loss"]).drop_duplicates("step")
        out["val"] = [[int(a), float(b)] for a, b in zip(v["step"], v["val/loss"], strict=True)]
    out["last_logged_step"] = int(df["step"].max()) if len(df) else 0
    val = out["val"]
    if len(val) >= 4:
        # flattened: the best val loss of the last quarter is within 5 % of the best
        # val loss at three quarters of the run
        n = len(val)
        early = min(x[1] for x in val[: max(1, (3 * n) // 4)])
        late = min(x[1] for x in val[(3 * n) // 4 :])
        out["val_flat"] = bool(late >= 0.95 * early)
    (run / "curve.json").write_text(json.dumps(out))
    return out


def plot_curves(out: Path, level: str, runs: list[Path], variants: list[str]) -> Path | None:
    """Train and validation loss of every run of one ambiguity level (one PNG).

    ``variants``: the variant names in legend order (one colour each).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [
        (r.name, json.loads((r / "curve.json").read_text()))
        for r in runs
        if (r / "curve.json").exists()
    ]
    if not curves:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    colours = {v: f"C{i}" for i, v in enumerate(variants)}
    for name, c in curves:
        variant = name.rsplit("_s", 1)[0]
        col = colours.get(variant, "k")
        for ax, key in zip(axes, ("train", "val"), strict=False):
            if c[key]:
                x, y = zip(*c[key], strict=False)
                ax.plot(
                    x,
                    y,
                    color=col,
                    alpha=0.7,
                    lw=1,
                    marker="." if key == "val" else None,
                    label=variant,
                )
    for ax, title in zip(
        axes, ("train loss (per logged step)", "validation loss (per epoch)"), strict=False
    ):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_yscale("log")  # the first validation loss can be 10-100x the later ones
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[1].get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=False))
    axes[1].legend(uniq.values(), uniq.keys(), fontsize=8)
    fig.suptitle(f"use ambiguity {level}: every seed")
    fig.tight_layout()
    path = out / f"curves_a{level}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ms(vals: list[float]) -> str:
    vals = [v for v in vals if v is not None and not np.isnan(v)]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}"


def building_table(results: list[dict[str, Any]], vote: str = "bld") -> str:
    """Building-level scores per ambiguity level and variant (mean ± sd over seeds).

    ``vote``: ``bld`` (majority of the predicted use pixels) or ``bld_soft`` (highest
    mean use probability inside the footprint).
    """
    results = [r for r in results if vote in r]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((str(r.get("ambiguity")), r["variant"]), []).append(r)
    head = [
        "ambiguity",
        "variant",
        "seeds",
        "steps: asked / fewest logged / val flat",
        "buildings",
        "OA",
        "kappa",
        *[f"F1 {c}" for c in USE_CLASSES],
        *[f"OvR acc {c}" for c in USE_CLASSES],
        "majority OA",
        "pixel mIoU",
        "pixel kappa",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (a, v), rs in groups.items():
        flat = sum(bool(r.get("val_flat")) for r in rs)
        row = [
            a,
            v,
            str(len(rs)),
            f"{rs[0].get('steps')} / {min(r.get('last_logged_step', 0) for r in rs)}"
            f" / {flat} of {len(rs)}",
            str(rs[0][vote]["n"]),
            _ms([r[vote]["oa"] for r in rs]),
            _ms([r[vote]["kappa"] for r in rs]),
        ]
        row += [_ms([r[vote]["f1"][c] for r in rs]) for c in USE_CLASSES]
        row += [_ms([r[vote]["ovr_accuracy"][c] for r in rs]) for c in USE_CLASSES]
        row += [
            _ms([r[vote]["baseline_oa"] for r in rs]),
            _ms([r["miou"] for r in rs]),
            _ms([r["kappa"] for r in rs]),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def table(results: list[dict[str, Any]], key: str = "variant") -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(str(r[key]), []).append(r)
    classes = ["background", *USE_CLASSES]
    head = [
        "run",
        "n",
        "OA",
        "kappa",
        "mIoU",
        *[f"F1 {c}" for c in classes],
        *[f"OvR acc {c}" for c in USE_CLASSES],
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g, rs in groups.items():
        row = [
            g,
            str(len(rs)),
            _ms([r["oa"] for r in rs]),
            _ms([r["kappa"] for r in rs]),
            _ms([r["miou"] for r in rs]),
        ]
        row += [_ms([r["f1"].get(c) for r in rs]) for c in classes]
        row += [_ms([r["ovr_accuracy"].get(c) for r in rs]) for c in USE_CLASSES]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
