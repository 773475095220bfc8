"""Options models of the parcel classifier (``parcels train``, ``parcels predict-classes``).

The defaults of the optimiser are MSLU-100K's (Huang et al.): Adam, learning rate 0.01
decaying to 0.0001, batch size 8. The decay's shape (exponential per step) and the
spatial-block split are ours. No heavy imports: the CLI builds its flags from these
models at start-up.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from landforge.config import FloatMap, Options, StrList
from landforge.errors import OptionError

__all__ = ["ParcelPredictOptions", "ParcelTrainOptions"]

_MODALITIES = ("image", "poi", "population")


class ParcelTrainOptions(Options):
    """Train the parcel classifier on parcel samples (spatially blocked split)."""

    modalities: StrList = Field(
        ["image", "poi", "population"],
        description="Branches of the fusion model: any of image, poi, population "
        "(population alone: the InceptionTime branch).",
    )
    backbone: str = Field(
        "swin_tiny_patch4_window7_224", description="timm model of the image branch (random init)."
    )
    backbone_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Keywords for timm.create_model, e.g. {img_size: 64} (config file only).",
    )
    embed_dim: int = Field(128, ge=4, description="Size of each branch's embedding.")
    inception_depth: int = Field(6, ge=1, description="InceptionTime modules (paper: 6).")
    inception_nf: int = Field(32, ge=1, description="InceptionTime filters per branch (32).")
    classes: StrList | None = Field(
        None, description="Class names in output order (default: the labels seen, sorted)."
    )
    epochs: int = Field(30, ge=1, description="Training epochs (ours).")
    batch_size: int = Field(8, ge=1, description="Parcels per batch (MSLU: 8).")
    lr: float = Field(0.01, gt=0, description="Initial learning rate of Adam (MSLU: 0.01).")
    lr_min: float = Field(1e-4, gt=0, description="Final learning rate (MSLU: 0.0001).")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay.")
    ratios: FloatMap = Field(
        {"train": 0.6, "val": 0.2, "test": 0.2},
        description="Split ratios of the spatial blocks (train, val, test).",
    )
    block_size_m: float = Field(500.0, gt=0, description="Side of the split's square blocks (m).")
    gold_per_class: int | None = Field(
        None,
        ge=1,
        description="Balanced gold test set: at most this many test parcels per class "
        "(MSLU: 1000); none: the whole test split.",
    )
    seed: int = Field(0, description="Seed of the split, the weights and the batches.")
    max_minutes: float | None = Field(None, gt=0, description="Time budget of one fit.")
    accelerator: str = Field("auto", description="Lightning accelerator: auto, cpu, gpu.")
    num_workers: int = Field(0, ge=0, description="Data-loader worker processes.")

    @model_validator(mode="after")
    def _check(self) -> ParcelTrainOptions:
        bad = [m for m in self.modalities if m not in _MODALITIES]
        if bad or not self.modalities:
            raise OptionError("modalities", f"choose from {', '.join(_MODALITIES)}, got {bad}")
        if self.lr_min > self.lr:
            raise OptionError("lr_min", f"must not exceed lr ({self.lr})")
        if "train" not in self.ratios or self.ratios["train"] <= 0:
            raise OptionError("ratios", "needs a positive train ratio")
        return self


class ParcelPredictOptions(Options):
    """Class probabilities per parcel (``parcels predict-classes``)."""

    folds: int = Field(
        0,
        ge=0,
        description="0: the trained model on every parcel (in-sample where it trained); "
        "K >= 2: out-of-fold probabilities, K models retrained on spatial-block folds "
        "with the model's training options (not in the paper).",
    )
    batch_size: int = Field(32, ge=1, description="Parcels per forward pass.")

    @model_validator(mode="after")
    def _check(self) -> ParcelPredictOptions:
        if self.folds == 1:
            raise OptionError("folds", "give 0 (no cross-fitting) or at least 2 folds")
        return self
