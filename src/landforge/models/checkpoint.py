"""Checkpoints: safetensors weights + a JSON model card, never pickle.

A checkpoint is two files side by side: ``NAME.safetensors`` (tensors only, safe to
load from anyone) and ``NAME.json`` (the model card: architecture and its options,
input bands and their normalisation, output heads and classes, taxonomy, training-data
hash, metrics). Loading rebuilds the model from the card through the registry and
loads the weights strictly, so a foreign or corrupt file is refused, not unpickled.

Resumable training state (model, optimizer state, loop counters, callback state, RNG
states: whatever nested mapping Lightning hands over) is one safetensors file too
(:func:`save_state` / :func:`load_state`): its tensors as tensors, everything else as
JSON in the file's metadata, with tuples, non-string keys and non-finite floats tagged
so they come back as they were. Only tensors and JSON values can be stored, so loading
cannot run code.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from landforge.errors import InputError, OptionError
from landforge.io.atomic import atomic_path

__all__ = [
    "ModelCard",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_paths",
    "save_state",
    "load_state",
]

FORMAT = "landforge-checkpoint/1"
STATE_FORMAT = "landforge-train-state/1"
_STATE_KEY = "landforge_train_state"


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
        # one metadata key: safetensors writes a map of several in a random order, and
        # the same weights should give the same bytes
        save_file(state, str(tmp), metadata={"format": FORMAT})
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


# --------------------------------------------------------------------------- training state


def save_state(state: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a nested training state as one safetensors file (atomically); returns path.

    Tensors are stored as tensors (on the CPU); dicts, lists, tuples, strings, numbers,
    booleans and None as JSON in the file's metadata.

    Raises:
        TypeError: a value of another type (it could not be restored without pickle).
    """
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(dict(state), tensors, "state")
    # one metadata key (several are written in a random order): same state, same bytes
    header = {"format": STATE_FORMAT, "state": skeleton}
    meta = {_STATE_KEY: json.dumps(header, allow_nan=False)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state written by :func:`save_state` (tensors on the CPU).

    Raises:
        InputError: not a landforge training-state file (including a pickle).
    """
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    if not p.is_file():
        raise InputError(p, "training state file does not exist")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(
            p, f"not a landforge training state (safetensors) file ({str(exc)[:160]})"
        ) from None
    try:
        header = json.loads(meta.get(_STATE_KEY, "{}"))
    except ValueError:
        header = {}
    if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
        raise InputError(p, f"not a landforge training state (no {STATE_FORMAT!r} metadata)")
    try:
        state = _decode(header["state"], tensors)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(p, f"corrupt training state ({str(exc)[:160]})") from None
    if not isinstance(state, dict):
        raise InputError(p, "corrupt training state (not a mapping)")
    return state


def _encode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    """JSON-able form of ``obj``; its tensors go into ``tensors`` (named ``t0``, ...)."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"$float": repr(obj)}
    if isinstance(obj, torch.Tensor):
        name = f"t{len(tensors)}"
        # a copy of its own: safetensors refuses tensors that share memory
        tensors[name] = obj.detach().to("cpu", copy=True).contiguous()
        return {"$tensor": name}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {"$tuple": [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _encode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        return {
            "$items": [
                [_encode(k, tensors, where), _encode(v, tensors, f"{where}[{k!r}]")]
                for k, v in obj.items()
            ]
        }
    raise TypeError(f"{where}: cannot store a {type(obj).__name__} in a training state")


def _decode(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        ((tag, value),) = obj.items()
        if tag == "$tensor":
            return tensors[value]
        if tag == "$tuple":
            return tuple(_decode(v, tensors) for v in value)
        if tag == "$float":
            return float(value)
        if tag == "$items":
            return {_hashable(_decode(k, tensors)): _decode(v, tensors) for k, v in value}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def _hashable(key: Any) -> Any:
    if isinstance(key, list | dict | torch.Tensor):
        raise TypeError(f"unusable mapping key {key!r}")
    return key
