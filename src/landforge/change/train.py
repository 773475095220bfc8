"""``landforge change train CONFIG.yaml``: train a change model on change chips.

A plain PyTorch loop (seeded; one process) over :class:`~landforge.change.dataset.ChangeChipDataset`:
the model is built from the registry with ``in_channels``, ``series_channels`` and
``classes`` filled in from the chips, trained with the FUSU loss ``L_1s + L_2s + L_Ts +
2 L_c`` (:class:`landforge.models.fusu_loss.FusuLoss`), scored on the ``val`` split
after every epoch (FUSU score, :mod:`landforge.change.metrics`), and the best epoch's
weights are written as ``OUT/model.safetensors`` + ``OUT/model.json`` (the card) +
``OUT/model.change.json`` (the series: channels kept, time steps, footprint, mean /
std) + ``OUT/train_log.json``.

Starting settings (FUSU): change models AdamW (0.5, 0.999), lr 3e-4, linear decay,
batch 8; segmentation models SGD momentum 0.9, weight decay 1e-4, lr 0.01, poly 0.9.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from landforge.change.dataset import ChangeChipDataset
from landforge.change.metrics import ChangeMetrics
from landforge.change.options import ChangeTrainConfig, pick_time_steps
from landforge.errors import InputError, OptionError

__all__ = [
    "SEG_IGNORE",
    "build_change_model",
    "forward",
    "fusu_loss",
    "predict_maps",
    "train_change",
]

#: target value of ignored pixels handed to the loss
SEG_IGNORE = -100


def fusu_loss(
    outputs: Mapping[str, torch.Tensor],
    y1: torch.Tensor,
    y2: torch.Tensor,
    change: torch.Tensor,
    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 2.0),
    ignore_index: int = SEG_IGNORE,
) -> torch.Tensor:
    """``w1 L_1s + w2 L_2s + wT L_Ts + wc L_c`` of the outputs present (FUSU: 1, 1, 1, 2).

    Cross-entropy of ``seg1`` / ``seg2`` against ``y1`` / ``y2`` and of ``seg_ts``
    against ``y1``; BCE of ``change`` against ``change`` (0/1). Targets equal to
    ``ignore_index`` are left out; a term without a valid pixel adds 0. The registered
    :class:`~landforge.models.fusu_loss.FusuLoss` computes the same when it is present;
    this function is the fallback used without it.
    """

    def ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not bool((y != ignore_index).any()):
            return logits.sum() * 0.0
        return F.cross_entropy(logits, y, ignore_index=ignore_index)

    total = torch.zeros((), device=y1.device)
    for key, y, w in (
        ("seg1", y1, weights[0]),
        ("seg2", y2, weights[1]),
        ("seg_ts", y1, weights[2]),
    ):
        if key in outputs and w:
            total = total + w * ce(outputs[key], y)
    if "change" in outputs and weights[3]:
        logits = outputs["change"][:, 0]
        valid = change != ignore_index
        if bool(valid.any()):
            total = total + weights[3] * F.binary_cross_entropy_with_logits(
                logits[valid], change[valid].float()
            )
    return total


def _loss_fn(weights: tuple[float, float, float, float]) -> Any:
    """The registered FusuLoss when present (and the weights fit it), else :func:`fusu_loss`."""
    import importlib

    try:
        module: Any = importlib.import_module("landforge.models.fusu_loss")
    except ImportError:
        module = None
    if module is not None and weights[0] == weights[1]:
        loss = module.FusuLoss(
            ignore_index=SEG_IGNORE,
            seg_weight=weights[0],
            ts_weight=weights[2],
            change_weight=weights[3],
        )
        return lambda out, y1, y2, yc: loss(out, {"seg1": y1, "seg2": y2, "change": yc})["loss"]
    return lambda out, y1, y2, yc: fusu_loss(out, y1, y2, yc, weights)


def build_change_model(
    name: str, in_channels: int, series_channels: int, classes: int, **kwargs: Any
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The registered model ``name`` with the sizes its builder takes; (model, kwargs)."""
    from landforge.models.registry import build, builder_options

    takes = builder_options(name)
    sizes = {
        "in_channels": in_channels,
        "series_channels": max(series_channels, 1),
        "classes": classes,
    }
    kw = {k: v for k, v in sizes.items() if k in takes or not takes}
    kw.update(kwargs)
    return build(name, **kw), kw


def forward(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model on a batch: ``model(img1, img2, series=..., days=..., series_mask=...)``."""
    if "series" in batch:
        return model(
            batch["img1"],
            batch["img2"],
            series=batch["series"],
            days=batch["days"],
            series_mask=batch["series_mask"],
        )
    return model(batch["img1"], batch["img2"])


def predict_maps(
    out: Mapping[str, torch.Tensor], threshold: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(T1 classes, T2 classes, change 0/1) of a model's outputs, each (B, H, W).

    A model without ``seg1`` uses ``seg_ts``; without ``seg2`` the T2 map is the T1 map;
    without ``change`` change is ``T1 != T2``; without any segmentation the class maps
    are 0 (a pure change model).
    """
    ref = out.get("change", out.get("seg1", out.get("seg_ts")))
    assert ref is not None, "the model returned no known output"
    b, _, h, w = ref.shape
    s1 = out.get("seg1", out.get("seg_ts"))
    p1 = (
        s1.argmax(1)
        if s1 is not None
        else torch.zeros((b, h, w), dtype=torch.long, device=ref.device)
    )
    p2 = out["seg2"].argmax(1) if "seg2" in out else p1
    pc = torch.sigmoid(out["change"][:, 0]) > threshold if "change" in out else p1 != p2
    return p1, p2, pc


def _targets(batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    y1 = torch.where(batch["y1"] == 0, SEG_IGNORE, batch["y1"])
    y2 = torch.where(batch["y2"] == 0, SEG_IGNORE, batch["y2"])
    yc = torch.where(batch["yc"] == 255, SEG_IGNORE, batch["yc"])
    return y1, y2, yc


def evaluate_loader(
    model: torch.nn.Module, loader: DataLoader, classes: int, names: list[str] | None, device: Any
) -> dict[str, Any]:
    """:class:`ChangeMetrics` summary of ``model`` over ``loader``."""
    acc = ChangeMetrics(classes, names)
    model.eval()
    with torch.no_grad():
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            p1, p2, pc = predict_maps(forward(model, batch))
            acc.update(
                batch["y1"].cpu().numpy(),
                batch["y2"].cpu().numpy(),
                p1.cpu().numpy(),
                p2.cpu().numpy(),
                pc.cpu().numpy(),
            )
    return acc.summary()


def _schedule(kind: str, total: int) -> Any:
    def f(step: int) -> float:
        frac = min(step / max(total, 1), 1.0)
        if kind == "linear":
            return max(1.0 - frac, 0.0)
        if kind == "poly":
            return max(1.0 - frac, 0.0) ** 0.9
        return 1.0

    return f


def train_change(
    cfg: ChangeTrainConfig | Mapping[str, Any] | None = None, **overrides: Any
) -> Path:
    """Train a change model (see the module doc); returns the weights path."""
    from landforge.models.checkpoint import ModelCard, load_checkpoint, save_checkpoint

    c = ChangeTrainConfig.build(cfg, **overrides)
    torch.manual_seed(c.seed)
    np.random.seed(c.seed)
    try:
        device = torch.device(c.device)
    except RuntimeError:
        raise OptionError("device", f"unknown torch device {c.device!r}") from None
    train_ds = ChangeChipDataset(c.chips, "train", c.time_steps, c.s1, flip=True, seed=c.seed)
    if len(train_ds) == 0:
        raise InputError(c.chips, "no chips in the train split")
    val_ds = ChangeChipDataset(c.chips, "val", c.time_steps, c.s1)
    meta = train_ds.meta
    model, kwargs = build_change_model(
        c.model, train_ds.in_channels, train_ds.series_channels, train_ds.classes, **c.model_kwargs
    )
    if c.init is not None:
        init, _ = load_checkpoint(c.init)
        model.load_state_dict(init.state_dict(), strict=False)
    model.to(device)
    gen = torch.Generator().manual_seed(c.seed)
    loader = DataLoader(
        train_ds,
        batch_size=c.batch,
        shuffle=True,
        generator=gen,
        num_workers=c.workers,
        drop_last=len(train_ds) > c.batch,
    )
    val_loader = DataLoader(val_ds, batch_size=c.batch, num_workers=c.workers)
    params = [p for p in model.parameters() if p.requires_grad]
    if c.optimizer == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(
            params, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay
        )
    else:
        opt = torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    total = c.epochs * len(loader)
    if c.max_steps is not None:
        total = min(total, c.max_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(c.schedule, total))
    loss_fn = _loss_fn(c.loss_weights)
    log: list[dict[str, Any]] = []
    best: tuple[float, dict[str, torch.Tensor], dict[str, Any]] | None = None
    step, t0 = 0, time.perf_counter()
    for epoch in range(c.epochs):
        model.train()
        losses = []
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            out = forward(model, batch)
            loss = loss_fn(out, *_targets(batch))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            if step >= total:
                break
        entry: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": step,
            "loss": float(np.mean(losses)) if losses else math.nan,
        }
        if len(val_ds):
            m = evaluate_loader(model, val_loader, train_ds.classes, meta["classes"], device)
            entry["val"] = {k: m[k] for k in ("fusu_score", "sek", "miou_scd", "seg_miou")}
            entry["val"]["change_iou"] = m["binary"]["change_iou"]
            score = m["fusu_score"]
            score = -math.inf if math.isnan(score) else score
        else:
            m, score = {}, -entry["loss"]
        if best is None or score > best[0]:
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best = (score, state, entry)
        log.append(entry)
        if not c.quiet:
            print(
                f"epoch {epoch + 1}: loss {entry['loss']:.4f}"
                + (f", val FUSU score {score:.4f}" if len(val_ds) else ""),
                flush=True,
            )
        if step >= total:
            break
    assert best is not None
    model.load_state_dict(best[1])
    out_dir = Path(c.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    val = best[2].get("val", {})
    card = ModelCard(
        model=c.model,
        model_kwargs=kwargs,
        bands=list(meta["bands"]),
        mean=list(meta["mean"]),
        std=list(meta["std"]),
        heads={"seg": list(meta["classes"]), "change": ["change"]},
        taxonomy=meta.get("taxonomy"),
        gsd_m=meta.get("gsd"),
        metrics={
            f"val_{k}": float(v) for k, v in val.items() if v is not None and not math.isnan(v)
        },
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        notes=f"landforge change train: {c.optimizer} lr {c.lr} {c.schedule}, best epoch {best[2]['epoch']}",
    )
    weights = save_checkpoint(model.cpu(), card, out_dir / "model")
    _write_json(out_dir / "model.change.json", series_card(meta, c.time_steps, c.s1))
    _write_json(
        out_dir / "train_log.json",
        {
            "config": c.model_dump(mode="json"),
            "epochs": log,
            "seconds": round(time.perf_counter() - t0, 1),
        },
    )
    return weights


def series_card(meta: Mapping[str, Any], time_steps: int | None, s1: bool) -> dict[str, Any]:
    """What ``change predict`` needs to cut the series as in training."""
    from landforge.change.dataset import series_channels

    dates = list(meta.get("series_dates", []))
    keep = series_channels(dict(meta), s1) if dates and time_steps != 0 else []
    steps = pick_time_steps(len(dates), time_steps) if keep else []
    names = meta.get("series_channels", [])
    return {
        "format": "landforge-change-model/1",
        "size": meta["size"],
        "gsd": meta.get("gsd"),
        "classes": meta["classes"],
        "colours": meta.get("colours"),
        "footprint_scale": meta.get("footprint_scale", 5.0),
        "series_res": meta.get("series_res", 10.0),
        "series_channels": [names[i] for i in keep],
        "series_channel_index": keep,
        "time_steps": len(steps),
        "series_mean": [meta["series_mean"][i] for i in keep] if keep else [],
        "series_std": [meta["series_std"][i] for i in keep] if keep else [],
        "series_dates": [dates[i] for i in steps],
    }


def _write_json(path: Path, obj: Any) -> None:
    from landforge.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def read_series_card(checkpoint: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``model.change.json`` beside a checkpoint (InputError when missing)."""
    from landforge.models.checkpoint import checkpoint_paths

    weights, _ = checkpoint_paths(checkpoint)
    if not weights.exists():  # name the checkpoint, not its missing sidecar
        raise InputError(weights, "checkpoint weights do not exist")
    p = weights.with_name(weights.stem + ".change.json")
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        raise InputError(
            p, "no change-model card beside the checkpoint (train with 'landforge change train')"
        ) from None
