"""The train, train_sequence and cross_domain stages: CLI (a positional config, flags
that override it, errors naming the flag) and pipeline steps."""

from __future__ import annotations

import json
import warnings

import pytest
import typer
import yaml
from typer.testing import CliRunner

from landforge.cli import main
from landforge.cli.stagecmd import stage_command
from landforge.config import StageConfig
from landforge.errors import InputError
from landforge.pipeline.registry import StageResult, StageType, get_stage
from landforge.pipeline.runner import load_pipeline, run_pipeline
from landforge.training.options import TrainConfig

TINY_MODEL = {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 8]}
BASE = {"model_kwargs": TINY_MODEL, "batch_size": 2, "max_steps": 1, "augment": False}


def _yaml(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


# ---------------------------------------------------------------- the CLI mechanism
class _Probe(StageConfig):
    cli_config_argument = True
    size: int = 1
    name: str = "x"


def _probe(config: type[StageConfig]) -> tuple[typer.Typer, list]:
    seen: list = []
    stage = StageType("probe", config, lambda cfg, ctx: seen.append(cfg) or StageResult(), "", None)
    app = typer.Typer()
    app.command("probe")(stage_command(stage))
    app.command("unused")(lambda: None)  # two commands: typer keeps the name
    return app, seen


def test_config_as_positional_argument_or_option_flags_override(tmp_path):
    cfg = _yaml(tmp_path / "c.yaml", {"size": 3, "name": "file"})
    app, seen = _probe(_Probe)
    runner = CliRunner()
    assert runner.invoke(app, ["probe", str(cfg)]).exit_code == 0
    assert runner.invoke(app, ["probe", "--config", str(cfg)]).exit_code == 0
    assert runner.invoke(app, ["probe", str(cfg), "--size", "5"]).exit_code == 0
    assert [(c.size, c.name) for c in seen] == [(3, "file"), (3, "file"), (5, "file")]
    both = runner.invoke(app, ["probe", str(cfg), "--config", str(cfg)])
    assert isinstance(both.exception, InputError) and "once" in str(both.exception)


def test_without_the_flag_a_stage_takes_no_positional_config(tmp_path):
    class Plain(StageConfig):
        size: int = 1

    app, _ = _probe(Plain)
    result = CliRunner().invoke(app, ["probe", str(_yaml(tmp_path / "c.yaml", {"size": 2}))])
    assert result.exit_code == 2  # an unexpected extra argument


# ---------------------------------------------------------------- train
def test_train_command_flags_override_the_config_file(toy_store, tmp_path, capsys):
    cfg = _yaml(
        tmp_path / "t.yaml",
        {"chips": str(toy_store), "out": str(tmp_path / "file"), "max_steps": 5, **BASE},
    )
    out = tmp_path / "flag"
    assert main(["train", str(cfg), "--out", str(out), "--max-steps", "1", "--no-augment"]) == 0
    assert f"{out / 'model.safetensors'} (+ model.json)" in capsys.readouterr().out
    run = json.loads((out / "train_config.json").read_text())
    assert run["max_steps"] == 1 and run["chips"] == str(toy_store)
    assert not (tmp_path / "file").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "0"], "error: --lr: Input should be greater than 0"),
        (["--batch-size", "0"], "error: --batch-size: "),
        (["--optimizer", "sgd"], "error: --optimizer: "),
        (["--model", "nope"], "error: --model: unknown model 'nope'"),
        (["--resume", "CHIPS"], "error: --resume: CHIPS: not a landforge training directory"),
        (["--init", "PICKLE"], "error: --init: PICKLE: not a landforge checkpoint"),
    ],
)
def test_train_errors_name_the_flag(toy_store, tmp_path, capsys, argv, message):
    cfg = _yaml(tmp_path / "t.yaml", {"chips": str(toy_store), "out": str(tmp_path / "r"), **BASE})
    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"\x80\x04K\x01.")
    paths = {"CHIPS": str(toy_store), "PICKLE": str(pickle)}
    argv = [paths.get(a, a) for a in argv]
    message = message.replace("CHIPS", paths["CHIPS"]).replace("PICKLE", paths["PICKLE"])
    assert main(["train", str(cfg), *argv]) == 2
    assert message in capsys.readouterr().err


def test_train_errors_in_the_file_name_the_file_and_field(toy_store, tmp_path, capsys):
    heads = {"roads": {"label": "roads", "classes": ["road"]}}
    cfg = _yaml(tmp_path / "t.yaml", {"chips": str(toy_store), "heads": heads, **BASE})
    assert main(["train", str(cfg)]) == 2
    assert "error: heads.roads.label: chip store" in capsys.readouterr().err
    bad = _yaml(tmp_path / "b.yaml", {"chips": str(toy_store), "model_kwargs": {"colour": 1}})
    assert main(["train", str(bad)]) == 2
    assert "error: model_kwargs: bad options for 'multitask_unet'" in capsys.readouterr().err


def test_sequence_and_cross_domain_errors_name_flag_or_field(tmp_path, capsys):
    assert main(["train-sequence", "--out", "o", "--regions", "a"]) == 2
    assert "error: --regions: expected NAME=VALUE pairs" in capsys.readouterr().err
    cfg = _yaml(tmp_path / "x.yaml", {"out": "o", "regions": {"a": "c"}, "cbst": {}})
    assert main(["cross-domain", str(cfg)]) == 2
    assert f"error: {cfg}: base.heads: cbst needs exactly one" in capsys.readouterr().err
    assert main(["cross-domain", str(cfg), "--eval-split", "val", "--regions", "a="]) == 2
    assert "--regions" in capsys.readouterr().err


# ---------------------------------------------------------------- pipelines
def test_pipeline_with_a_train_sequence_step(toy_store, other_store, tmp_path):
    pipe = _yaml(
        tmp_path / "p.yaml",
        {
            "name": "seq",
            "stages": [
                {
                    "name": "seq",
                    "type": "train_sequence",
                    "with": {
                        "out": "seq",
                        "regions": {"a": str(toy_store), "b": str(other_store)},
                        "base": BASE,
                    },
                }
            ],
        },
    )
    manifest = run_pipeline(pipe, tmp_path / "run")
    step = manifest["stages"]["seq"]
    assert step["status"] == "done" and step["summary"]["head"] == "use"
    assert len(step["summary"]["matrix"]["oa"]) == 2
    assert (tmp_path / "run" / "seq" / "sequence.md").is_file()
    assert (tmp_path / "run" / "seq" / "steps" / "02_b" / "model.safetensors").is_file()


def test_pipeline_validation_names_the_step_field(tmp_path):
    step = {"name": "xd", "type": "cross_domain", "with": {"out": "xd", "regions": {"a": "c"}}}
    ok = _yaml(tmp_path / "ok.yaml", {"name": "p", "stages": [step]})
    assert load_pipeline(ok).stages[0].with_["regions"] == {"a": "c"}
    step["with"]["cbst"] = {"rounds": 0}
    bad = _yaml(tmp_path / "bad.yaml", {"name": "p", "stages": [step]})
    with pytest.raises(InputError, match=r"stages\.xd\.with\.cbst\.rounds: "):
        load_pipeline(bad)
    step["with"]["cbst"] = {}
    with pytest.raises(InputError, match=r"stages\.xd\.with\.base\.heads: cbst needs"):
        load_pipeline(_yaml(tmp_path / "bad.yaml", {"name": "p", "stages": [step]}))
    step["with"] = {"out": "s", "regions": {"a": "c"}, "base": {"chips": "c"}}
    step["type"] = "train_sequence"
    with pytest.raises(InputError, match=r"stages\.xd\.with\.base\.chips: is set per step"):
        load_pipeline(_yaml(tmp_path / "bad.yaml", {"name": "p", "stages": [step]}))


def test_train_step_options_block_is_a_deprecated_alias():
    config = get_stage("train").config
    flat = config.model_validate({"chips": "c", "max_minutes": 2, "epochs": 3, "lr": 0.01})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        legacy = config.model_validate(
            {"chips": "c", "max_minutes": 2, "options": {"epochs": 3, "lr": 0.01}}
        )
    assert legacy == flat
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert TrainConfig.build(legacy) == TrainConfig.build(flat)
