"""Typed, validated configuration shared by every stage and the pipeline file.

Every stage has one options model (a pydantic :class:`Options` with ``extra="forbid"``,
so a misspelt field is reported by name). Its fields and defaults are the only
declaration of the stage's options: the Python function takes the model, the CLI
command's flags are generated from it (:mod:`landforge.cli.stagecmd`) and the pipeline
step validates its ``with:`` mapping into it. Paths are plain strings, resolved against
the run directory by the pipeline runner, which hashes a stage's inputs and checks its
outputs to decide whether a re-run can skip it.

Fields whose YAML value is a list or mapping accept the compact text a user types on
the command line too (:data:`IntList` ``"1,2,3"``, :data:`FloatMap`
``"residential=300,industrial=800"``, :data:`StrMap`, :data:`XY`): the parsing lives in
the type, so the CLI and YAML reach the same field through one validator.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

import numpy as np
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from landforge.errors import InputError, OptionError

__all__ = [
    "Options",
    "StageConfig",
    "FloatMap",
    "IntList",
    "StrList",
    "StrMap",
    "XY",
    "jsonable",
    "load_yaml",
    "SchedulerAddress",
    "check_dask_choice",
    "none_word",
    "parse_int_list",
    "validate",
    "format_validation_error",
]


class Options(BaseModel):
    """Base of every options model: unknown fields are errors, assignments validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of field ``name`` (for documentation and help texts)."""
        return cls.model_fields[name].get_default(call_default_factory=True)

    @classmethod
    def build(cls, opts: BaseModel | Mapping[str, Any] | None = None, **overrides: Any) -> Self:
        """``opts`` (this model, a model holding its fields, or a mapping) + overrides.

        The API functions call this so that ``fn(..., opts)``, ``fn(..., window=256)``
        and a stage config that embeds these options all validate the same way. A bad
        value raises :class:`~landforge.errors.OptionError` naming the field.
        """
        if isinstance(opts, BaseModel):
            data = {k: getattr(opts, k) for k in cls.model_fields if k in type(opts).model_fields}
        else:
            data = dict(opts or {})
        data.update(overrides)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise OptionError(error_field(exc) or cls.__name__, error_message(exc)) from None


# ---------------------------------------------------------------- compact CLI values
def parse_int_list(value: Any) -> Any:
    """``"1,2,3"`` -> ``[1, 2, 3]``; lists and None pass through (pydantic checks them)."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
        try:
            return [int(v) for v in items]
        except ValueError:
            raise ValueError(f"expected comma-separated integers, got {value!r}") from None
    return value


def _parse_str_list(value: Any) -> Any:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _parse_pairs(value: Any) -> Any:
    """``"a=1,b=2"`` -> ``{"a": "1", "b": "2"}`` (values converted by the field type)."""
    if not isinstance(value, str):
        return value
    out: dict[str, str] = {}
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise ValueError(f"expected NAME=VALUE pairs separated by commas, got {value!r}")
        out[key.strip()] = val.strip()
    return out


def _parse_xy(value: Any) -> Any:
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        if len(parts) != 2:
            raise ValueError(f"expected X,Y like 400300,3400300; got {value!r}")
        return parts
    return value


#: 1-based band numbers etc.: YAML list or ``"1,2,3"``.
IntList = Annotated[list[int], BeforeValidator(parse_int_list)]
#: names: YAML list or ``"a,b,c"``.
StrList = Annotated[list[str], BeforeValidator(_parse_str_list)]
#: ``{name: number}``: YAML mapping or ``"a=1,b=2.5"``.
FloatMap = Annotated[dict[str, float], BeforeValidator(_parse_pairs)]
#: ``{name: text}``: YAML mapping or ``"footprint=fp.tif,use=use.tif"``.
StrMap = Annotated[dict[str, str], BeforeValidator(_parse_pairs)]
#: a point: YAML ``[x, y]`` or ``"x,y"``.
XY = Annotated[tuple[float, float], BeforeValidator(_parse_xy)]


def none_word(value: Any) -> Any:
    """``"none"`` (as typed on the command line) and ``""`` mean None."""
    if isinstance(value, str) and value.strip().lower() in ("", "none"):
        return None
    return value


#: a scheduler address: ``tcp://host:8786`` (any Dask protocol) or ``host:8786``
_ADDRESS = re.compile(r"^([a-z][a-z0-9+.-]*://\S+|[^\s:/]+:\d+)$")


def _scheduler_address(value: Any) -> Any:
    """A Dask scheduler address (``tcp://host:8786``), None for in-process."""
    value = none_word(value)
    if isinstance(value, str) and value.strip() in ("inprocess", "in-process"):
        return None
    if isinstance(value, str) and not _ADDRESS.match(value.strip()):
        raise ValueError(
            f"expected a Dask scheduler address such as tcp://host:8786, got {value!r}"
        )
    return value.strip() if isinstance(value, str) else value


#: The ``scheduler`` field of a block-wise stage: an address, or None (in-process).
SchedulerAddress = Annotated[str | None, BeforeValidator(_scheduler_address)]


def check_dask_choice(workers: int, scheduler: str | None) -> None:
    """Raise OptionError when both a local cluster and a running scheduler are asked for."""
    if workers and scheduler:
        raise OptionError(
            "workers",
            "give either workers (a local Dask cluster) or scheduler (a running one), not both",
        )


def jsonable(obj: Any) -> Any:
    """Strict-JSON form of ``obj``: NaN/inf -> None, numpy -> Python, recursively.

    Mappings keep their nesting (keys become strings), tuples become lists, pydantic
    models their JSON dump, paths strings; anything else falls back to ``str``.
    """
    if isinstance(obj, BaseModel):
        return jsonable(obj.model_dump(mode="json"))
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


class StageConfig(Options):
    """Base class of every stage's configuration (its options model plus its paths).

    Subclasses list the names of their path fields in ``input_fields`` (files or
    directories the stage reads: hashed into the manifest) and ``output_fields`` (what
    it writes: must exist for the stage to count as done). A field may hold one path,
    a list of paths or a mapping whose values are paths.

    The CLI command of the stage is generated from the fields (see
    :mod:`landforge.cli.stagecmd`): each field is a flag ``--field-name`` unless
    ``cli_flags`` names it otherwise, fields in ``cli_arguments`` are positional, fields
    in ``cli_hidden`` are reachable only through ``--config FILE.yaml`` (nested models
    always are). With ``cli_config_argument`` the config file may also be given as the
    command's first positional argument (``landforge train CONFIG.yaml``). Help texts
    are the fields' ``description``.
    """

    input_fields: ClassVar[tuple[str, ...]] = ()
    output_fields: ClassVar[tuple[str, ...]] = ()
    cli_flags: ClassVar[dict[str, str]] = {}
    cli_arguments: ClassVar[tuple[str, ...]] = ()
    cli_hidden: ClassVar[tuple[str, ...]] = ()
    cli_config_argument: ClassVar[bool] = False

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


def error_field(exc: ValidationError) -> str:
    """Dotted field path of the first pydantic error (``""`` for a model-level error)."""
    return ".".join(str(x) for x in exc.errors()[0]["loc"])


def error_message(exc: ValidationError) -> str:
    """The first pydantic error's message, in landforge's words where they differ."""
    err = exc.errors()[0]
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required, not given"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """First pydantic error as 'field.path: message'."""
    where = ".".join(x for x in (prefix, error_field(exc)) if x)
    msg = error_message(exc)
    return f"{where}: {msg}" if where else msg


def validate(model: type[BaseModel], data: Any, source: str, prefix: str = "") -> Any:
    """Validate ``data`` into ``model``; a ValidationError becomes an InputError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(source, format_validation_error(exc, prefix)) from None
    except OptionError as exc:  # a model validator that checks several fields
        where = ".".join(x for x in (prefix, exc.field) if x)
        raise InputError(source, f"{where}: {exc.problem}") from None
