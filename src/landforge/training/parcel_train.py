"""Train, evaluate and apply the parcel classifier (MSLU-100K's multi-source model).

:func:`train_parcel_classifier`: parcel samples in, a safetensors checkpoint + model card,
the split, and test metrics (OA, kappa, per-class precision / recall / F1, confusion
matrix, beside the majority baseline) out. Parcels are split by spatial blocks
(:func:`~landforge.datasets.splits.block_split`, stratified by class); normalisation
statistics come from the training split only; the weights kept are those of the epoch
with the lowest validation loss. The optimiser follows the paper: Adam, learning rate
``lr`` (0.01) decaying exponentially per step to ``lr_min`` (0.0001), batch 8.

:func:`predict_parcel_probs` gives (n, k) class probabilities; :func:`predict_classes`
the per-parcel GeoDataFrame the grading reads (``parcels predict-classes``), in-sample
or out-of-fold (``folds``).

Output directory of training::

    OUT/model.safetensors, OUT/model.json   checkpoint (landforge.models.checkpoint)
    OUT/split.parquet                       parcel id, split (train/val/test), gold flag
    OUT/metrics.json                        test metrics + majority baseline
    OUT/train_config.json                   the options
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from landforge.datasets.parcel_dataset import ParcelDataset, normalisation_stats
from landforge.errors import InputError, OptionError
from landforge.models.checkpoint import ModelCard, load_checkpoint, save_checkpoint
from landforge.parcels.samples import ParcelSamples, read_parcel_samples
from landforge.training.parcel_options import ParcelPredictOptions, ParcelTrainOptions

__all__ = [
    "ParcelTrainResult",
    "evaluate_probs",
    "predict_classes",
    "predict_parcel_probs",
    "train_parcel_classifier",
]

_CONFIG = "train_config.json"


@dataclass
class ParcelTrainResult:
    """What :func:`train_parcel_classifier` made."""

    model: nn.Module
    classes: list[str]
    split: pd.Series  # subset name per parcel row ("" for unlabelled parcels)
    metrics: dict[str, Any]
    checkpoint: Path | None


class _Task(L.LightningModule):
    """Cross-entropy on the ``label`` logits; Adam with per-step exponential decay."""

    def __init__(self, model: nn.Module, o: ParcelTrainOptions, total_steps: int) -> None:
        super().__init__()
        self.model = model
        self.o = o
        self.total_steps = max(total_steps, 1)
        self.loss = nn.CrossEntropyLoss()

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return _logits(self.model, batch)

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.loss(self(batch), batch["label"])
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["label"]))
        return loss

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch)
        loss = self.loss(logits, batch["label"])
        acc = (logits.argmax(1) == batch["label"]).float().mean()
        n = len(batch["label"])
        self.log("val/loss", loss, on_epoch=True, batch_size=n)
        self.log("val/acc", acc, on_epoch=True, batch_size=n)

    def configure_optimizers(self) -> Any:
        opt = torch.optim.Adam(
            self.model.parameters(), lr=self.o.lr, weight_decay=self.o.weight_decay
        )
        ratio = self.o.lr_min / self.o.lr
        # lr * (lr_min / lr) ** (step / total): 0.01 at the start, 0.0001 at the end
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: ratio ** min(step / self.total_steps, 1.0)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class _BestWeights(Callback):
    """Keep a copy of the weights with the lowest validation loss."""

    def __init__(self) -> None:
        self.best = math.inf
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        loss = trainer.callback_metrics.get("val/loss")
        if loss is not None and float(loss) < self.best:
            self.best = float(loss)
            self.state = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}


def _logits(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The ``label`` logits of the fusion model."""
    return model(batch)["label"]


def _build_model(o: ParcelTrainOptions, data: ParcelDataset) -> tuple[nn.Module, dict[str, Any]]:
    from landforge.models.parcel_fusion import ParcelFusion

    mods = list(o.modalities)
    if "poi" in mods and data.samples.poi.shape[1] == 0:
        raise OptionError("modalities", "the samples have no POI features: drop poi")
    frame = data.samples.frame
    for m in ("image", "population"):
        if m in mods and not frame[f"has_{m}"].to_numpy(bool).any():
            raise OptionError("modalities", f"no parcel of the samples has {m} data: drop {m}")
    kwargs: dict[str, Any] = {
        "classes": len(data.classes),
        "in_channels": int(data.patch_shape[0]),
        "poi_features": int(data.samples.poi.shape[1]),
        "modalities": mods,
        "backbone": o.backbone,
        "backbone_kwargs": dict(o.backbone_kwargs),
        "embed_dim": o.embed_dim,
        "inception_nf": o.inception_nf,
        "inception_depth": o.inception_depth,
    }
    return ParcelFusion(**kwargs), kwargs


def _set_stats(model: nn.Module, data: ParcelDataset) -> dict[str, list[float]]:
    stats = normalisation_stats(data)
    setter = getattr(model, "set_normalisation", None)
    if callable(setter):
        setter(**{k: v for k, v in stats.items() if hasattr(model, k)})
    return {k: [float(x) for x in np.ravel(v)] for k, v in stats.items()}


def _fit(
    data: ParcelDataset,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    o: ParcelTrainOptions,
    log_dir: Path | None = None,
) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """Train one model on ``train_rows``; returns (model, model kwargs, info)."""
    from landforge.progress import is_quiet
    from landforge.training.train import _quiet_lightning

    if len(train_rows) == 0:
        raise InputError("samples", "no labelled parcels in the training split")
    L.seed_everything(o.seed, workers=True, verbose=False)
    model, kwargs = _build_model(o, data)
    train = data.subset(train_rows)
    stats = _set_stats(model, train)
    g = torch.Generator().manual_seed(o.seed)
    loader = DataLoader(
        train,
        batch_size=o.batch_size,
        shuffle=True,
        generator=g,
        num_workers=o.num_workers,
        drop_last=len(train) > o.batch_size,  # no batch of one (batch norm)
    )
    val_loader = (
        DataLoader(data.subset(val_rows), batch_size=max(o.batch_size, 32))
        if len(val_rows)
        else None
    )
    task = _Task(model, o, total_steps=o.epochs * len(loader))
    best = _BestWeights()
    quiet = is_quiet() or log_dir is None
    with _quiet_lightning(True):
        trainer = L.Trainer(
            accelerator=o.accelerator,
            devices=1,
            max_epochs=o.epochs,
            max_time=dt.timedelta(minutes=o.max_minutes) if o.max_minutes else None,
            logger=False,
            enable_checkpointing=False,
            callbacks=[best],
            num_sanity_val_steps=0,
            enable_progress_bar=not quiet,
            enable_model_summary=False,
            default_root_dir=log_dir,
            log_every_n_steps=max(1, min(50, len(loader))),
        )
        trainer.fit(task, train_dataloaders=loader, val_dataloaders=val_loader)
    if best.state is not None:
        model.load_state_dict(best.state)
    model.eval()
    info = {"stats": stats, "best_val_loss": best.best if best.state else None}
    info["epochs"] = int(trainer.current_epoch)
    return model, kwargs, info


@torch.no_grad()
def predict_parcel_probs(
    model: nn.Module, dataset: ParcelDataset, batch_size: int = 32
) -> np.ndarray:
    """(n, k) class probabilities (softmax) of ``dataset``'s parcels, in its order."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for batch in DataLoader(dataset, batch_size=batch_size):
        batch = {k: v.to(device) for k, v in batch.items()}
        out.append(torch.softmax(_logits(model, batch).float(), dim=1).cpu().numpy())
    k = len(dataset.classes)
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, k))


def evaluate_probs(
    probs: np.ndarray, targets: np.ndarray, classes: list[str], baseline_class: int
) -> dict[str, Any]:
    """OA, kappa, per-class P/R/F1 and confusion matrix, beside the majority baseline."""
    from landforge.config import jsonable
    from landforge.evaluation.confusion import ConfusionMatrix

    labels = list(range(len(classes)))
    cm = ConfusionMatrix(labels=labels, names=classes).update(targets, probs.argmax(axis=1))
    base = ConfusionMatrix(labels=labels, names=classes).update(
        targets, np.full(len(targets), baseline_class)
    )
    return jsonable(
        {
            "n": int(len(targets)),
            "metrics": cm.summary(task="parcel classification"),
            "majority_baseline": {
                "class": classes[baseline_class],
                "oa": base.overall_accuracy(),
                "kappa": base.kappa(),
            },
        }
    )


def _split(data: ParcelDataset, o: ParcelTrainOptions) -> pd.Series:
    """Subset per parcel row: spatial blocks stratified by class; unlabelled ones ''."""
    from landforge.datasets.splits import block_split

    frame = data.samples.frame
    labelled = data.targets >= 0
    out = pd.Series([""] * len(frame), index=frame.index, dtype=object, name="split")
    if not labelled.any():
        raise InputError("samples", "no parcel has a label of the classes (label_col, classes)")
    sub = frame[labelled].copy()
    out[labelled] = block_split(
        sub, ratios=dict(o.ratios), block_size_m=o.block_size_m, strata_col="label", seed=o.seed
    ).to_numpy()
    return out


def _gold(data: ParcelDataset, test_rows: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """A class-balanced subset of the test rows: at most ``per_class`` of each class."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in range(len(data.classes)):
        rows = test_rows[data.targets[test_rows] == c]
        keep.append(rng.choice(rows, min(per_class, len(rows)), replace=False))
    return np.sort(np.concatenate(keep)) if keep else test_rows[:0]


def _dataset(samples: ParcelSamples | str | os.PathLike[str], classes: Any) -> ParcelDataset:
    s = samples if isinstance(samples, ParcelSamples) else read_parcel_samples(samples)
    if "label" not in s.frame:
        raise InputError("samples", "the samples have no labels (make them with label_col)")
    return ParcelDataset(s, classes)


def train_parcel_classifier(
    samples: ParcelSamples | str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    opts: ParcelTrainOptions | None = None,
    **overrides: Any,
) -> ParcelTrainResult:
    """Train on the training blocks, keep the best validation epoch, score the test blocks.

    Args:
        samples: a samples directory or :class:`ParcelSamples` with labels.
        out: output directory (None: nothing is written).
        opts: :class:`~landforge.training.parcel_options.ParcelTrainOptions`.
        **overrides: fields of ``opts``.

    Raises:
        InputError: samples without labels, or an empty training split.
        OptionError: a bad option (e.g. a POI branch for samples without POI features).
    """
    o = ParcelTrainOptions.build(opts, **overrides)
    data = _dataset(samples, o.classes)
    split = _split(data, o)
    rows = {name: np.flatnonzero(split.to_numpy() == name) for name in ("train", "val", "test")}
    model, kwargs, info = _fit(data, rows["train"], rows["val"], o, Path(out) if out else None)
    test_rows = rows["test"]
    gold = _gold(data, test_rows, o.gold_per_class, o.seed) if o.gold_per_class else test_rows
    counts = np.bincount(data.targets[rows["train"]], minlength=len(data.classes))
    metrics: dict[str, Any] = {
        "classes": data.classes,
        "split_sizes": {k: int(len(v)) for k, v in rows.items()},
        "epochs": info["epochs"],
        "best_val_loss": info["best_val_loss"],
        "options": o.model_dump(mode="json"),
    }
    if len(gold):
        probs = predict_parcel_probs(model, data.subset(gold))
        metrics["test"] = evaluate_probs(
            probs, data.targets[gold], data.classes, int(counts.argmax())
        )
        metrics["test"]["gold_per_class"] = o.gold_per_class
    ckpt = _write_run(out, model, kwargs, info, data, split, gold, metrics, o) if out else None
    return ParcelTrainResult(model, data.classes, split, metrics, ckpt)


def _write_run(
    out: str | os.PathLike[str],
    model: nn.Module,
    kwargs: dict[str, Any],
    info: dict[str, Any],
    data: ParcelDataset,
    split: pd.Series,
    gold: np.ndarray,
    metrics: dict[str, Any],
    o: ParcelTrainOptions,
) -> Path:
    from landforge.config import jsonable
    from landforge.io.atomic import atomic_path, ensure_dir

    d = ensure_dir(out)
    meta = data.samples.meta
    stats = info["stats"]
    test = metrics.get("test", {}).get("metrics", {})
    from landforge.models.parcel_fusion import MODEL_NAME

    card = ModelCard(
        model=MODEL_NAME,
        model_kwargs=kwargs,
        bands=list(meta.get("bands", [])),
        mean=stats.get("image_mean", []),
        std=stats.get("image_std", []),
        heads={"label": list(data.classes)},
        gsd_m=meta.get("gsd_m"),
        metrics={
            k: float(test[k])
            for k in ("overall_accuracy", "kappa")
            if isinstance(test.get(k), float)
        },
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        notes="parcel classifier; image/POI/series normalisation from the training split, "
        "stored in the weights; POI columns: " + ",".join(meta.get("poi_columns", [])),
    )
    ckpt = save_checkpoint(model, card, d / "model")
    frame = data.samples.frame
    id_col = meta.get("id_col", "parcel_id")
    table = pd.DataFrame({id_col: frame[id_col].to_numpy(), "split": split.to_numpy()})
    table["gold"] = False
    table.loc[gold, "gold"] = True
    with atomic_path(d / "split.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(d / "metrics.json") as tmp:
        tmp.write_text(json.dumps(jsonable(metrics), indent=2) + "\n")
    with atomic_path(d / _CONFIG) as tmp:
        tmp.write_text(json.dumps(o.model_dump(mode="json"), indent=2) + "\n")
    return ckpt


def predict_classes(
    samples: ParcelSamples | str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    opts: ParcelPredictOptions | None = None,
    **overrides: Any,
) -> Any:
    """Per-parcel class probabilities as a GeoDataFrame (the grading's input).

    Columns: the id column, ``label`` (when known), ``pred``, ``prob_<class>`` (one per
    class, in the model's class order, summing to 1), ``has_image``, ``has_poi``,
    ``has_population``, ``area_m2``, ``fold`` (-1 without cross-fitting), geometry.

    With ``folds=K`` the parcels are cut into K groups of spatial blocks and each group
    gets the probabilities of a model trained (with the options in the model's
    ``train_config.json``) on the other groups: out-of-fold, not in-sample.

    Raises:
        InputError: a missing checkpoint, or ``folds`` without the training options.
    """
    from landforge.models.checkpoint import checkpoint_paths

    o = ParcelPredictOptions.build(opts, **overrides)
    s = samples if isinstance(samples, ParcelSamples) else read_parcel_samples(samples)
    from landforge.models.parcel_fusion import MODEL_NAME

    model, card = load_checkpoint(model_path)
    if card.model != MODEL_NAME:
        raise InputError(
            checkpoint_paths(model_path)[0],
            f"a {card.model!r} checkpoint, not a parcel classifier ('landforge parcels train')",
        )
    classes = list(card.heads.get("label", []))
    data = ParcelDataset(s, classes)
    fold = np.full(len(data), -1, np.int64)
    if o.folds:
        config = checkpoint_paths(model_path)[0].parent / _CONFIG
        if not config.is_file():
            raise InputError(config, "out-of-fold prediction needs the model's training options")
        t = ParcelTrainOptions.model_validate(json.loads(config.read_text()))
        t = ParcelTrainOptions.build(t, classes=classes)
        probs, fold = _out_of_fold(data, t, o.folds)
    else:
        probs = predict_parcel_probs(model, data, o.batch_size)
    return _prediction_frame(s, classes, probs, fold)


def _out_of_fold(
    data: ParcelDataset, o: ParcelTrainOptions, k: int
) -> tuple[np.ndarray, np.ndarray]:
    from landforge.datasets.splits import assign_blocks, feature_blocks

    frame = data.samples.frame
    blocks = feature_blocks(frame, o.block_size_m)
    codes, uniques = pd.factorize(blocks, sort=True)
    if len(uniques) < k:
        raise OptionError("folds", f"{k} folds but only {len(uniques)} spatial blocks")
    names = assign_blocks(np.bincount(codes), {f"f{i}": 1.0 / k for i in range(k)}, o.seed)
    fold = np.array([int(n[1:]) for n in names[codes]])
    probs = np.zeros((len(data), len(data.classes)))
    labelled = data.targets >= 0
    for f in range(k):
        rest = np.flatnonzero((fold != f) & labelled)
        inner = pd.Series(
            assign_blocks(
                np.bincount(codes[rest], minlength=len(uniques)),
                {"train": 0.8, "val": 0.2},
                o.seed + f + 1,
            )
        )
        is_val = inner.to_numpy()[codes[rest]] == "val"
        model, _, _ = _fit(data, rest[~is_val], rest[is_val], o)
        held = np.flatnonzero(fold == f)
        probs[held] = predict_parcel_probs(model, data.subset(held))
    return probs, fold


def _prediction_frame(
    s: ParcelSamples, classes: list[str], probs: np.ndarray, fold: np.ndarray
) -> Any:
    import geopandas as gpd

    frame = s.frame
    id_col = s.meta.get("id_col", "parcel_id")
    out = gpd.GeoDataFrame(
        {id_col: frame[id_col].to_numpy()}, geometry=frame.geometry.values, crs=frame.crs
    )
    out["label"] = frame["label"].to_numpy() if "label" in frame else None
    out["pred"] = np.asarray(classes, dtype=object)[probs.argmax(axis=1)] if len(probs) else []
    for j, c in enumerate(classes):
        out[f"prob_{c}"] = probs[:, j]
    for m in ("has_image", "has_poi", "has_population", "area_m2"):
        out[m] = frame[m].to_numpy()
    out["fold"] = fold
    return out
