"""Region sequences: train on region A, fine-tune on B from A's weights, and so on.

After every step the current model is scored on every region's test split (its val
split when it has no test chips), so the matrix ``step x region`` shows what each new
region adds and what the earlier ones lose (UBGG-style transfer across cities).

Config (:class:`~landforge.training.options.SequenceConfig`; YAML, unknown fields
refused)::

    out: runs/sequence
    regions:                 # name -> chip store
      wuhan: chips/wuhan
      shenzhen: chips/shenzhen
    order: [wuhan, shenzhen] # default: the order of regions
    base:                    # a training config without chips / out / init
      model_kwargs: {encoder: resnet18}
      epochs: 10
    eval_split: test
    eval_head: use           # default: the first multi-class head
    init: null               # optional checkpoint the first step starts from

Outputs: ``OUT/steps/NN_<region>/`` (one ``landforge train`` output per step),
``OUT/sequence.json`` (matrices ``oa``/``miou``/``kappa`` as lists, step rows x region
columns, plus every cell with its split and pixel count) and ``OUT/sequence.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from landforge.training.options import SequenceConfig

__all__ = ["run_sequence", "markdown_matrix"]


def run_sequence(cfg: SequenceConfig | Mapping[str, Any] | None = None, **overrides: Any) -> Path:
    """Train the sequence, score every region after every step; returns sequence.json.

    ``cfg`` is a :class:`~landforge.training.options.SequenceConfig` (or a mapping of
    its fields); ``overrides`` replace its fields.
    """
    from landforge.datasets.chips import read_meta
    from landforge.io.atomic import atomic_path
    from landforge.models.checkpoint import load_checkpoint
    from landforge.training.evaluate_store import (
        evaluate_on_store,
        headline,
        pick_eval_head,
        store_eval_split,
    )
    from landforge.training.train import train

    cfg = SequenceConfig.build(cfg, **overrides)
    out = Path(cfg.out)
    regions = list(cfg.regions)
    first = cfg.train_config(cfg.steps[0], out, None)
    head_name, head, mask = pick_eval_head(first.heads, cfg.eval_head)
    splits = {}
    for r in regions:
        read_meta(cfg.regions[r])  # a clear error for a missing store, before training
        splits[r] = store_eval_split(cfg.regions[r], cfg.eval_split)

    steps: list[dict[str, Any]] = []
    init = cfg.init
    for i, region in enumerate(cfg.steps, start=1):
        step_out = out / "steps" / f"{i:02d}_{region}"
        weights = train(cfg.train_config(region, step_out, init))
        model, card = load_checkpoint(weights)
        results = {}
        for r in regions:
            cm = evaluate_on_store(model, card, cfg.regions[r], splits[r], head, head_name, mask)
            results[r] = {**headline(cm), "split": splits[r]}
        steps.append({"step": i, "region": region, "model": str(weights), "results": results})
        init = weights

    report = {
        "order": cfg.steps,
        "regions": regions,
        "head": head_name,
        "eval_split": cfg.eval_split,
        "steps": steps,
        "matrix": {
            m: [[s["results"][r][m] for r in regions] for s in steps]
            for m in ("oa", "miou", "kappa")
        },
    }
    path = out / "sequence.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    rows = [f"{s['step']}. {s['region']}" for s in steps]
    md = markdown_matrix(
        "step (trained on)",
        rows,
        regions,
        [[s["results"][r] for r in regions] for s in steps],
    )
    with atomic_path(out / "sequence.md") as tmp:
        tmp.write_text(
            f"# Region sequence ({head_name}, {cfg.eval_split} split)\n\n"
            "Cells: OA / mIoU / kappa of the model after each step on each region.\n\n" + md
        )
    return path


def markdown_matrix(
    corner: str,
    rows: list[str],
    cols: list[str],
    cells: list[list[dict[str, Any]]],
    metrics: tuple[str, ...] = ("oa", "miou", "kappa"),
) -> str:
    """A markdown table whose cells are ``metric / metric / ...`` values (3 decimals)."""

    def fmt(v: Any) -> str:
        return "–" if v is None else f"{v:.3f}"

    lines = [
        f"| {corner} | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for name, row in zip(rows, cells, strict=True):
        values = [" / ".join(fmt(c.get(m)) for m in metrics) for c in row]
        lines.append(f"| {name} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"
