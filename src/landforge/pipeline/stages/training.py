"""Stages: training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import model_validator

from landforge.config import StageConfig
from landforge.pipeline.registry import StageContext, StageResult, register_stage


# ---------------------------------------------------------------- training
class TrainStage(StageConfig):
    input_fields = ("chips",)
    output_fields = ("out",)
    chips: str
    out: str = "model"
    max_minutes: float | None = None
    options: dict[str, Any] = {}

    @model_validator(mode="after")
    def _check_options(self) -> TrainStage:
        from landforge.training.config import TrainConfig

        TrainConfig.model_validate(self._train_fields())
        return self

    def _train_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {**self.options, "chips": self.chips, "out": self.out}
        if self.max_minutes is not None:
            fields["max_minutes"] = self.max_minutes
        return fields


@register_stage("train", TrainStage)
def train(cfg: TrainStage, ctx: StageContext) -> StageResult:
    """Train a model on a chip store (Lightning); writes safetensors + model card."""
    import json

    from landforge.training.config import TrainConfig
    from landforge.training.train import train as train_model

    weights = train_model(TrainConfig.model_validate(cfg._train_fields()))
    card = json.loads(Path(weights).with_suffix(".json").read_text())
    return StageResult({"model": card.get("model"), **card.get("metrics", {})})
