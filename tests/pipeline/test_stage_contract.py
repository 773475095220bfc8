"""Every stage is one options model: reachable from the CLI and from YAML, same defaults.

Walks the stage registry: each stage has a CLI command in the real ``landforge`` app,
every field of its options model has a flag (or is positional, or reachable through
``--config`` when it is a nested model), and the command builds exactly the config that
a pipeline step with the same values builds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from landforge.cli import app
from landforge.cli.stagecmd import cli_params, flag_for, stage_command
from landforge.config import validate
from landforge.pipeline.registry import StageResult, registered_stages

# commands that are not stages: they run pipelines or list things
NOT_STAGES = {
    ("run",),
    ("demo",),
    ("stages",),
    ("taxonomy", "list"),
    ("taxonomy", "show"),
    ("parcels",),  # the group itself: `landforge parcels --roads ...` = parcels generate
    # need a running Label Studio: generated commands, not pipeline steps (cli/label.py)
    ("label", "push"),
    ("label", "pull"),
}

# values for required fields where a generic placeholder would not validate
REQUIRED: dict[str, dict[str, Any]] = {
    "poi_maps": {"dmax": {"residential": 300.0}},
    "chips": {"labels": {"use": "a.tif"}},
    "parcels": {"roads": "roads.gpkg"},
    "train_sequence": {"regions": {"a": "chips/a"}},
    "cross_domain": {"regions": {"a": "chips/a"}},
    "grade": {"predictions": "p.parquet"},  # predictions or parcels: one is needed
    "curate_similar": {"patches": "p1"},  # a query: patch ids or a new image
    "change_evaluate": {"pred": "maps", "truth1": "a.tif", "truth2": "b.tif"},  # maps mode
}

# the built-in stages (tests register their own toy stages too)
STAGES = {
    name: st
    for name, st in registered_stages().items()
    if st.fn.__module__.startswith("landforge.")
}


def _commands(cmd: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
        out: set[tuple[str, ...]] = set()
        if prefix and getattr(cmd, "invoke_without_command", False):
            out.add(prefix)
        for name, sub in cmd.commands.items():
            out |= _commands(sub, (*prefix, name))
        return out
    return {prefix}


def _placeholder(kind: str) -> Any:
    return {"int": 1, "float": 1.0, "bool": False, "multi": ["a.tif"]}.get(kind, "a.tif")


def _required(stage_name: str) -> dict[str, Any]:
    config = STAGES[stage_name].config
    values = {p.field: _placeholder(p.kind) for p in cli_params(config) if p.required}
    values.update(REQUIRED.get(stage_name, {}))
    return values


def _argv(stage_name: str, values: dict[str, Any]) -> list[str]:
    config = STAGES[stage_name].config
    argv: list[str] = []
    for p in cli_params(config):
        if p.field not in values:
            continue
        v = values[p.field]
        items = v if isinstance(v, list) and p.kind == "multi" else [v]
        for item in items:
            text = _text(item)
            if p.positional:
                argv.append(text)
            elif p.kind == "bool":
                argv.append(p.flag if item else f"--no-{p.flag[2:]}")
            else:
                argv += [p.flag, text]
    return argv


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _cli_config(stage_name: str, argv: list[str]) -> Any:
    """Run the stage's generated command with a capturing function; return its config."""
    seen: list[Any] = []
    stage = dataclasses.replace(
        STAGES[stage_name], fn=lambda cfg, ctx: seen.append(cfg) or StageResult()
    )
    probe = typer.Typer()
    probe.command("probe")(stage_command(stage))
    probe.command("unused")(lambda: None)  # two commands: typer keeps the name
    result = CliRunner().invoke(probe, ["probe", *argv])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return seen[0]


def test_every_command_is_a_stage_or_listed():
    commands = _commands(get_command(app))
    stage_commands = {st.command for st in STAGES.values() if st.command}
    assert commands - stage_commands - NOT_STAGES == set(), "commands that are not stages"
    assert stage_commands <= commands, "stage commands missing from the CLI"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_has_a_command(name):
    assert STAGES[name].command, f"stage {name} has no CLI command"


@pytest.mark.parametrize("name", sorted(n for n in STAGES if STAGES[n].command))
def test_cli_and_yaml_build_the_same_config(name):
    config = STAGES[name].config
    required = _required(name)
    from_yaml = validate(config, required, "pipeline.yaml", prefix=f"stages.{name}.with")
    from_cli = _cli_config(name, _argv(name, required))
    assert from_cli == from_yaml  # the same defaults: they live only in the model


@pytest.mark.parametrize("name", sorted(n for n in STAGES if STAGES[n].command))
def test_every_field_reachable_with_its_default(name):
    config = STAGES[name].config
    params = {p.field: p for p in cli_params(config)}
    required = _required(name)
    baseline = _cli_config(name, _argv(name, required))
    for field, info in config.model_fields.items():
        if field not in params:  # a nested model: reachable through --config only
            assert flag_for(config, field) == field
            continue
        p = params[field]
        assert p.default == (
            None if info.is_required() else info.get_default(call_default_factory=True)
        )
        if p.required or p.default in (None, [], {}):
            continue
        given = _cli_config(name, _argv(name, {**required, field: p.default}))
        assert given == baseline, f"{p.flag} {p.default!r} does not reach {field}"
