"""CLI commands generated from the stages' options models.

One function, :func:`stage_command`, turns a registered stage into a typer command:
every field of its options model becomes a flag (``--field-name``, or the name in the
model's ``cli_flags``; fields in ``cli_arguments`` are positional), with the field's
description as help and its default shown but *not* repeated: a flag the user did not
give is left out, so the model's default applies. Every command also takes ``--config
FILE.yaml`` holding any of the fields (nested models, e.g. a training config, are
reachable only this way); flags override the file. A stage whose model sets
``cli_config_argument`` also takes that file as its first positional argument
(``landforge train CONFIG.yaml``). The same model validates a pipeline step's ``with:``,
so CLI and YAML reach the same fields with the same defaults.

Errors name what the user wrote: a bad value is reported against its flag
(``error: --batch: ...``), a bad field in ``--config`` against the file and field.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from landforge.config import StageConfig, error_field, error_message, load_yaml
from landforge.errors import InputError, OptionError
from landforge.io.atomic import check_writable
from landforge.pipeline import stages as _stages  # noqa: F401  (registers them)
from landforge.pipeline.registry import (
    StageContext,
    StageResult,
    StageType,
    registered_stages,
)

__all__ = [
    "CliParam",
    "add_stage_commands",
    "cli_params",
    "flag_for",
    "stage_command",
    "validate_cli",
]

_CONFIG_PARAM = "config_file_"
_CONFIG_ARG = "config_argument_"


def flag_for(config: type[StageConfig], field: str) -> str:
    """How the CLI spells field ``field`` (``--field-name`` or the model's override).

    A dotted field (``optimizer.lr``) or one without a flag is named as the field.
    """
    top = field.split(".")[0]
    if top != field or top not in config.model_fields:
        return field
    if top in config.cli_arguments:
        return top.upper()
    if top in config.cli_hidden or _is_model(config.model_fields[top].annotation):
        return field
    return config.cli_flags.get(top, "--" + top.replace("_", "-")).split()[0]


def _short_flags(config: type[StageConfig], field: str) -> list[str]:
    """Extra spellings after the flag in ``cli_flags`` (``{"out": "--out -o"}``)."""
    return config.cli_flags.get(field, "").split()[1:]


@dataclass(frozen=True)
class CliParam:
    """One CLI parameter generated from an options field."""

    field: str
    flag: str  # "--name" for options, "NAME" for positional arguments
    short: tuple[str, ...]  # further spellings, e.g. ("-o",)
    kind: str  # "bool", "int", "float", "text", "multi" (repeatable text)
    positional: bool
    help: str
    default: Any  # the model's default (None when required or None)
    required: bool


def cli_params(config: type[StageConfig]) -> list[CliParam]:
    """The CLI parameters of an options model, in field order."""
    params = []
    for name, info in config.model_fields.items():
        if name in config.cli_hidden or _is_model(info.annotation):
            continue
        positional = name in config.cli_arguments
        kind = _kind(info.annotation)
        if positional and kind == "text" and _is_list(info.annotation):
            kind = "multi"
        params.append(
            CliParam(
                field=name,
                flag=flag_for(config, name),
                short=tuple(_short_flags(config, name)),
                kind=kind,
                positional=positional,
                help=info.description or "",
                default=None if info.is_required() else info.get_default(call_default_factory=True),
                required=info.is_required(),
            )
        )
    return params


def validate_cli(
    config: type[StageConfig],
    values: dict[str, Any],
    config_file: Path | None = None,
    from_file: frozenset[str] = frozenset(),
) -> StageConfig:
    """Validate CLI values into ``config``; errors name the flag (or the file's field).

    ``from_file`` holds the fields whose value came from ``config_file`` (no flag gave
    them): an error in one of those names the file and the field, not the flag.
    """
    try:
        return config.model_validate(values)
    except ValidationError as exc:
        raise InputError(
            _where(config, error_field(exc), config_file, from_file), error_message(exc)
        ) from None
    except OptionError as exc:  # raised by a model validator that checks several fields
        raise InputError(_where(config, exc.field, config_file, from_file), exc.problem) from None


def _where(
    config: type[StageConfig],
    field: str,
    config_file: Path | None,
    from_file: frozenset[str] = frozenset(),
) -> str:
    flag = flag_for(config, field) if field else ""
    if flag and flag != field and field.split(".")[0] not in from_file:
        return flag
    if config_file is not None:
        return f"{config_file}: {field}" if field else str(config_file)
    return field or "options"


def stage_command(stage: StageType) -> Callable[..., None]:
    """A typer command function for ``stage`` (register it with ``app.command(name)``)."""
    config = stage.config
    params = cli_params(config)

    def command(**kwargs: Any) -> None:
        config_file = kwargs.pop(_CONFIG_PARAM, None)
        config_arg = kwargs.pop(_CONFIG_ARG, None)
        if config_arg is not None and config_file is not None:
            raise InputError("--config", "give the config file once: as CONFIG or --config")
        what = "--config file" if config_arg is None else "config file"
        config_file = config_file if config_arg is None else config_arg
        values: dict[str, Any] = {}
        if config_file is not None:
            values.update(load_yaml(config_file, what=what))
        from_file = set(values)
        for p in params:
            value = kwargs.get(p.field)
            if value is None or (p.kind == "multi" and not value):
                continue  # not given: the model's default applies
            values[p.field] = list(value) if p.kind == "multi" else value
            from_file.discard(p.field)
        cfg = validate_cli(config, values, config_file, frozenset(from_file))
        for out in cfg.outputs():  # fail before the work, not after it
            check_writable(out)
        try:
            result = stage.fn(cfg, StageContext(Path.cwd(), stage.name, cli=True))
        except OptionError as exc:
            raise InputError(flag_for(config, exc.field), exc.problem) from None
        except InputError as exc:
            named = _input_named(cfg, exc.source)
            if named is None:
                raise
            raise InputError(named, exc.problem) from exc
        for line in (result or StageResult()).lines:
            typer.echo(line)

    signature = [_parameter(p) for p in params]
    if config.cli_config_argument:
        signature.insert(0, _config_argument())
    signature.append(
        inspect.Parameter(
            _CONFIG_PARAM,
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                None,
                "--config",
                help="YAML file with any of this stage's fields (as in a pipeline's "
                "`with:`); flags override it.",
                show_default=False,
            ),
            annotation=Path | None,
        )
    )
    command.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    command.__doc__ = _doc(stage)
    command.__name__ = stage.name
    return command


def _input_named(cfg: StageConfig, source: str | None) -> str | None:
    """The file (or flag) the user gave for an input that library code named by role.

    Library code that gets data, not paths, names it by its field (``"boundary"``): the
    CLI shows the user's path for it instead (the flag for a list of paths).
    """
    if source is None or source not in cfg.input_fields:
        return None
    value = getattr(cfg, source, None)
    if isinstance(value, str | Path):
        return str(value)
    return flag_for(type(cfg), source) if value else None


def _config_argument() -> inspect.Parameter:
    """The optional positional CONFIG of a stage with ``cli_config_argument``."""
    return inspect.Parameter(
        _CONFIG_ARG,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Argument(
            None,
            metavar="CONFIG",
            help="YAML file with any of this stage's fields (as in a pipeline's `with:`); "
            "flags override it. The same as --config.",
            show_default=False,
        ),
        annotation=Path | None,
    )


def add_stage_commands(app: typer.Typer) -> None:
    """Add a command for every registered stage that names one.

    ``"parcels label"`` goes into the ``parcels`` group (created if no module made it);
    a command already registered by hand is left alone.
    """
    groups = {g.name: g.typer_instance for g in app.registered_groups if g.name}
    for stage in registered_stages().values():
        if not stage.command:
            continue
        *group_words, name = stage.command
        target = app
        if group_words:
            group = groups.get(group_words[0])
            if group is None:
                group = typer.Typer(no_args_is_help=True, help=f"{group_words[0]} commands.")
                app.add_typer(group, name=group_words[0])
                groups[group_words[0]] = group
            target = group
        if name in {c.name for c in target.registered_commands}:
            continue
        target.command(name)(stage_command(stage))


def _doc(stage: StageType) -> str:
    doc = inspect.getdoc(stage.fn) or stage.description
    return f"{doc}\n\nPipeline step: `type: {stage.name}` (see `landforge stages {stage.name}`)."


_ANNOTATIONS: dict[str, Any] = {
    "bool": bool | None,
    "int": int | None,
    "float": float | None,
    "text": str | None,
    "multi": list[str] | None,
}


def _parameter(p: CliParam) -> inspect.Parameter:
    help_text = p.help
    if p.required:
        help_text += " (required)"
    elif p.default not in (None, [], {}, ""):
        help_text += f" (default: {_show(p.default)})"
    if p.positional:
        default: Any = typer.Argument(None, help=help_text, show_default=False, metavar=p.flag)
    else:
        if p.kind == "bool":
            decls = [f"{p.flag}/--no-{p.flag[2:]}", *p.short]
        else:
            decls = [p.flag, *p.short]
        default = typer.Option(None, *decls, help=help_text, show_default=False)
    return inspect.Parameter(
        p.field, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=_ANNOTATIONS[p.kind]
    )


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


# ---------------------------------------------------------------- annotations
def _strip_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _kind(annotation: Any) -> str:
    ann = _strip_optional(annotation)
    if ann is bool:
        return "bool"
    if ann is int:
        return "int"
    if ann is float:
        return "float"
    if typing.get_origin(ann) is list and typing.get_args(ann) in ((str,), (Path,)):
        return "multi"
    return "text"  # parsed by the field's own validator (IntList, FloatMap, Literal, ...)


def _is_list(annotation: Any) -> bool:
    ann = _strip_optional(annotation)
    if typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    return typing.get_origin(ann) is list


def _is_model(annotation: Any) -> bool:
    ann = _strip_optional(annotation)
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def field_rows(config: type[StageConfig]) -> list[tuple[str, str, str, str, str]]:
    """(field, type, default, CLI flag, help) for every field: ``landforge stages NAME``."""
    rows = []
    for name, info in config.model_fields.items():
        rows.append(
            (
                name,
                _type_name(info),
                "required" if info.is_required() else repr(_jsonish(info)),
                flag_for(config, name) if flag_for(config, name) != name else "--config",
                info.description or "",
            )
        )
    return rows


def _jsonish(info: FieldInfo) -> Any:
    value = info.get_default(call_default_factory=True)
    return value.model_dump() if isinstance(value, BaseModel) else value


def _type_name(info: FieldInfo) -> str:
    return _annotation_name(info.annotation)


def _annotation_name(ann: Any) -> str:
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _annotation_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_annotation_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None:
        inner = ", ".join(_annotation_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if ann is type(None):
        return "None"
    return getattr(ann, "__name__", str(ann))
