"""Options models of the change stages: ``change chips``, ``change train``, ``change predict``.

One declaration of every option, its default and its description (see
``docs/dev/stages.md``). No heavy imports: the CLI builds its flags from these models.
Where a default is landforge's own choice and not FUSU's, the description says "ours".
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, model_validator

from landforge.config import FloatMap, Options
from landforge.errors import OptionError

__all__ = [
    "ChangeChipOptions",
    "ChangeEvaluateOptions",
    "ChangePredictOptions",
    "ChangeTrainConfig",
    "ChangeTrainOptions",
    "SeriesOptions",
    "pick_time_steps",
]


def pick_time_steps(n: int, steps: int | None) -> list[int]:
    """Indices of ``steps`` of ``n`` dates: evenly spaced, first and last included (ours).

    ``None`` or ``steps >= n`` keeps every date; 0 keeps none; 1 keeps the last date
    (the one nearest the T2 image).
    """
    if steps is None or steps >= n:
        return list(range(n))
    if steps <= 0:
        return []
    if steps == 1:
        return [n - 1]
    return sorted({int(round(v)) for v in [i * (n - 1) / (steps - 1) for i in range(steps)]})


class SeriesOptions(Options):
    """How a satellite time series is cut around a patch (shared by chips and predict)."""

    footprint_scale: float = Field(
        5.0, ge=1, description="Series footprint side / patch side, by geographic bounds (FUSU: 5)."
    )
    series_res: float = Field(
        10.0, gt=0, description="Pixel size of the series in the footprint, metres (nearest)."
    )
    min_coverage: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of the footprint the series must cover; uncovered pixels are 0.",
    )
    max_cloud: float = Field(
        1.0,
        gt=0,
        le=1,
        description="A frame is dropped (and counted) where its cloud share in the footprint "
        "reaches this (1: only all-cloud frames).",
    )
    min_dates: int = Field(1, ge=0, description="Fewest dates the series must hold.")


class ChangeChipOptions(SeriesOptions):
    """``landforge change chips``: bi-temporal patches, labels and series footprints."""

    size: int = Field(512, ge=8, description="Patch side in pixels (FUSU: 512).")
    stride: int | None = Field(None, ge=1, description="Step between patches; default: size.")
    taxonomy: str = Field("fusu17", description="Class system of the labels (values 0..K-1).")
    changed_only: bool = Field(
        False, description="Keep only patches with changed pixels (FUSU's change subset)."
    )
    min_labelled: float = Field(
        0.0, ge=0, le=1, description="Skip patches whose labelled share (y1 > 0) is lower."
    )
    split: FloatMap = Field(
        default_factory=lambda: {"train": 0.6, "val": 0.2, "test": 0.2},
        description="Subset shares of the spatially blocked split, e.g. train=6,val=2,test=2.",
    )
    split_block: int = Field(
        4, ge=1, description="Patches per split-block side (neighbours share a subset)."
    )
    seed: int = Field(0, ge=0, description="Seed of the split.")
    format: Literal["npz", "safetensors"] = Field(
        "npz", description="Chip file format (never pickle)."
    )

    @model_validator(mode="after")
    def _check(self) -> ChangeChipOptions:
        if self.stride is not None and self.stride > self.size * 4:
            raise OptionError("stride", f"{self.stride} skips most of the image (size {self.size})")
        if not self.split or any(v < 0 or not math.isfinite(v) for v in self.split.values()):
            raise OptionError("split", "give non-negative shares, e.g. train=6,val=2,test=2")
        return self


class ChangeTrainOptions(Options):
    """``landforge change train CONFIG.yaml``: one training run of a change model.

    Defaults follow FUSU for change models: AdamW (0.5, 0.999), lr 3e-4 with linear
    decay, batch 8. Segmentation-only models: ``optimizer: sgd`` (momentum 0.9, weight
    decay 1e-4), ``lr: 0.01``, ``schedule: poly`` (power 0.9).
    """

    model: str = Field("fusu_net", description="Registered model name (fusu_net, utae, ...).")
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Size options of the model (in the config file)."
    )
    epochs: int = Field(20, ge=1, description="Passes over the training chips.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps.")
    batch: int = Field(8, ge=1, description="Chips per step (FUSU: 8).")
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="adamw or sgd.")
    lr: float = Field(3e-4, gt=0, description="Peak learning rate (FUSU change: 3e-4).")
    betas: tuple[float, float] = Field((0.5, 0.999), description="AdamW betas (FUSU).")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    weight_decay: float = Field(
        1e-4, ge=0, description="Weight decay (SGD: 1e-4 as FUSU; AdamW: ours)."
    )
    schedule: Literal["linear", "poly", "constant"] = Field(
        "linear", description="lr decay: linear (change), poly 0.9 (segmentation)."
    )
    loss_weights: tuple[float, float, float, float] = Field(
        (1.0, 1.0, 1.0, 2.0), description="Weights of L_1s, L_2s, L_Ts, L_c (FUSU: 1, 1, 1, 2)."
    )
    time_steps: int | None = Field(
        None, ge=0, description="Dates of the series used (evenly spaced); default: all."
    )
    s1: bool = Field(True, description="Use the Sentinel-1 channels of the series.")
    seed: int = Field(0, ge=0, description="Seed of weights, order and augmentation.")
    device: str = Field("cpu", description="Torch device (cpu, cuda, cuda:0).")
    workers: int = Field(0, ge=0, description="DataLoader worker processes.")
    quiet: bool = Field(False, description="No progress output.")


class ChangePredictOptions(SeriesOptions):
    """``landforge change predict``: a change map and T1/T2 maps over a whole scene."""

    window: int | None = Field(
        None, ge=8, description="Window side in pixels; default: the training patch size."
    )
    overlap: int = Field(32, ge=0, description="Context margin dropped on each window side.")
    block_windows: int = Field(4, ge=1, description="Windows per block side (unit of resume).")
    batch: int = Field(4, ge=1, description="Windows per forward pass.")
    threshold: float = Field(0.5, gt=0, lt=1, description="Change probability threshold.")
    resample: bool = Field(
        False, description="Resample T2 onto T1's grid (nearest) instead of refusing."
    )
    device: str = Field("cpu", description="Torch device.")
    workers: int = Field(0, ge=0, description="Local Dask worker processes (0: in-process).")
    resume: bool = Field(True, description="Reuse the finished blocks of an interrupted run.")
    quiet: bool = Field(False, description="No progress bar.")

    @model_validator(mode="after")
    def _check(self) -> ChangePredictOptions:
        if self.window is not None and self.window - 2 * self.overlap <= 0:
            raise OptionError(
                "overlap", f"must be less than half the window ({self.window}), got {self.overlap}"
            )
        return self


class ChangeEvaluateOptions(Options):
    """``landforge change evaluate``: change and semantic-change metrics."""

    taxonomy: str | None = Field(
        None, description="Class system (values 0..K-1); default: the values found."
    )
    classes: int | None = Field(None, ge=2, description="Class count K (values 0..K-1).")
    block: int = Field(1024, ge=16, description="Rows and columns read at a time.")


class ChangeTrainConfig(ChangeTrainOptions):
    """:class:`ChangeTrainOptions` plus the paths: chip folder, output folder, start weights."""

    chips: str = Field(description="Change chip folder (landforge change chips).")
    out: str = Field("change_model", description="Output folder: model.safetensors + model.json.")
    init: str | None = Field(None, description="Checkpoint whose weights start the training.")
