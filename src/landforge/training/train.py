"""``train(cfg)``: a chip store in, a safetensors checkpoint + model card out.

One Lightning run: seeded, time-budgeted (``max_minutes`` stops cleanly mid-epoch),
early-stopped on the validation loss, logged as CSV in the output directory, resumable
from the run's own ``checkpoints/last.ckpt``. The weights kept are those of the epoch
with the lowest validation loss (the last ones when there is no validation split); the
model card records the store's bands and normalisation, the heads and their classes, the
training-data hash and the validation metrics of those weights.

Output directory::

    OUT/model.safetensors, OUT/model.json   the checkpoint (landforge.models.checkpoint)
    OUT/logs/version_N/metrics.csv          Lightning CSV log (one version per run/resume)
    OUT/train_config.json                   the resolved configuration
    OUT/checkpoints/last.ckpt               Lightning state for --resume
"""

from __future__ import annotations

# Importing this module runs landforge/__init__ first, which installs the torchvision
# shim (landforge._compat) before Lightning pulls torchvision in through torchmetrics.
import contextlib
import datetime as dt
import hashlib
import logging
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from landforge.errors import InputError
from landforge.models.checkpoint import ModelCard, save_checkpoint
from landforge.training.config import TrainConfig

__all__ = [
    "train",
    "training_data_hash",
    "find_resume_checkpoint",
    "init_from_checkpoint",
    "FreezeEncoder",
]

log = logging.getLogger(__name__)

_MARKER = "train_config.json"


def training_data_hash(store_dir: str | os.PathLike[str]) -> str:
    """sha256 over ``index.parquet`` then ``stats.json`` of a chip store."""
    h = hashlib.sha256()
    for name in ("index.parquet", "stats.json"):
        with open(Path(store_dir) / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def find_resume_checkpoint(path: str | os.PathLike[str]) -> Path:
    """``last.ckpt`` of an earlier ``landforge train`` run (its out dir or checkpoints/).

    Only checkpoints inside a directory that ``landforge train`` wrote (it holds our
    ``train_config.json``) are accepted: a Lightning ``.ckpt`` is a pickle, so it must
    come from a run of this user, not from elsewhere.
    """
    p = Path(path)
    if p.is_file() and p.suffix == ".ckpt":
        ckpt, run = p, p.parent.parent
    else:
        run = p.parent if p.name == "checkpoints" else p
        ckpt = run / "checkpoints" / "last.ckpt"
    if not (run / _MARKER).is_file():
        raise InputError(p, "not a landforge training directory (no train_config.json)")
    if not ckpt.is_file():
        raise InputError(p, "no checkpoints/last.ckpt to resume from")
    return ckpt


def train(cfg: TrainConfig) -> Path:
    """Train ``cfg.model`` on the chip store ``cfg.chips``; returns OUT/model.safetensors.

    Raises:
        InputError: a missing chip store, an empty training split, a head naming a label
            the store lacks, or a model option the builder refuses.
    """
    from landforge.datasets.chips import ChipDataset, read_meta, read_stats
    from landforge.models.registry import build
    from landforge.progress import is_quiet
    from landforge.training.module import SegmentationTask

    stats = read_stats(cfg.chips)
    meta = read_meta(cfg.chips)
    for name, head in cfg.heads.items():
        if head.label not in meta["label_names"]:
            raise InputError(
                f"heads.{name}.label",
                f"chip store {cfg.chips} has no label {head.label!r} "
                f"(labels: {', '.join(meta['label_names'])})",
            )
    resume_ckpt = find_resume_checkpoint(cfg.resume) if cfg.resume is not None else None

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    train_ds = ChipDataset(cfg.chips, cfg.train_split, augment=cfg.augment)
    if len(train_ds) == 0:
        raise InputError(cfg.chips, f"split {cfg.train_split!r} has no chips")
    val_ds = ChipDataset(cfg.chips, cfg.val_split) if cfg.val_split else None
    if val_ds is not None and len(val_ds) == 0:
        val_ds = None

    accelerator = cfg.accelerator
    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    on_gpu = accelerator == "gpu"
    loader_kw: dict[str, Any] = {
        "batch_size": cfg.batch_size,
        "num_workers": cfg.num_workers,
        "pin_memory": on_gpu,
        "persistent_workers": cfg.num_workers > 0,
    }
    # Drop a last batch of one: BatchNorm cannot train on a single 1x1 bottleneck.
    train_loader = DataLoader(
        train_ds, shuffle=True, drop_last=len(train_ds) > cfg.batch_size, **loader_kw
    )
    val_loader = DataLoader(val_ds, shuffle=False, **loader_kw) if val_ds is not None else None

    model_kwargs = _model_kwargs(cfg, stats)
    model = build(cfg.model, **model_kwargs)
    init_note = ""
    if cfg.init is not None:
        report = init_from_checkpoint(model, cfg.init, list(stats["bands"]))
        init_note = report["note"]
        for name, head in cfg.heads.items():
            before = report["heads"].get(name)
            if before is not None and len(before) != len(head.classes):
                init_note += (
                    f"; head {name!r} has {len(head.classes)} classes, the checkpoint "
                    f"{len(before)}: re-initialised"
                )
        if report["reinitialised"]:
            log.warning("%s", init_note)
        else:
            log.info("%s", init_note)
    steps_per_epoch = max(1, len(train_loader))
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    task = SegmentationTask(
        model,
        cfg.heads,
        optimizer=cfg.optimizer,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        schedule=cfg.schedule,
        total_steps=total_steps,
        max_seconds=cfg.max_minutes * 60 if cfg.max_minutes else None,
        poly_power=cfg.poly_power,
        channels_last=cfg.channels_last,
    )

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text(cfg.model_dump_json(indent=2))
    callbacks: list[Any] = [
        _BestWeights(cfg.monitor, cfg.monitor_mode),
        ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, save_top_k=0),
    ]
    if cfg.freeze_encoder_epochs:
        freeze = FreezeEncoder(cfg.freeze_encoder_epochs)
        if not freeze.parameters(model):
            raise InputError(
                "freeze_encoder_epochs",
                f"model {cfg.model!r} has no parameter named encoder.* or backbone.*",
            )
        callbacks.append(freeze)
    if val_loader is not None and cfg.early_stopping_patience is not None:
        callbacks.append(
            EarlyStopping(
                monitor=cfg.monitor,
                patience=cfg.early_stopping_patience,
                mode=cfg.monitor_mode,
                # judged after each validation only: a resumed or time-cut epoch may
                # end without one
                check_on_train_epoch_end=False,
                strict=False,
            )
        )
    quiet = is_quiet()
    with _quiet_lightning(quiet):
        trainer = L.Trainer(
            accelerator=accelerator,
            devices=cfg.devices,
            precision=cfg.precision if on_gpu else "32-true",
            max_epochs=cfg.epochs,
            max_steps=cfg.max_steps if cfg.max_steps is not None else -1,
            max_time=dt.timedelta(minutes=cfg.max_minutes) if cfg.max_minutes else None,
            # out/logs/version_N/metrics.csv: a resumed run gets its own version, so no
            # earlier log is overwritten.
            logger=CSVLogger(save_dir=out, name="logs"),
            callbacks=callbacks,
            log_every_n_steps=min(cfg.log_every_n_steps, steps_per_epoch),
            num_sanity_val_steps=0,
            enable_progress_bar=not quiet,
            enable_model_summary=not quiet,
            default_root_dir=out,
        )
        # The .ckpt is a pickle written by this user's own earlier run (checked above);
        # weights_only=True still refuses anything but tensors and plain containers.
        trainer.fit(
            task,
            train_dataloaders=train_loader,
            val_dataloaders=val_loader,
            ckpt_path=resume_ckpt,
            weights_only=True if resume_ckpt is not None else None,
        )
        best = next(c for c in trainer.callbacks if isinstance(c, _BestWeights))
        metrics: dict[str, float] = {}
        if best.state is not None:
            task.model.load_state_dict(best.state)
            metrics = best.metrics
        elif val_loader is not None:  # the time budget ran out before the first validation
            metrics = _clean(trainer.validate(task, val_loader, verbose=False)[0])
        else:
            metrics = _clean(
                {k: v for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
            )
    metrics["steps"] = float(trainer.global_step)
    metrics["epochs"] = float(trainer.current_epoch)

    card_kwargs = dict(model_kwargs)
    if "encoder_weights" in card_kwargs:
        # The trained weights include the encoder: rebuilding from the card must not
        # need (or re-read) the initial weights file.
        card_kwargs["encoder_weights"] = None
    card = ModelCard(
        model=cfg.model,
        model_kwargs=card_kwargs,
        bands=list(stats["bands"]),
        mean=[float(v) for v in stats["mean"]],
        std=[float(v) for v in stats["std"]],
        heads={name: list(h.classes) for name, h in cfg.heads.items()},
        taxonomy=cfg.taxonomy,
        gsd_m=meta.get("gsd"),
        training_data_hash=training_data_hash(cfg.chips),
        metrics=metrics,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        notes=_notes(cfg) + (f"; {init_note}" if init_note else ""),
    )
    task.model.cpu().eval()
    if cfg.channels_last:
        task.model.to(memory_format=torch.contiguous_format)
    return save_checkpoint(task.model, card, out / "model")


def _checkpoint_file(path: str | os.PathLike[str]) -> Path:
    """The ``.safetensors`` of a landforge checkpoint given as file, stem or run dir."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.safetensors"
    if p.suffix not in ("", ".safetensors", ".json"):
        raise InputError(
            path,
            "not a landforge checkpoint (expected NAME.safetensors with its NAME.json "
            "model card; pickled .pt/.ckpt files are never loaded)",
        )
    return p.with_suffix(".safetensors")


def init_from_checkpoint(
    model: torch.nn.Module, path: str | os.PathLike[str], bands: list[str]
) -> dict[str, Any]:
    """Load the weights of a landforge checkpoint into ``model`` where they fit.

    Tensors whose name and shape match are copied; the others (a head with another class
    count, layers the checkpoint lacks) keep ``model``'s fresh initialisation. Nothing
    is unpickled: the checkpoint is safetensors + its JSON card
    (:func:`landforge.models.checkpoint.load_checkpoint`).

    Args:
        model: the freshly built model to initialise (changed in place).
        path: ``NAME.safetensors``, ``NAME.json``, the stem, or a training output dir.
        bands: input band names of the data ``model`` will see, in order.

    Returns:
        ``{"loaded", "reinitialised", "unused", "note", "heads"}``: tensor names
        loaded, tensor names of ``model`` left as initialised, tensor names of the
        checkpoint not used, a one-line summary, and the checkpoint's heads.

    Raises:
        InputError: not a landforge checkpoint, input bands that differ from ``bands``
            (naming both lists), or no tensor that fits.
    """
    from landforge.models.checkpoint import load_checkpoint

    weights = _checkpoint_file(path)
    source, card = load_checkpoint(weights)
    if list(card.bands) != list(bands):
        raise InputError(
            weights,
            f"the model was trained on bands [{', '.join(card.bands)}] but the chip store "
            f"has bands [{', '.join(bands)}]",
        )
    theirs = source.state_dict()
    mine = model.state_dict()
    loaded = [k for k, v in mine.items() if k in theirs and theirs[k].shape == v.shape]
    if not loaded:
        raise InputError(weights, f"no weight of model {card.model!r} fits the model trained")
    fresh = [k for k in mine if k not in set(loaded)]
    unused = [k for k in theirs if k not in mine or theirs[k].shape != mine[k].shape]
    with torch.no_grad():
        for k in loaded:
            mine[k].copy_(theirs[k])
    note = f"init from {weights.name}: {len(loaded)} of {len(mine)} tensors loaded"
    if fresh:
        modules = sorted({k.rsplit(".", 1)[0] for k in fresh})
        note += f"; re-initialised: {', '.join(modules)}"
    return {
        "loaded": loaded,
        "reinitialised": fresh,
        "unused": unused,
        "note": note,
        "heads": dict(card.heads),
    }


class FreezeEncoder(Callback):
    """Freeze parameters named ``encoder.*`` / ``backbone.*`` for the first N epochs.

    While frozen, those parameters get no gradient (so the optimiser leaves them as they
    are, weight decay included) and the BatchNorm layers under them stay in eval mode
    (their running statistics are not updated). From epoch N on everything trains.
    """

    PREFIXES = ("encoder.", "backbone.")

    def __init__(self, epochs: int) -> None:
        self.epochs = int(epochs)
        self.frozen = False

    def parameters(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        return [p for n, p in model.named_parameters() if n.startswith(self.PREFIXES)]

    def _norms(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        return [
            m
            for n, m in model.named_modules()
            if n.startswith(tuple(p[:-1] for p in self.PREFIXES))
            and isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.frozen = trainer.current_epoch < self.epochs
        for p in self.parameters(pl_module.model):
            p.requires_grad_(not self.frozen)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, idx: int) -> None:
        # Lightning puts the module back in train mode after validation: re-fix the
        # statistics of frozen BatchNorms before every step.
        if self.frozen:
            for m in self._norms(pl_module.model):
                m.eval()

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        for p in self.parameters(pl_module.model):
            p.requires_grad_(True)


def _no_advert(record: logging.LogRecord) -> bool:
    return "litlogger" not in str(record.msg)


@contextlib.contextmanager
def _quiet_lightning(quiet: bool) -> Iterator[None]:
    """Hush Lightning's info lines (device banner, summary) when quiet; always drop its
    cloud-logging advert and its deprecated internal call into torch's pytree, which no
    user can act on."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    rank_zero = [
        logging.getLogger(f"lightning.{n}.utilities.rank_zero") for n in ("pytorch", "fabric")
    ]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
        # A store without a validation split is allowed (the last weights are kept).
        warnings.filterwarnings("ignore", message=r".*no `val_dataloader`")
        for lg in rank_zero:
            lg.addFilter(_no_advert)
        try:
            if quiet:
                for lg in loggers:
                    lg.setLevel(logging.WARNING)
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)
            for lg in rank_zero:
                lg.removeFilter(_no_advert)


def _model_kwargs(cfg: TrainConfig, stats: dict[str, Any]) -> dict[str, Any]:
    kwargs = dict(cfg.model_kwargs)
    n_bands = len(stats["bands"])
    kwargs.setdefault("in_channels", n_bands)
    if kwargs["in_channels"] != n_bands:
        raise InputError(
            "model_kwargs.in_channels",
            f"is {kwargs['in_channels']} but the chip store has {n_bands} bands",
        )
    if cfg.model == "multitask_unet" and "use" in cfg.heads:
        kwargs.setdefault("use_classes", len(cfg.heads["use"].classes))
    elif len(cfg.heads) == 1:
        # single-head models (hrnet_ocr, unet, ...): the head's name and class count
        from landforge.models.registry import builder_options

        ((name, head),) = cfg.heads.items()
        options = builder_options(cfg.model)
        if "classes" in options:
            kwargs.setdefault("classes", len(head.classes))
        if "head" in options:
            kwargs.setdefault("head", name)
    return kwargs


def _notes(cfg: TrainConfig) -> str:
    parts = []
    for name, head in cfg.heads.items():
        parts.append(f"{name} <- label {head.label!r} values {head.label_values()} ({head.loss})")
    return "heads: " + "; ".join(parts)


def _clean(metrics: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in dict(metrics).items():
        v = float(value)
        if not math.isnan(v):
            out[key.replace("/", "_")] = v
    return out


class _BestWeights(Callback):
    """Keep a CPU copy of the weights at the best value of ``monitor`` seen.

    Held in memory (nothing is unpickled to restore them) and saved in Lightning's
    checkpoint as plain tensors, so a resumed run still knows its best epoch.
    """

    def __init__(self, monitor: str = "val/loss", mode: str = "min") -> None:
        self.monitor = monitor
        self.sign = 1.0 if mode == "min" else -1.0
        self.best = math.inf  # of sign * value, so lower is always better
        self.state: dict[str, torch.Tensor] | None = None
        self.metrics: dict[str, float] = {}

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        loss = self.sign * float(trainer.callback_metrics[self.monitor])
        if loss < self.best:
            self.best = loss
            self.state = {
                k: v.detach().to("cpu", copy=True) for k, v in pl_module.model.state_dict().items()
            }
            self.metrics = _clean(
                {k: v for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "state": self.state, "metrics": self.metrics}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict["best"])
        self.state = state_dict["state"]
        self.metrics = dict(state_dict["metrics"])
