"""``train(cfg)``: a chip store in, a safetensors checkpoint + model card out.

One Lightning run: seeded, time-budgeted (``max_minutes`` stops cleanly mid-epoch),
early-stopped on the validation loss, logged as CSV in the output directory, resumable
from the run's own ``checkpoints/last.safetensors`` (:mod:`landforge.training.resume`).
The weights kept are those of the epoch with the lowest validation loss (the last ones
when there is no validation split); the model card records the store's bands and
normalisation, the heads and their classes, the training-data hash and the validation
metrics of those weights.

Output directory::

    OUT/model.safetensors, OUT/model.json   the checkpoint (landforge.models.checkpoint)
    OUT/logs/version_N/metrics.csv          Lightning CSV log (one version per run/resume)
    OUT/train_config.json                   the resolved configuration
    OUT/checkpoints/last.safetensors        state to resume from (``resume``; no pickle)
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
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from landforge.errors import InputError, OptionError
from landforge.models.checkpoint import ModelCard, save_checkpoint
from landforge.training.module import SegmentationTask
from landforge.training.options import TrainConfig, TrainOptions, main_head
from landforge.training.resume import LAST, LastState, RngState, SafeCheckpointIO

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
    """``last.safetensors`` of an earlier ``landforge train`` run (its out dir or checkpoints/).

    Only a directory that ``landforge train`` wrote (it holds our ``train_config.json``)
    is accepted. The state is safetensors + JSON (:mod:`landforge.training.resume`); a
    Lightning ``last.ckpt`` (a pickle, written by older versions) is never loaded.

    Raises:
        OptionError: ``resume`` names no run of ``landforge train`` or one without a
            resumable state.
    """
    p = Path(path)
    if p.is_file() and p.suffix in (".safetensors", ".ckpt"):
        ckpt, run = p, p.parent.parent
    else:
        run = p.parent if p.name == "checkpoints" else p
        ckpt = run / "checkpoints" / LAST
    if not (run / _MARKER).is_file():
        raise OptionError("resume", f"{p}: not a landforge training directory (no {_MARKER})")
    if ckpt.suffix == ".ckpt" or (not ckpt.is_file() and ckpt.with_suffix(".ckpt").is_file()):
        raise OptionError(
            "resume",
            f"{p}: holds only a Lightning .ckpt (a pickle, from an older landforge), which "
            f"is never loaded; train again without resume",
        )
    if not ckpt.is_file():
        raise OptionError("resume", f"{p}: no checkpoints/{LAST} to resume from")
    return ckpt


def train(cfg: TrainConfig | Mapping[str, Any] | None = None, **overrides: Any) -> Path:
    """Train ``cfg.model`` on the chip store ``cfg.chips``; returns OUT/model.safetensors.

    Args:
        cfg: a :class:`TrainConfig` (or a mapping of its fields, or a model holding
            them such as the ``train`` stage's config).
        **overrides: fields replacing those of ``cfg`` (``train(cfg, max_steps=10)``,
            ``train(chips="chips", out="run", epochs=2)``).

    Raises:
        OptionError: a bad option (e.g. a head naming a label the store lacks, a model
            option the builder refuses, an ``init`` checkpoint that is not one or does
            not fit, a ``resume`` directory without a run).
        InputError: a missing chip store or an empty training split.
    """
    from landforge.datasets.chips import read_meta, read_stats

    cfg = TrainConfig.build(cfg, **overrides)
    stats = read_stats(cfg.chips)
    meta = read_meta(cfg.chips)
    for name, head in cfg.heads.items():
        if head.label not in meta["label_names"]:
            raise OptionError(
                f"heads.{name}.label",
                f"chip store {cfg.chips} has no label {head.label!r} "
                f"(labels: {', '.join(meta['label_names'])})",
            )
    resume_ckpt = find_resume_checkpoint(cfg.resume) if cfg.resume is not None else None

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    run = _Run(cfg, stats, meta)
    train_loader, val_loader = _loaders(cfg, run.on_gpu)
    model = run.build_model()
    steps_per_epoch = max(1, len(train_loader))
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    task = SegmentationTask(
        model,
        cfg.heads,
        cfg,
        total_steps=total_steps,
        max_seconds=cfg.max_minutes * 60 if cfg.max_minutes else None,
    )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text(cfg.model_dump_json(indent=2))
    metrics = run.fit(task, train_loader, val_loader, resume_ckpt, steps_per_epoch)
    task.model.cpu().eval()
    if cfg.channels_last:
        task.model.to(memory_format=torch.contiguous_format)
    return save_checkpoint(task.model, run.card(metrics), out / "model")


def _loaders(cfg: TrainConfig, on_gpu: bool) -> tuple[DataLoader, DataLoader | None]:
    """Training and validation loaders (None without a validation split or chips)."""
    from landforge.datasets.chips import ChipDataset

    train_ds = ChipDataset(
        cfg.chips, cfg.train_split, augment=cfg.augment, scale_range=cfg.augment_scale
    )
    if len(train_ds) == 0:
        raise InputError(cfg.chips, f"split {cfg.train_split!r} has no chips")
    val_ds = ChipDataset(cfg.chips, cfg.val_split) if cfg.val_split else None
    if val_ds is not None and len(val_ds) == 0:
        val_ds = None
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
    return train_loader, val_loader


class _Run:
    """One training run's state between its steps: model options, init note, Trainer."""

    def __init__(self, cfg: TrainConfig, stats: dict[str, Any], meta: dict[str, Any]) -> None:
        self.cfg, self.stats, self.meta = cfg, stats, meta
        accelerator = cfg.accelerator
        if accelerator == "auto":
            accelerator = "gpu" if torch.cuda.is_available() else "cpu"
        self.accelerator = accelerator
        self.on_gpu = accelerator == "gpu"
        self.model_kwargs: dict[str, Any] = {}
        self.init_note = ""

    def build_model(self) -> torch.nn.Module:
        """The registry model, initialised from ``cfg.init`` where given.

        Its options are completed from the chip store and the heads (``_model_kwargs``).
        """
        from landforge.models.registry import build

        cfg = self.cfg
        self.model_kwargs = _model_kwargs(cfg, self.stats)
        model = build(cfg.model, **self.model_kwargs)
        if cfg.init is None:
            return model
        try:
            report = init_from_checkpoint(model, cfg.init, list(self.stats["bands"]))
        except OptionError:
            raise
        except InputError as exc:  # the checkpoint given as `init` does not fit
            raise OptionError("init", exc.line()) from None
        note = report["note"]
        for name, head in cfg.heads.items():
            before = report["heads"].get(name)
            if before is not None and len(before) != len(head.classes):
                note += (
                    f"; head {name!r} has {len(head.classes)} classes, the checkpoint "
                    f"{len(before)}: re-initialised"
                )
        log.log(logging.WARNING if report["reinitialised"] else logging.INFO, "%s", note)
        self.init_note = note
        return model

    def callbacks(self, model: torch.nn.Module, with_val: bool) -> list[Any]:
        cfg = self.cfg
        callbacks: list[Any] = [
            _BestWeights(cfg.monitor, cfg.monitor_mode),
            LastState(Path(cfg.out) / "checkpoints"),
            RngState(),
        ]
        if cfg.freeze_encoder_epochs:
            freeze = FreezeEncoder(cfg.freeze_encoder_epochs)
            if not freeze.parameters(model):
                raise OptionError(
                    "freeze_encoder_epochs",
                    f"model {cfg.model!r} has no parameter named encoder.* or backbone.*",
                )
            callbacks.append(freeze)
        if with_val and cfg.early_stopping_patience is not None:
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
        return callbacks

    def trainer(self, callbacks: list[Any], steps_per_epoch: int, quiet: bool) -> L.Trainer:
        cfg, out = self.cfg, Path(self.cfg.out)
        return L.Trainer(
            accelerator=self.accelerator,
            devices=cfg.devices,
            precision=cfg.precision if self.on_gpu else "32-true",
            max_epochs=cfg.epochs,
            max_steps=cfg.max_steps if cfg.max_steps is not None else -1,
            max_time=dt.timedelta(minutes=cfg.max_minutes) if cfg.max_minutes else None,
            # out/logs/version_N/metrics.csv: a resumed run gets its own version, so no
            # earlier log is overwritten.
            logger=CSVLogger(save_dir=out, name="logs"),
            callbacks=callbacks,
            plugins=[SafeCheckpointIO()],  # resumable state as safetensors + JSON
            log_every_n_steps=min(cfg.log_every_n_steps, steps_per_epoch),
            num_sanity_val_steps=0,
            enable_progress_bar=not quiet,
            enable_model_summary=not quiet,
            default_root_dir=out,
        )

    def fit(
        self,
        task: Any,
        train_loader: DataLoader,
        val_loader: DataLoader | None,
        resume_ckpt: Path | None,
        steps_per_epoch: int,
    ) -> dict[str, float]:
        """Run Lightning; returns the metrics of the weights kept (loaded into task)."""
        from landforge.progress import is_quiet

        callbacks = self.callbacks(task.model, val_loader is not None)
        quiet = is_quiet()
        with _quiet_lightning(quiet):
            trainer = self.trainer(callbacks, steps_per_epoch, quiet)
            # resume_ckpt is read by SafeCheckpointIO (safetensors + JSON, no pickle)
            trainer.fit(
                task,
                train_dataloaders=train_loader,
                val_dataloaders=val_loader,
                ckpt_path=resume_ckpt,
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
        return metrics

    def card(self, metrics: dict[str, float]) -> ModelCard:
        cfg, stats = self.cfg, self.stats
        card_kwargs = dict(self.model_kwargs)
        if "encoder_weights" in card_kwargs:
            # The trained weights include the encoder: rebuilding from the card must not
            # need (or re-read) the initial weights file.
            card_kwargs["encoder_weights"] = None
        return ModelCard(
            model=cfg.model,
            model_kwargs=card_kwargs,
            bands=list(stats["bands"]),
            mean=[float(v) for v in stats["mean"]],
            std=[float(v) for v in stats["std"]],
            heads={name: list(h.classes) for name, h in cfg.heads.items()},
            taxonomy=cfg.taxonomy,
            gsd_m=self.meta.get("gsd"),
            training_data_hash=training_data_hash(cfg.chips),
            metrics=metrics,
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            notes=_notes(cfg)
            + f"; mean/std from the store's {stats.get('split', 'all')} pixels"
            + (f"; {self.init_note}" if self.init_note else ""),
        )


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
        """The parameters frozen while the encoder is."""
        return [p for n, p in model.named_parameters() if n.startswith(self.PREFIXES)]

    def _norms(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        return [
            m
            for n, m in model.named_modules()
            if n.startswith(tuple(p[:-1] for p in self.PREFIXES))
            and isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Freeze or unfreeze the encoder for this epoch."""
        self.frozen = trainer.current_epoch < self.epochs
        for p in self.parameters(pl_module.model):
            p.requires_grad_(not self.frozen)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, idx: int) -> None:
        """Keep frozen BatchNorms in eval mode."""
        # Lightning puts the module back in train mode after validation: re-fix the
        # statistics of frozen BatchNorms before every step.
        if self.frozen:
            for m in self._norms(pl_module.model):
                m.eval()

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """Leave every parameter trainable."""
        for p in self.parameters(pl_module.model):
            p.requires_grad_(True)


def _no_advert(record: logging.LogRecord) -> bool:
    return "litlogger" not in str(record.msg)


@contextlib.contextmanager
def _quiet_lightning(quiet: bool) -> Iterator[None]:
    """Hush Lightning's info lines (device banner, summary) when quiet.

    Always drop its cloud-logging advert and its deprecated internal call into torch's
    pytree, which no user can act on.
    """
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


def _model_kwargs(cfg: TrainOptions, stats: dict[str, Any]) -> dict[str, Any]:
    """The builder options: ``model_kwargs`` plus what the store and the heads imply.

    ``in_channels`` is the store's band count; a builder taking ``classes`` gets the
    class count of the head it serves (the only multi-class head, else the only head),
    one taking ``head`` the name of the only head. Options given win.
    """
    from landforge.models.registry import builder_options

    kwargs = dict(cfg.model_kwargs)
    n_bands = len(stats["bands"])
    kwargs.setdefault("in_channels", n_bands)
    if kwargs["in_channels"] != n_bands:
        raise OptionError(
            "model_kwargs.in_channels",
            f"is {kwargs['in_channels']} but the chip store has {n_bands} bands",
        )
    options = builder_options(cfg.model)
    main = main_head(cfg.heads)
    if main is not None and "classes" in options:
        kwargs.setdefault("classes", len(main[1].classes))
    if len(cfg.heads) == 1 and "head" in options:
        kwargs.setdefault("head", next(iter(cfg.heads)))
    return kwargs


def _notes(cfg: TrainOptions) -> str:
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
