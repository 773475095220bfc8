"""The stage registry: every stage type, its options model and its CLI command name.

A stage is ``fn(cfg, ctx) -> StageResult`` where ``cfg`` is the stage's options model
(a :class:`~landforge.config.StageConfig`). Registering it here makes it a pipeline
step (``type: NAME`` in a pipeline file) and, when ``command`` is given, a CLI command
whose flags are generated from the same model (:mod:`landforge.cli.stagecmd`).

Imports run ``runner -> stages -> registry``: this module imports no stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from landforge.config import StageConfig
from landforge.errors import InputError

__all__ = [
    "StageContext",
    "StageResult",
    "StageType",
    "get_stage",
    "register_stage",
    "registered_stages",
]


@dataclass
class StageResult:
    """What a stage function returns.

    Attributes:
        summary: key numbers for the manifest and the report (JSON-able).
        lines: what the CLI command prints for a person (the pipeline logs the summary).
    """

    summary: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


@dataclass
class StageContext:
    """Where a stage runs: the run directory and the stage's own name.

    From the CLI the run directory is the working directory and ``name`` the type.
    """

    run_dir: Path
    name: str
    seed: int = 0
    cli: bool = False


StageFn = Callable[[Any, StageContext], StageResult | None]


@dataclass(frozen=True)
class StageType:
    """A registered stage: type name, options model, function, CLI command words."""

    name: str
    config: type[StageConfig]
    fn: StageFn
    description: str
    command: tuple[str, ...] | None


_STAGES: dict[str, StageType] = {}


def register_stage(
    type_name: str, config: type[StageConfig], command: str | None = None
) -> Callable[[StageFn], StageFn]:
    """Register ``fn(cfg, ctx) -> StageResult`` as the stage type ``type_name``.

    Args:
        type_name: the ``type:`` of a pipeline step.
        config: the stage's options model.
        command: CLI command words (``"predict"``, ``"parcels label"``); None: the
            stage is a pipeline step only (its CLI command is written by hand).
    """

    def deco(fn: StageFn) -> StageFn:
        doc = (fn.__doc__ or "").strip().splitlines()
        words = tuple(command.split()) if command else None
        _STAGES[type_name] = StageType(type_name, config, fn, doc[0] if doc else "", words)
        return fn

    return deco


def registered_stages() -> dict[str, StageType]:
    """Registered stage types by name (sorted)."""
    return dict(sorted(_STAGES.items()))


def get_stage(type_name: str, source: str = "stage") -> StageType:
    """The stage type ``type_name``; an unknown name is an InputError naming ``source``."""
    try:
        return _STAGES[type_name]
    except KeyError:
        known = ", ".join(sorted(_STAGES))
        raise InputError(source, f"unknown stage type {type_name!r}; known: {known}") from None
