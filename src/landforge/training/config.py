"""Training configuration: one validated pydantic model, loaded from YAML.

Unknown fields are refused (``extra="forbid"``) so a typo such as ``epoch: 5`` is an
error naming the field, not a silently ignored setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from landforge.errors import InputError

_M = TypeVar("_M", bound=BaseModel)

__all__ = [
    "HeadConfig",
    "TrainConfig",
    "load_train_config",
    "config_from_mapping",
    "validate_mapping",
]


class HeadConfig(BaseModel):
    """Which label feeds an output head, and how the head is scored.

    A binary head (one class name) is trained on ``label in values`` (default ``[1]``)
    against every other value. A K-class head maps ``values[k]`` (default 1..K, the rci
    values) to class k; any other label value (e.g. 0 = background) is ignored.
    """

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description="chip store label name feeding this head")
    classes: list[str] = Field(min_length=1, description="class names; one for a binary head")
    values: list[int] | None = Field(
        default=None, description="label value of each class (binary: the positive values)"
    )
    ignore_values: list[int] = Field(default_factory=list, description="label values to ignore")
    loss: Literal["dice", "ce_dice", "ce", "bce", "bce_dice"] = "dice"
    weight: float = Field(default=1.0, ge=0, description="lambda of this head in the total loss")
    mask_by: str | None = Field(
        default=None, description="score only where this other head's target is positive"
    )

    @property
    def binary(self) -> bool:
        return len(self.classes) == 1

    def label_values(self) -> list[int]:
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


class TrainConfig(BaseModel):
    """Everything ``landforge train`` needs; see ``examples/train_multitask.yaml``."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    chips: Path = Field(description="chip store directory (landforge chips)")
    out: Path = Field(description="output directory: model.safetensors/.json, logs, checkpoints")
    model: str = "multitask_unet"
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="builder options; in_channels and use_classes default from the store",
    )
    heads: dict[str, HeadConfig] = Field(default_factory=_default_heads)
    taxonomy: str | None = "rci"
    train_split: str = "train"
    val_split: str | None = "val"

    optimizer: Literal["adam", "adamw"] = "adamw"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    schedule: Literal["cosine", "poly", "constant"] = Field(
        default="cosine",
        description="LR over the run; the run ends at epochs/max_steps or max_minutes, "
        "whichever comes first, and the schedule follows the same clock",
    )
    poly_power: float = Field(default=0.9, gt=0)

    epochs: int = Field(default=20, ge=1)
    max_steps: int | None = Field(default=None, ge=1, description="stop after this many steps")
    max_minutes: float | None = Field(
        default=None, gt=0, description="time budget; training stops cleanly when it runs out"
    )
    batch_size: int = Field(default=8, ge=1)
    early_stopping_patience: int | None = Field(
        default=5, ge=1, description="epochs without improvement of `monitor` before stopping"
    )
    monitor: str = Field(
        default="val/loss",
        description="validation metric that picks the saved weights and drives early "
        "stopping, e.g. val/loss or val/footprint_iou",
    )
    monitor_mode: Literal["min", "max"] = "min"
    seed: int = 0
    num_workers: int = Field(default=0, ge=0)
    augment: bool = True

    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: int | Literal["auto"] = 1
    precision: Literal["32", "16-mixed", "bf16-mixed"] = Field(
        default="32", description="mixed precision on GPU only; CPU always trains in fp32"
    )
    channels_last: bool = Field(default=False, description="channels-last memory on GPU only")
    log_every_n_steps: int = Field(default=10, ge=1)
    resume: Path | None = Field(
        default=None, description="an earlier run's out dir (or its checkpoints/) to resume"
    )
    init: Path | None = Field(
        default=None,
        description="a landforge checkpoint (NAME.safetensors + NAME.json) to start from "
        "(transfer learning): weights with matching names and shapes are loaded, the "
        "rest (e.g. a head with another class count) stay freshly initialised",
    )
    freeze_encoder_epochs: int = Field(
        default=0,
        ge=0,
        description="keep parameters named encoder.* / backbone.* frozen (and their "
        "BatchNorm statistics fixed) for the first N epochs, then train everything",
    )

    @model_validator(mode="after")
    def _check_heads(self) -> TrainConfig:
        if not self.heads:
            raise ValueError("give at least one head")
        for name, head in self.heads.items():
            if head.mask_by is not None and head.mask_by not in self.heads:
                raise ValueError(f"heads.{name}.mask_by names unknown head {head.mask_by!r}")
            if head.mask_by is not None and not self.heads[head.mask_by].binary:
                raise ValueError(f"heads.{name}.mask_by must name a binary head")
        return self


def validate_mapping(
    cls: type[_M],
    data: Any,
    source: str | os.PathLike[str] = "config",
    prefix: str = "",
) -> _M:
    """Validate a mapping as the pydantic model ``cls``; one InputError line otherwise.

    Args:
        cls: the pydantic model (with ``extra="forbid"``).
        data: the mapping (e.g. from YAML).
        source: the file (or option) named in the error.
        prefix: prepended to field names in the error (``base.`` for a nested block).

    Raises:
        InputError: naming the first offending field, e.g. ``train.yaml: unknown field
            'epoch'``.
    """
    if not isinstance(data, dict):
        what = f"{prefix.rstrip('.')} " if prefix else ""
        raise InputError(source, f"{what}must be a mapping of fields".strip())
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = prefix + ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not field:
            problem = msg
        elif err["type"] == "extra_forbidden":
            problem = f"unknown field {field!r}"
        elif err["type"] == "missing":
            problem = f"missing required field {field!r}"
        else:
            problem = f"field {field!r}: {msg}"
        more = len(exc.errors()) - 1
        if more:
            problem += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise InputError(source, problem) from None


def config_from_mapping(data: Any, source: str | os.PathLike[str] = "config") -> TrainConfig:
    """Validate a mapping as a :class:`TrainConfig`.

    Relative paths are kept as given (relative to the working directory).

    Raises:
        InputError: naming the first offending field, e.g. ``train.yaml: epoch: unknown
            field``.
    """
    if not isinstance(data, dict):
        raise InputError(source, "a training config must be a mapping of fields")
    return validate_mapping(TrainConfig, data, source)


def load_train_config(path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """Read a YAML training config (``yaml.safe_load``) and validate it.

    ``overrides`` (e.g. ``out=...``, ``resume=...``) replace fields of the file; None
    values are skipped.
    """
    from landforge.config import load_yaml

    p = Path(path)
    data = load_yaml(p)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_mapping(data, p)
