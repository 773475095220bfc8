"""Options models of the training stages: ``train``, ``train_sequence``, ``cross_domain``.

One declaration of every training option, its default and its description: the Python
functions take these models (``train(cfg)``, ``run_sequence(cfg)``,
``run_cross_domain(cfg)``), the CLI commands generate their flags from them and a
pipeline step validates its ``with:`` into them. Unknown fields are refused, so a typo
such as ``epoch: 5`` is an error naming the field, not a silently ignored setting.

:class:`TrainOptions` holds the knobs of one training run; :class:`TrainConfig` adds the
paths (chip store, output directory, a checkpoint to start from or a run to resume).
The region sequence and the cross-domain matrix take a ``base`` :class:`TrainOptions`
and set the paths per region.

No heavy imports here: the CLI builds its flags from these models at start-up.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from landforge.config import Options, StrList, StrMap, load_yaml, validate
from landforge.errors import OptionError

__all__ = [
    "CBSTConfig",
    "CrossDomainConfig",
    "HeadConfig",
    "SequenceConfig",
    "TrainConfig",
    "TrainOptions",
    "load_cross_domain_config",
    "load_sequence_config",
    "load_train_config",
    "main_head",
]


class HeadConfig(Options):
    """Which label feeds an output head, and how the head is scored.

    A binary head (one class name) is trained on ``label in values`` (default ``[1]``)
    against every other value. A K-class head maps ``values[k]`` (default 1..K, the rci
    values) to class k; any other label value (e.g. 0 = background) is ignored.
    """

    label: str = Field(description="Chip store label name feeding this head.")
    classes: list[str] = Field(min_length=1, description="Class names; one for a binary head.")
    values: list[int] | None = Field(
        default=None, description="Label value of each class (binary: the positive values)."
    )
    ignore_values: list[int] = Field(default_factory=list, description="Label values to ignore.")
    loss: Literal["dice", "ce_dice", "ce", "bce", "bce_dice"] = Field(
        "dice", description="Loss of this head (ce_dice: CE + Dice, 0.5 / 0.5)."
    )
    weight: float = Field(default=1.0, ge=0, description="Lambda of this head in the total loss.")
    mask_by: str | None = Field(
        default=None, description="Score only where this other (binary) head's target is positive."
    )

    @property
    def binary(self) -> bool:
        """Whether the head has one class (trained against everything else)."""
        return len(self.classes) == 1

    def label_values(self) -> list[int]:
        """The label value of each class (binary: the positive values)."""
        if self.values is not None:
            return list(self.values)
        return [1] if self.binary else list(range(1, len(self.classes) + 1))

    @model_validator(mode="after")
    def _check_values(self) -> HeadConfig:
        if self.values is not None and not self.binary and len(self.values) != len(self.classes):
            raise ValueError(
                f"values has {len(self.values)} entries for {len(self.classes)} classes"
            )
        return self


def main_head(heads: dict[str, HeadConfig]) -> tuple[str, HeadConfig] | None:
    """The head a single-output model (or a model's ``classes``) serves.

    The only multi-class head, else the only head, else None.
    """
    multi = [name for name, head in heads.items() if not head.binary]
    if len(multi) == 1:
        return multi[0], heads[multi[0]]
    if len(heads) == 1:
        return next(iter(heads.items()))
    return None


def _scale_range(value: Any) -> Any:
    """``"0.75,1.25"`` -> two numbers; ``"none"`` / ``"off"`` -> None; others pass through."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none", "null", "off"):
            return None
        parts = [p.strip() for p in text.replace(":", ",").split(",") if p.strip()]
        try:
            lo, hi = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"expected MIN,MAX like 0.75,1.25 (or none); got {value!r}") from None
        return lo, hi
    return value


#: A zoom range ``(lo, hi)``: YAML ``[0.75, 1.25]``, ``"0.75,1.25"``, or none.
ScaleRange = Annotated[tuple[float, float] | None, BeforeValidator(_scale_range)]


def _default_heads() -> dict[str, HeadConfig]:
    # Building-use paper §2.7: footprint from the 0/1 mask, use from the rci raster
    # (1 residential, 2 commercial, 3 industrial; 0 background ignored), use scored on
    # building pixels only.
    return {
        "footprint": HeadConfig(label="footprint", classes=["building"]),
        "use": HeadConfig(
            label="use",
            classes=["residential", "commercial", "industrial"],
            values=[1, 2, 3],
            mask_by="footprint",
        ),
    }


class TrainOptions(Options):
    """The knobs of one training run (everything but its paths)."""

    model_config = ConfigDict(protected_namespaces=())

    model: str = Field(
        "multitask_unet", description="Registry model (landforge.models.available())."
    )
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Builder options; in_channels and classes default from the chip store "
        "and the heads.",
    )
    heads: dict[str, HeadConfig] = Field(
        default_factory=_default_heads,
        description="Output head -> label, classes, loss (default: footprint + masked use).",
    )
    taxonomy: str | None = Field("rci", description="Taxonomy of the classes (model card).")
    train_split: str = Field("train", description="Chip store split trained on.")
    val_split: str | None = Field("val", description="Split validated on (none: no validation).")

    optimizer: Literal["adam", "adamw"] = Field("adamw", description="Optimiser.")
    lr: float = Field(default=1e-3, gt=0, description="Learning rate.")
    weight_decay: float = Field(
        default=1e-4, ge=0, description="Weight decay (decoupled for adamw, L2 for adam)."
    )
    schedule: Literal["cosine", "poly", "constant"] = Field(
        default="cosine",
        description="LR over the run; the run ends at epochs/max_steps or max_minutes, "
        "whichever comes first, and the schedule follows the same clock.",
    )
    poly_power: float = Field(default=0.9, gt=0, description="Exponent of the poly schedule.")

    epochs: int = Field(default=20, ge=1, description="Epochs to train.")
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps.")
    max_minutes: float | None = Field(
        default=None, gt=0, description="Time budget; training stops cleanly when it runs out."
    )
    batch_size: int = Field(default=8, ge=1, description="Chips per batch.")
    early_stopping_patience: int | None = Field(
        default=5, ge=1, description="Epochs without improvement of monitor before stopping."
    )
    monitor: str = Field(
        default="val/loss",
        description="Validation metric that picks the saved weights and drives early "
        "stopping, e.g. val/loss or val/footprint_iou.",
    )
    monitor_mode: Literal["min", "max"] = Field(
        "min", description="Whether a lower or a higher monitor is better."
    )
    seed: int = Field(0, description="Seed of initialisation, shuffling and augmentation.")
    num_workers: int = Field(default=0, ge=0, description="Data loader worker processes.")
    augment: bool = Field(
        True, description="Synchronised flips, 90-degree rotations and transposes."
    )
    augment_scale: ScaleRange = Field(
        None,
        description="With augment, also zoom each training chip by a random factor in "
        "MIN,MAX (e.g. 0.75,1.25): image bilinear, labels nearest, cropped or padded "
        "(image 0 = band mean, labels ignored) back to the chip size; none = off.",
    )

    accelerator: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="Where to train (auto: a GPU when there is one)."
    )
    devices: int | Literal["auto"] = Field(1, description="Number of devices.")
    precision: Literal["32", "16-mixed", "bf16-mixed"] = Field(
        default="32", description="Mixed precision on GPU only; CPU always trains in fp32."
    )
    channels_last: bool = Field(default=False, description="Channels-last memory on GPU only.")
    log_every_n_steps: int = Field(default=10, ge=1, description="Logging interval in steps.")
    freeze_encoder_epochs: int = Field(
        default=0,
        ge=0,
        description="Keep parameters named encoder.* / backbone.* frozen (and their "
        "BatchNorm statistics fixed) for the first N epochs, then train everything.",
    )

    @field_validator("augment_scale")
    @classmethod
    def _check_scale(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None:
            lo, hi = value
            if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
                raise ValueError(f"need 0 < MIN <= MAX, got {lo:g},{hi:g}")
        return value

    @field_validator("heads")
    @classmethod
    def _check_heads(cls, heads: dict[str, HeadConfig]) -> dict[str, HeadConfig]:
        if not heads:
            raise ValueError("give at least one head")
        for name, head in heads.items():
            if head.mask_by is not None and head.mask_by not in heads:
                raise ValueError(f"{name}.mask_by names unknown head {head.mask_by!r}")
            if head.mask_by is not None and not heads[head.mask_by].binary:
                raise ValueError(f"{name}.mask_by must name a binary head")
        return heads


class TrainConfig(TrainOptions):
    """One training run: the options plus its paths (see examples/train_multitask.yaml)."""

    chips: str = Field(description="Chip store directory (landforge chips).")
    out: str = Field(
        "model",
        description="Output directory: model.safetensors/.json, logs, checkpoints.",
    )
    init: str | None = Field(
        default=None,
        description="A landforge checkpoint (NAME.safetensors + NAME.json) to start from "
        "(transfer learning): weights with matching names and shapes are loaded, the "
        "rest (e.g. a head with another class count) stay freshly initialised.",
    )
    resume: str | None = Field(
        default=None,
        description="An earlier run's output directory (or its checkpoints/) to resume.",
    )


# ---------------------------------------------------------------- regions
_PER_RUN = ("chips", "out", "init", "resume")


def _no_paths_in_base(data: Any, what: str) -> Any:
    base = data.get("base") if isinstance(data, dict) else None
    if isinstance(base, dict):
        for key in _PER_RUN:
            if key in base:
                raise OptionError(f"base.{key}", f"is set per {what}; remove it from base")
    return data


def _check_region_names(names: list[str], regions: dict[str, str], field: str) -> None:
    for name in names:
        if name not in regions:
            raise OptionError(
                field, f"names unknown region {name!r} (regions: {', '.join(regions)})"
            )


class SequenceConfig(Options):
    """A region sequence: train on region A, fine-tune on B from A's weights, ..."""

    out: str = Field(description="Output directory (steps/, sequence.json, sequence.md).")
    regions: StrMap = Field(
        min_length=1, description="Region name -> chip store, e.g. a=chips/a,b=chips/b."
    )
    order: StrList | None = Field(
        default=None, description="Training order of the regions (default: all, as listed)."
    )
    base: TrainOptions = Field(
        default_factory=TrainOptions,
        description="Training options of every step (chips, out and init are set per step).",
    )
    eval_split: str = Field("test", description="Split scored (val where a store has none).")
    eval_head: str | None = Field(
        default=None, description="Head scored (default: the first multi-class head)."
    )
    init: str | None = Field(default=None, description="Checkpoint the first step starts from.")

    @model_validator(mode="before")
    @classmethod
    def _check_base(cls, data: Any) -> Any:
        return _no_paths_in_base(data, "step")

    @model_validator(mode="after")
    def _check(self) -> SequenceConfig:
        if self.order is not None and not self.order:
            raise OptionError("order", "is empty")
        _check_region_names(self.order or [], self.regions, "order")
        return self

    @property
    def steps(self) -> list[str]:
        """The regions in training order."""
        return list(self.order) if self.order is not None else list(self.regions)

    def train_config(self, region: str, out: str | os.PathLike[str], init: Any) -> TrainConfig:
        """The training config of one step."""
        extra: dict[str, Any] = {}
        if init is not None:
            extra["init"] = str(init)
        else:
            # freezing protects transferred weights: a step that starts from random
            # weights (the first one without `init`) trains its encoder from the start
            extra["freeze_encoder_epochs"] = 0
        return TrainConfig.build(self.base, chips=self.regions[region], out=str(out), **extra)


class CBSTConfig(Options):
    """Class-balanced self-training settings."""

    pairs: list[tuple[str, str]] | None = Field(
        default=None, description="(source, target) pairs adapted; default every ordered pair."
    )
    rounds: int = Field(default=2, ge=1, description="Self-training rounds R.")
    p_start: float = Field(default=0.2, gt=0, le=1, description="Portion kept in round 1.")
    p_step: float = Field(default=0.05, ge=0, le=1, description="Portion growth per round.")
    p_max: float = Field(default=0.5, gt=0, le=1, description="Largest portion kept.")
    epochs: int = Field(default=2, ge=1, description="Fine-tuning epochs per round.")
    max_steps: int | None = Field(default=None, ge=1, description="Cap on steps per round.")
    lr: float | None = Field(
        default=None, gt=0, description="Fine-tuning LR (default: the base lr)."
    )


def cbst_head(heads: dict[str, HeadConfig]) -> tuple[str, HeadConfig]:
    """The one multi-class head CBST adapts; OptionError otherwise."""
    if len(heads) != 1 or next(iter(heads.values())).binary:
        raise OptionError(
            "base.heads",
            "cbst needs exactly one multi-class head (e.g. heads: {use: {label: use, "
            f"classes: [background, residential, ...], values: [0, 1, ...]}}), got "
            f"{', '.join(f'{n} ({len(h.classes)} classes)' for n, h in heads.items())}",
        )
    return next(iter(heads.items()))


class CrossDomainConfig(Options):
    """Regions, one base training config, optional checkpoints to reuse, CBST."""

    out: str = Field(
        description="Output directory (source/, cbst/, cross_domain.json, cross_domain.md)."
    )
    regions: StrMap = Field(
        min_length=1, description="Region name -> chip store, e.g. a=chips/a,b=chips/b."
    )
    base: TrainOptions = Field(
        default_factory=TrainOptions,
        description="Training options of every region (chips and out are set per region).",
    )
    models: StrMap = Field(
        default_factory=dict,
        description="Region -> existing checkpoint to reuse instead of training.",
    )
    eval_split: str = Field("test", description="Split scored (val where a store has none).")
    eval_head: str | None = Field(
        default=None, description="Head scored (default: the first multi-class head)."
    )
    cbst: CBSTConfig | None = Field(
        default=None, description="CBST unsupervised adaptation (none: no adapted rows)."
    )

    @model_validator(mode="before")
    @classmethod
    def _check_base(cls, data: Any) -> Any:
        return _no_paths_in_base(data, "region")

    @model_validator(mode="after")
    def _check(self) -> CrossDomainConfig:
        _check_region_names(list(self.models), self.regions, "models")
        if self.cbst is not None:
            for s, t in self.cbst.pairs or []:
                _check_region_names([s, t], self.regions, "cbst.pairs")
                if s == t:
                    raise OptionError("cbst.pairs", f"source and target are both {s!r}")
            cbst_head(self.base.heads)
        return self

    def train_config(self, region: str, out: str | os.PathLike[str]) -> TrainConfig:
        """The training config of one region's source model."""
        return TrainConfig.build(self.base, chips=self.regions[region], out=str(out))

    def cbst_pairs(self) -> list[tuple[str, str]]:
        """The (source, target) pairs adapted by CBST."""
        if self.cbst is None:
            return []
        if self.cbst.pairs is not None:
            return [tuple(p) for p in self.cbst.pairs]  # type: ignore[misc]
        return [(s, t) for s in self.regions for t in self.regions if s != t]


# ---------------------------------------------------------------- YAML files
def load_train_config(path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """Read a YAML training config and validate it; ``overrides`` (None skipped) win.

    Relative paths are kept as given (relative to the working directory).

    Raises:
        InputError: naming the file and the first offending field.
    """
    data = load_yaml(path)
    data.update(
        {k: str(v) if isinstance(v, Path) else v for k, v in overrides.items() if v is not None}
    )
    return validate(TrainConfig, data, str(path))


def load_sequence_config(path: str | os.PathLike[str]) -> SequenceConfig:
    """Read and validate a region-sequence YAML."""
    return validate(SequenceConfig, load_yaml(path), str(path))


def load_cross_domain_config(path: str | os.PathLike[str]) -> CrossDomainConfig:
    """Read and validate a cross-domain YAML."""
    return validate(CrossDomainConfig, load_yaml(path), str(path))
