"""Stages: training, region sequences and the cross-domain matrix.

``train``, ``train_sequence`` and ``cross_domain``.

The options models live in :mod:`landforge.training.options` (one declaration of every
training option); each stage config is that model plus its path fields' roles. The
commands take their YAML config as a positional argument (``landforge train
CONFIG.yaml``) or ``--config``; every top-level scalar field is a flag too (``--out``,
``--init``, ``--resume``, ``--max-minutes``, ...), nested ones (``heads``,
``model_kwargs``, ``base``, ``cbst``) live in the file.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from pydantic import model_validator

from landforge.config import StageConfig
from landforge.pipeline.registry import StageContext, StageResult, register_stage
from landforge.training.options import CrossDomainConfig, SequenceConfig, TrainConfig

# ---------------------------------------------------------------- training
_LEGACY_TOP = ("chips", "out", "max_minutes")


class TrainStage(StageConfig, TrainConfig):
    """``landforge train CONFIG.yaml``: options in TrainConfig."""

    input_fields = ("chips", "init", "resume")
    output_fields = ("out",)
    cli_config_argument = True
    cli_hidden = ("heads", "model_kwargs")

    @model_validator(mode="before")
    @classmethod
    def _legacy_options(cls, data: Any) -> Any:
        # Earlier pipeline files nested the training options under `options:`.
        if isinstance(data, dict) and isinstance(data.get("options"), dict):
            warnings.warn(
                "train: `options:` is deprecated; give the training options directly "
                "in the step's `with:`",
                DeprecationWarning,
                stacklevel=2,
            )
            rest = {k: v for k, v in data.items() if k != "options"}
            # as before: chips, out and max_minutes beside `options:` win over it; the
            # rest of `options:` (e.g. --set train.options.max_steps=3) wins
            merged = {**rest, **data["options"]}
            merged.update({k: rest[k] for k in _LEGACY_TOP if k in rest})
            return merged
        return data


@register_stage("train", TrainStage, command="train")
def train(cfg: TrainStage, ctx: StageContext) -> StageResult:
    """Train a model on a chip store; writes OUT/model.safetensors + OUT/model.json."""
    # domain function imported here: it pulls in torch and Lightning
    from landforge.models.checkpoint import checkpoint_paths
    from landforge.training.train import train as train_model

    weights = train_model(cfg)
    card_path = checkpoint_paths(weights)[1]
    card = json.loads(card_path.read_text())
    return StageResult(
        {"model": card.get("model"), **card.get("metrics", {})},
        [f"{weights} (+ {card_path.name})"],
    )


# ---------------------------------------------------------------- regions
class TrainSequenceStage(StageConfig, SequenceConfig):
    """``landforge train-sequence CONFIG.yaml``: options in SequenceConfig."""

    input_fields = ("regions", "init")
    output_fields = ("out",)
    cli_config_argument = True


@register_stage("train_sequence", TrainSequenceStage, command="train-sequence")
def train_sequence(cfg: TrainSequenceStage, ctx: StageContext) -> StageResult:
    """Train on region A, fine-tune on B, ...; score every region after each step.

    Writes OUT/sequence.json and OUT/sequence.md (step x region OA, mIoU, kappa).
    """
    # domain function imported here: it pulls in torch and Lightning
    from landforge.training.sequence import run_sequence

    path = run_sequence(cfg)
    return StageResult(_matrix_summary(path), [f"{path} (+ {path.with_suffix('.md').name})"])


class CrossDomainStage(StageConfig, CrossDomainConfig):
    """``landforge cross-domain CONFIG.yaml``: options in CrossDomainConfig."""

    input_fields = ("regions", "models")
    output_fields = ("out",)
    cli_config_argument = True


@register_stage("cross_domain", CrossDomainStage, command="cross-domain")
def cross_domain(cfg: CrossDomainStage, ctx: StageContext) -> StageResult:
    """Train a model per region and test it on every region (+ CBST adaptation).

    Writes OUT/cross_domain.json and OUT/cross_domain.md.
    """
    # domain function imported here: it pulls in torch and Lightning
    from landforge.training.crossdomain import run_cross_domain

    path = run_cross_domain(cfg)
    return StageResult(_matrix_summary(path), [f"{path} (+ {path.with_suffix('.md').name})"])


def _matrix_summary(path: Path) -> dict[str, Any]:
    """The head, split and OA / mIoU / kappa matrices of a sequence or cross-domain report."""
    report = json.loads(Path(path).read_text())
    return {k: report[k] for k in ("head", "eval_split", "matrix") if k in report}
