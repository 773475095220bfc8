"""Cross-domain evaluation (FUSU Table 4 design) and a CBST self-training baseline.

For every region A a model is trained on A's chip store (or an existing checkpoint is
reused) and scored on every region B's test split (val when a store has no test
chips): the matrix ``trained on x tested on`` shows how far a model carries. The
diagonal is the in-domain score.

Unsupervised domain adaptation baseline: class-balanced self-training (CBST; Zou, Yu,
Kumar & Wang, "Unsupervised Domain Adaptation for Semantic Segmentation via
Class-Balanced Self-Training", ECCV 2018). Starting from the model trained on the source
S, each round

1. predicts the target T's *training* chips (no target label is read; only their
   nodata mask),
2. for every class k takes the softmax maximum of the pixels predicted as k and sets
   the class threshold so that the most confident share ``p`` of them pass (the
   ``1 - p`` quantile, numpy's linear interpolation); ``p`` starts at ``p_start``
   (20 %) and grows by ``p_step`` (5 %) per round up to ``p_max`` (50 %), the paper's
   self-paced schedule. The per-class threshold keeps rare classes in the pseudo
   labels, which a single global threshold would drown,
3. pseudo-labels pixels whose confidence reaches their class threshold and ignores the
   others (-100),
4. fine-tunes on the source training chips plus the pseudo-labelled target chips for
   ``epochs`` epochs.

Source and target chips are normalised with the source model's statistics (the model
card's mean/std), as prediction would do. The adapted model (``A→B CBST``) is scored
on every region like the others and gets its own row of the matrix. CBST needs one
multi-class head (e.g. ``use`` with classes ``[background, residential, ...]``).

Config (:class:`~landforge.training.options.CrossDomainConfig`; YAML, unknown fields
refused)::

    out: runs/cross_domain
    regions: {wuhan: chips/wuhan, shenzhen: chips/shenzhen}
    base: {model_kwargs: {encoder: resnet18}, epochs: 10, heads: {...}}
    models: {wuhan: runs/old/model.safetensors}   # optional: reuse instead of training
    eval_split: test
    cbst: {pairs: [[wuhan, shenzhen]], rounds: 2, epochs: 2}

Outputs: ``OUT/source/<A>/`` (training runs), ``OUT/cbst/<A>_to_<B>/model.*``,
``OUT/cross_domain.json`` and ``OUT/cross_domain.md``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from landforge.training.losses import IGNORE_INDEX
from landforge.training.options import (
    CBSTConfig,
    CrossDomainConfig,
    HeadConfig,
    TrainConfig,
    cbst_head,
)

__all__ = [
    "run_cross_domain",
    "cbst_thresholds",
    "cbst_pseudo_labels",
    "cbst_adapt",
    "cbst_portion",
]

_MAX_CONF_SAMPLE = 2_000_000  # confidences kept per class for the quantile


# ----------------------------------------------------------------------------- CBST core


def cbst_portion(round_index: int, p_start: float, p_step: float, p_max: float) -> float:
    """Portion of each class's pixels pseudo-labelled in round ``round_index`` (0-based)."""
    return min(p_start + round_index * p_step, p_max)


def cbst_thresholds(
    confidence: np.ndarray, pred: np.ndarray, n_classes: int, portion: float
) -> np.ndarray:
    """Per-class thresholds keeping the most confident ``portion`` of each class.

    Args:
        confidence: softmax maximum of each pixel (any shape).
        pred: predicted class of each pixel (same shape); pixels < 0 are skipped.
        n_classes: K.
        portion: share (0, 1] of each class's predicted pixels to keep.

    Returns:
        ``(K,)`` thresholds: the ``1 - portion`` quantile (linear interpolation) of the
        confidences of the pixels predicted as k; ``inf`` for a class never predicted.
    """
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    pr = np.asarray(pred).ravel()
    out = np.full(n_classes, np.inf)
    for k in range(n_classes):
        ck = conf[pr == k]
        if ck.size:
            out[k] = float(np.quantile(ck, 1.0 - portion))
    return out


def cbst_pseudo_labels(
    confidence: np.ndarray,
    pred: np.ndarray,
    thresholds: np.ndarray,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """``pred`` where the confidence reaches its class threshold, ``ignore_index`` else."""
    pred = np.asarray(pred)
    ok = (pred >= 0) & (np.asarray(confidence) >= np.asarray(thresholds)[np.clip(pred, 0, None)])
    return np.where(ok, pred, ignore_index).astype(np.int64)


class _Select(Dataset):
    """Items of ``ds`` restricted to ``keys``."""

    def __init__(self, ds: Any, keys: Sequence[str]) -> None:
        self.ds, self.keys = ds, list(keys)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.ds[i]
        return {k: item[k] for k in self.keys}


class _Pseudo(Dataset):
    """Target chips with pseudo labels (raw label values, ``IGNORE_INDEX`` elsewhere)."""

    def __init__(self, ds: Any, label: str, pseudo: list[np.ndarray], augment: bool) -> None:
        self.ds, self.label, self.pseudo, self.augment = ds, label, pseudo, augment

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from landforge.training.augment import random_dihedral

        item = {
            "image": self.ds[i]["image"],
            self.label: torch.from_numpy(self.pseudo[i].astype(np.int64)),
        }
        return random_dihedral(item) if self.augment else item


def _predict(
    model: torch.nn.Module, ds: Any, name: str, label: str, batch_size: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per chip: softmax maximum (float32) and argmax (-1 on nodata) of head ``name``."""
    from torch.utils.data import DataLoader

    confs: list[np.ndarray] = []
    preds: list[np.ndarray] = []
    model.eval()
    with torch.no_grad():
        for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
            prob = torch.softmax(model(batch["image"])[name].float(), dim=1)
            conf, pred = prob.max(dim=1)
            pred = pred.masked_fill(batch[label] == IGNORE_INDEX, -1)  # nodata only
            confs.extend(conf.numpy())
            preds.extend(pred.numpy())
    return confs, preds


def cbst_adapt(
    model: torch.nn.Module,
    card: Any,
    source_store: str | os.PathLike[str],
    target_store: str | os.PathLike[str],
    train_cfg: TrainConfig,
    cbst: CBSTConfig,
) -> tuple[torch.nn.Module, list[dict[str, Any]]]:
    """Adapt ``model`` (trained on the source) to the target by CBST; see module doc.

    Args:
        model: the source model (not changed: a copy is adapted).
        card: its model card (bands, mean/std for both stores).
        source_store: the source chip store (its ``train_cfg.train_split`` is used).
        target_store: the target chip store (likewise; its labels are never read).
        train_cfg: the source training config (heads, optimiser, batch size, seed).
        cbst: CBST settings.

    Returns:
        The adapted model (on the CPU, eval mode) and one record per round
        (``portion``, ``thresholds``, ``pseudo_fraction``: share of valid target pixels
        pseudo-labelled).

    Raises:
        OptionError: not exactly one multi-class head.
        InputError: bands that differ, an empty split.
    """
    from torch.utils.data import ConcatDataset

    from landforge.datasets.chips import ChipDataset
    from landforge.training.evaluate_store import card_dataset

    name, head = cbst_head(train_cfg.heads)
    target = card_dataset(target_store, train_cfg.train_split, card)
    source = _Select(
        ChipDataset(
            source_store,
            train_cfg.train_split,
            augment=train_cfg.augment,
            mean_std=(card.mean, card.std),
        ),
        ["image", head.label],
    )
    model = copy.deepcopy(model).cpu()
    rng = np.random.default_rng(train_cfg.seed)
    rounds: list[dict[str, Any]] = []
    for r in range(cbst.rounds):
        portion = cbst_portion(r, cbst.p_start, cbst.p_step, cbst.p_max)
        pseudo, record = _pseudo_label_round(model, target, name, head, train_cfg, portion, rng)
        rounds.append({"round": r + 1, **record})
        data = ConcatDataset([source, _Pseudo(target, head.label, pseudo, train_cfg.augment)])
        model = _fine_tune(model, data, {name: head}, train_cfg, cbst, r)
    model.eval()
    return model, rounds


def _pseudo_label_round(
    model: torch.nn.Module,
    target: Any,
    name: str,
    head: HeadConfig,
    train_cfg: TrainConfig,
    portion: float,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Pseudo labels (raw label values) of the target chips for one CBST round."""
    values = np.asarray(head.label_values(), dtype=np.int64)
    confs, preds = _predict(model, target, name, head.label, train_cfg.batch_size)
    conf_all = np.concatenate([c.ravel() for c in confs])
    pred_all = np.concatenate([p.ravel() for p in preds])
    if conf_all.size > _MAX_CONF_SAMPLE * len(values):
        take = rng.choice(conf_all.size, _MAX_CONF_SAMPLE * len(values), replace=False)
        conf_all, pred_all = conf_all[take], pred_all[take]
    thresholds = cbst_thresholds(conf_all, pred_all, len(values), portion)
    pseudo = []
    kept = valid = 0
    for c, p in zip(confs, preds, strict=True):
        cls = cbst_pseudo_labels(c, p, thresholds)
        kept += int((cls >= 0).sum())
        valid += int((p >= 0).sum())
        raw = np.where(cls >= 0, values[np.clip(cls, 0, None)], IGNORE_INDEX)
        pseudo.append(raw.astype(np.int16 if np.abs(values).max() < 30000 else np.int64))
    record = {
        "portion": portion,
        "thresholds": [None if not np.isfinite(t) else float(t) for t in thresholds],
        "pseudo_fraction": kept / valid if valid else 0.0,
    }
    return pseudo, record


def _fine_tune(
    model: torch.nn.Module,
    data: Dataset,
    heads: dict[str, HeadConfig],
    train_cfg: TrainConfig,
    cbst: CBSTConfig,
    round_index: int,
) -> torch.nn.Module:
    """Fine-tune on ``data``: the source chips plus the pseudo-labelled target chips."""
    import lightning as L
    from torch.utils.data import DataLoader

    from landforge.progress import is_quiet
    from landforge.training.module import SegmentationTask
    from landforge.training.train import _quiet_lightning

    loader = DataLoader(
        data,
        batch_size=train_cfg.batch_size,
        shuffle=True,
        drop_last=len(data) > train_cfg.batch_size,
        num_workers=train_cfg.num_workers,
        generator=torch.Generator().manual_seed(train_cfg.seed + round_index),
    )
    steps = cbst.epochs * max(1, len(loader))
    if cbst.max_steps is not None:
        steps = min(steps, cbst.max_steps)
    # _predict left the model in eval mode; Lightning keeps a module's mode, so
    # without this BatchNorm would not adapt its statistics to the target
    model.train()
    task = SegmentationTask(
        model,
        heads,
        train_cfg,
        total_steps=steps,
        lr=cbst.lr if cbst.lr is not None else train_cfg.lr,
        channels_last=False,
    )
    quiet = is_quiet()
    with _quiet_lightning(True):
        trainer = L.Trainer(
            accelerator="cpu" if train_cfg.accelerator == "cpu" else "auto",
            devices=1,
            max_epochs=cbst.epochs,
            max_steps=steps,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=not quiet,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
        )
        trainer.fit(task, train_dataloaders=loader)
    return task.model.cpu()


# ----------------------------------------------------------------------------- driver


def run_cross_domain(
    cfg: CrossDomainConfig | Mapping[str, Any] | None = None, **overrides: Any
) -> Path:
    """Train (or reuse) a model per region, score each on every region, run CBST.

    ``cfg`` is a :class:`~landforge.training.options.CrossDomainConfig` (or a mapping
    of its fields); ``overrides`` replace its fields.

    Returns:
        ``OUT/cross_domain.json``.
    """
    from landforge.datasets.chips import read_meta
    from landforge.training.evaluate_store import pick_eval_head, store_eval_split

    cfg = CrossDomainConfig.build(cfg, **overrides)
    out = Path(cfg.out)
    regions = list(cfg.regions)
    head_name, head, mask = pick_eval_head(cfg.base.heads, cfg.eval_head)
    splits = {}
    for r in regions:
        read_meta(cfg.regions[r])
        splits[r] = store_eval_split(cfg.regions[r], cfg.eval_split)
    scorer = _Scorer(cfg, splits, head_name, head, mask)
    rows, sources = _source_rows(cfg, out, scorer)
    rows += _cbst_rows(cfg, out, scorer, sources)
    return _write_report(cfg, out, head_name, rows)


class _Scorer:
    """Scores a model on every region's evaluation split."""

    def __init__(
        self,
        cfg: CrossDomainConfig,
        splits: dict[str, str],
        head_name: str,
        head: HeadConfig,
        mask: HeadConfig | None,
    ) -> None:
        self.cfg, self.splits = cfg, splits
        self.head_name, self.head, self.mask = head_name, head, mask

    def __call__(self, model: torch.nn.Module, card: Any) -> dict[str, Any]:
        from landforge.training.evaluate_store import evaluate_on_store, headline

        results = {}
        for r, split in self.splits.items():
            cm = evaluate_on_store(
                model, card, self.cfg.regions[r], split, self.head, self.head_name, self.mask
            )
            results[r] = {**headline(cm), "split": split}
        return results


def _source_rows(
    cfg: CrossDomainConfig, out: Path, score: _Scorer
) -> tuple[list[dict[str, Any]], dict[str, tuple[torch.nn.Module, Any]]]:
    """One row per region: its model (trained here or reused) scored everywhere."""
    from landforge.models.checkpoint import load_checkpoint
    from landforge.training.train import _checkpoint_file, train

    rows: list[dict[str, Any]] = []
    sources: dict[str, tuple[torch.nn.Module, Any]] = {}
    for region in cfg.regions:
        if region in cfg.models:
            weights = _checkpoint_file(cfg.models[region])
        else:
            weights = train(cfg.train_config(region, out / "source" / region))
        model, card = load_checkpoint(weights)
        sources[region] = (model, card)
        rows.append(
            {
                "name": region,
                "kind": "source",
                "trained_on": region,
                "model": str(weights),
                "results": score(model, card),
            }
        )
    return rows, sources


def _cbst_rows(
    cfg: CrossDomainConfig,
    out: Path,
    score: _Scorer,
    sources: dict[str, tuple[torch.nn.Module, Any]],
) -> list[dict[str, Any]]:
    """One row per CBST pair: the source model adapted to the target, scored everywhere."""
    from landforge.models.checkpoint import save_checkpoint

    rows = []
    for s, t in cfg.cbst_pairs():
        assert cfg.cbst is not None
        model, card = sources[s]
        adapted, rounds = cbst_adapt(
            model,
            card,
            cfg.regions[s],
            cfg.regions[t],
            cfg.train_config(s, out / "source" / s),
            cfg.cbst,
        )
        new_card = card.model_copy(
            update={
                "metrics": {},
                "notes": f"CBST {s} -> {t}, {cfg.cbst.rounds} rounds; from {card.notes or ''}",
            }
        )
        weights = save_checkpoint(adapted, new_card, out / "cbst" / f"{s}_to_{t}" / "model")
        rows.append(
            {
                "name": f"{s}→{t} CBST",
                "kind": "cbst",
                "trained_on": s,
                "adapted_to": t,
                "model": str(weights),
                "rounds": rounds,
                "results": score(adapted, new_card),
            }
        )
    return rows


def _write_report(
    cfg: CrossDomainConfig, out: Path, head_name: str, rows: list[dict[str, Any]]
) -> Path:
    """``cross_domain.json`` and ``cross_domain.md``; returns the JSON path."""
    from landforge.io.atomic import atomic_path
    from landforge.training.sequence import markdown_matrix

    regions = list(cfg.regions)
    report = {
        "regions": regions,
        "head": head_name,
        "eval_split": cfg.eval_split,
        "rows": rows,
        "row_names": [r["name"] for r in rows],
        "matrix": {
            m: [[row["results"][c][m] for c in regions] for row in rows]
            for m in ("oa", "miou", "kappa")
        },
    }
    path = out / "cross_domain.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    md = markdown_matrix(
        "trained on \\ tested on",
        [r["name"] for r in rows],
        regions,
        [[row["results"][c] for c in regions] for row in rows],
        metrics=("oa", "miou"),
    )
    with atomic_path(out / "cross_domain.md") as tmp:
        tmp.write_text(
            f"# Cross-domain matrix ({head_name}, {cfg.eval_split} split)\n\n"
            "Cells: OA / mIoU. Rows: the model (trained on a region, or adapted by CBST "
            "from a source to a target); columns: the region tested.\n\n" + md
        )
    return path
