"""Typed, validated configuration shared by every stage and the pipeline file.

A stage config is a pydantic model with ``extra="forbid"`` so a misspelt field is
reported by name. Paths are plain strings, resolved against the run directory by the
pipeline runner, which hashes a stage's inputs and checks its outputs to decide whether
a re-run can skip it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from landforge.errors import InputError

__all__ = [
    "StageConfig",
    "load_yaml",
    "validate",
    "format_validation_error",
]


class StageConfig(BaseModel):
    """Base class of every stage's configuration.

    Subclasses list the names of their path fields in ``input_fields`` (files or
    directories the stage reads: hashed into the manifest) and ``output_fields`` (what
    it writes: must exist for the stage to count as done). A field may hold one path,
    a list of paths or a mapping whose values are paths.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    input_fields: ClassVar[tuple[str, ...]] = ()
    output_fields: ClassVar[tuple[str, ...]] = ()

    def inputs(self) -> list[str]:
        """Paths this stage reads."""
        return [p for name in self.input_fields for p in _flatten_paths(getattr(self, name))]

    def outputs(self) -> list[str]:
        """Paths this stage writes."""
        return [p for name in self.output_fields for p in _flatten_paths(getattr(self, name))]


def _flatten_paths(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [str(value)]
    if isinstance(value, dict):
        return [p for v in value.values() for p in _flatten_paths(v)]
    if isinstance(value, list | tuple):
        return [p for v in value for p in _flatten_paths(v)]
    return []


def load_yaml(path: str | os.PathLike[str], what: str = "config file") -> dict[str, Any]:
    """Read a YAML mapping safely (``yaml.safe_load``); errors name the file and line."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, f"{what} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(p, f"invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise InputError(p, "expected a YAML mapping at the top level")
    return data


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """First pydantic error as 'field.path: message'."""
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    where = ".".join(x for x in (prefix, loc) if x)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    return f"{where}: {msg}" if where else msg


def validate(model: type[BaseModel], data: Any, source: str, prefix: str = "") -> Any:
    """Validate ``data`` into ``model``; a ValidationError becomes an InputError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(source, format_validation_error(exc, prefix)) from None
