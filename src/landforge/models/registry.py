"""Model registry: ``build(name, **cfg)`` instead of importing architectures by name.

Each architecture module registers a builder with :func:`register`. A model's forward
returns a dict of named logits (e.g. ``{"footprint": (N,1,H,W), "use": (N,K,H,W)}``)
so training, inference and evaluation treat single- and multi-task models alike.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch.nn as nn

from landforge.errors import InputError

__all__ = ["register", "build", "available", "builder_options"]

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}

# Modules that register architectures on import (kept lazy: torch models are heavy).
_MODULES = (
    "landforge.models.multitask_unet",
    "landforge.models.hrnet_ocr",
    "landforge.models.baselines",
    "landforge.models.parcel_fusion",
    "landforge.models.inception_time",
    "landforge.models.utae",
    "landforge.models.fusu_net",
)


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model builder under ``name``."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS and _BUILDERS[name] is not fn:
            raise ValueError(f"model {name!r} registered twice")
        _BUILDERS[name] = fn
        return fn

    return deco


def _load_all() -> None:
    for mod in _MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def available() -> list[str]:
    """Names of all registered models."""
    _load_all()
    return sorted(_BUILDERS)


def builder_options(name: str) -> set[str]:
    """Keyword options the builder of ``name`` takes (empty for an unknown model)."""
    import inspect

    _load_all()
    fn = _BUILDERS.get(name)
    if fn is None:
        return set()
    return {
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def build(name: str, **cfg: Any) -> nn.Module:
    """Build the model registered as ``name`` with keyword configuration ``cfg``."""
    _load_all()
    if name not in _BUILDERS:
        raise InputError("model", f"unknown model {name!r}; available: {', '.join(available())}")
    try:
        return _BUILDERS[name](**cfg)
    except TypeError as exc:
        raise InputError("model", f"bad options for {name!r}: {exc}") from None
