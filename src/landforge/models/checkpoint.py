"""Checkpoints: safetensors weights + a JSON model card, never pickle.

A checkpoint is two files side by side: ``NAME.safetensors`` (tensors only, safe to
load from anyone) and ``NAME.json`` (the model card: architecture and its options,
input bands and their normalisation, output heads and classes, taxonomy, training-data
hash, metrics). Loading rebuilds the model from the card through the registry and
loads the weights strictly, so a foreign or corrupt file is refused, not unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch.nn as nn
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from landforge.errors import InputError, OptionError
from landforge.io.atomic import atomic_path

__all__ = ["ModelCard", "save_checkpoint", "load_checkpoint", "checkpoint_paths"]

FORMAT = "landforge-checkpoint/1"


class ModelCard(BaseModel):
    """What a user (and the predictor) needs to know to run a model correctly."""

    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    model: str = Field(description="registry name, e.g. 'multitask_unet'")
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    bands: list[str] = Field(description="input band names in order (image bands, then extras)")
    mean: list[float] = Field(description="per-band normalisation mean (raw units)")
    std: list[float] = Field(description="per-band normalisation std (raw units)")
    heads: dict[str, list[str]] = Field(
        description="output head -> class names; a binary head has one name"
    )
    taxonomy: str | None = None
    gsd_m: float | None = None
    training_data_hash: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    created: str | None = None
    notes: str | None = None


def checkpoint_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(weights, card) paths for a checkpoint given either file or the stem."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in {".safetensors", ".json"} else p
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_checkpoint(model: nn.Module, card: ModelCard, path: str | os.PathLike[str]) -> Path:
    """Write ``model``'s state dict as safetensors and ``card`` as JSON; returns weights path."""
    from safetensors.torch import save_file

    weights, card_path = checkpoint_paths(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT, "model": card.model})
    with atomic_path(card_path) as tmp:
        tmp.write_text(card.model_dump_json(indent=2))
    return weights


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[nn.Module, ModelCard]:
    """Rebuild the model described by the card and load its weights (strict)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from landforge.models.registry import build

    weights, card_path = checkpoint_paths(path)
    if not weights.exists():
        raise InputError(weights, "checkpoint weights do not exist")
    if not card_path.exists():
        raise InputError(card_path, "model card (JSON beside the weights) does not exist")
    try:
        card = ModelCard.model_validate(json.loads(card_path.read_text()))
    except (json.JSONDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise InputError(card_path, f"not a landforge model card ({first})") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(weights, f"not a safetensors file ({str(exc)[:200]})") from None
    try:
        model = build(card.model, **card.model_kwargs)
    except OptionError as exc:  # the card names a model or options this version lacks
        raise InputError(card_path, f"{exc.field}: {exc.problem}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:200]
        raise InputError(weights, f"weights do not fit model {card.model!r} ({first})") from None
    model.eval()
    return model, card
