"""Model registry: ``build(name, **cfg)`` instead of importing architectures by name.

Each architecture module registers its builder with one line,
``register("hrnet", HRNetSegmenter, ocr=False)`` (a class or function, and keywords
fixed for that name), or with ``@register("name")`` on a builder function. A model's
forward returns a dict of named logits (e.g. ``{"footprint": (N,1,H,W), "use":
(N,K,H,W)}``) so training, inference and evaluation treat single- and multi-task models
alike.

Contract of a segmentation builder: it takes ``in_channels`` (input bands) and
``classes`` (the class count of its multi-class head, or of its only head), so training
fills both in from the chip store and the heads without knowing the model.
Builders raise :class:`~landforge.errors.OptionError` naming their own argument
(``OptionError("classes", ...)``); :func:`build` reports it as ``model_kwargs.classes``
(the field of a training config and of a model card).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import torch.nn as nn

from landforge.errors import OptionError

__all__ = ["register", "build", "available", "builder_options"]

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}

# Modules that register architectures on import (kept lazy: torch models are heavy).
_MODULES = (
    "landforge.models.multitask_unet",
    "landforge.models.hrnet_ocr",
    "landforge.models.baselines",
    "landforge.models.utae",
    "landforge.models.fusu_net",
    "landforge.models.change_baselines",
    "landforge.models.inception_time",
    "landforge.models.parcel_fusion",
)


def register(name: str, builder: Callable[..., nn.Module] | None = None, **fixed: Any) -> Any:
    """Register ``builder`` (a model class or function) as ``name``.

    ``register(name, builder, **fixed)`` registers it with the keywords ``fixed`` set
    (they are not options of ``name``); ``@register(name)`` decorates a builder.
    """

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        entry = functools.partial(fn, **fixed) if fixed else fn
        old = _BUILDERS.get(name)
        if old is not None and not _same(old, entry):
            raise ValueError(f"model {name!r} registered twice")
        _BUILDERS[name] = entry
        return fn

    return deco(builder) if builder is not None else deco


def _same(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    if isinstance(a, functools.partial) and isinstance(b, functools.partial):
        return a.func is b.func and a.keywords == b.keywords
    return a is b


def _load_all() -> None:
    for mod in _MODULES:
        importlib.import_module(mod)


def available() -> list[str]:
    """Names of all registered models."""
    _load_all()
    return sorted(_BUILDERS)


def _parameters(fn: Callable[..., Any]) -> tuple[set[str], bool]:
    """(named options, whether it takes ``**kwargs``) of a registered builder."""
    fixed = set(fn.keywords) if isinstance(fn, functools.partial) else set()
    params = inspect.signature(fn).parameters.values()
    named = {
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in fixed
    }
    return named, any(p.kind == p.VAR_KEYWORD for p in params)


def builder_options(name: str) -> set[str]:
    """Keyword options the builder of ``name`` takes (empty for an unknown model)."""
    _load_all()
    fn = _BUILDERS.get(name)
    return _parameters(fn)[0] if fn is not None else set()


def build(name: str, **cfg: Any) -> nn.Module:
    """Build the model registered as ``name`` with keyword configuration ``cfg``.

    Raises:
        OptionError: ``model`` (an unknown name) or ``model_kwargs[.OPTION]`` (an
            option the builder does not take or refuses).
    """
    _load_all()
    if name not in _BUILDERS:
        raise OptionError("model", f"unknown model {name!r}; available: {', '.join(available())}")
    fn = _BUILDERS[name]
    named, var_kw = _parameters(fn)
    fixed = set(fn.keywords) if isinstance(fn, functools.partial) else set()
    unknown = sorted(k for k in cfg if k not in named and (k in fixed or not var_kw))
    if unknown:
        raise OptionError(
            "model_kwargs",
            f"bad options for {name!r}: unknown {', '.join(unknown)} "
            f"(options: {', '.join(sorted(named))})",
        )
    try:
        return fn(**cfg)
    except OptionError as exc:
        raise OptionError(".".join(("model_kwargs", exc.field)).rstrip("."), exc.problem) from None
    except TypeError as exc:
        raise OptionError("model_kwargs", f"bad options for {name!r}: {exc}") from None
