"""The pipeline runner: manifest, skip on re-run, resume after an interruption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from landforge.config import StageConfig
from landforge.errors import InputError
from landforge.pipeline import StageResult, register_stage, run_pipeline
from landforge.pipeline.runner import load_pipeline

CALLS: list[str] = []
FAIL = {"on": None}


class _WriteCfg(StageConfig):
    output_fields = ("out",)
    out: str
    text: str = "hello"


class _UpperCfg(StageConfig):
    input_fields = ("src",)
    output_fields = ("out",)
    src: str
    out: str


@register_stage("test_write", _WriteCfg)
def _write(cfg: _WriteCfg, ctx) -> StageResult:
    """Write a text file."""
    CALLS.append(ctx.name)
    Path(cfg.out).write_text(cfg.text)
    return StageResult({"chars": len(cfg.text)})


@register_stage("test_upper", _UpperCfg)
def _upper(cfg: _UpperCfg, ctx) -> StageResult:
    """Upper-case a text file (fails on demand, to simulate an interruption)."""
    CALLS.append(ctx.name)
    if FAIL["on"] == ctx.name:
        raise KeyboardInterrupt
    Path(cfg.out).write_text(Path(cfg.src).read_text().upper())
    return StageResult()


def _pipeline(tmp_path: Path, text: str = "hello") -> Path:
    p = tmp_path / "pipe.yaml"
    p.write_text(
        f"""
name: toy
stages:
  - name: a
    type: test_write
    with: {{out: a.txt, text: {text}}}
  - name: b
    type: test_upper
    with: {{src: a.txt, out: b.txt}}
  - name: c
    type: test_upper
    with: {{src: b.txt, out: c.txt}}
"""
    )
    return p


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    FAIL["on"] = None


def test_manifest_records_inputs_config_outputs_and_timings(tmp_path):
    run = tmp_path / "run"
    manifest = run_pipeline(_pipeline(tmp_path), run)
    assert (run / "c.txt").read_text() == "HELLO"
    on_disk = json.loads((run / "manifest.json").read_text())
    assert on_disk["stages"].keys() == {"a", "b", "c"}
    b = on_disk["stages"]["b"]
    assert b["status"] == "done" and b["outputs"] == ["b.txt"]
    assert list(b["inputs"]) == ["a.txt"]
    assert b["inputs"]["a.txt"] == manifest["stages"]["b"]["inputs"]["a.txt"]
    assert b["seconds"] >= 0 and b["config"] == {"src": "a.txt", "out": "b.txt"}
    assert on_disk["stages"]["a"]["summary"] == {"chars": 5}


def test_rerun_skips_finished_stages(tmp_path):
    run = tmp_path / "run"
    pipe = _pipeline(tmp_path)
    run_pipeline(pipe, run)
    CALLS.clear()
    run_pipeline(pipe, run)
    assert CALLS == []


def test_changed_config_reruns_that_stage_and_downstream(tmp_path):
    run = tmp_path / "run"
    run_pipeline(_pipeline(tmp_path), run)
    CALLS.clear()
    run_pipeline(_pipeline(tmp_path, text="bye"), run)
    assert CALLS == ["a", "b", "c"]
    assert (run / "c.txt").read_text() == "BYE"


def test_interrupted_run_resumes_at_first_unfinished_stage(tmp_path):
    run = tmp_path / "run"
    pipe = _pipeline(tmp_path)
    FAIL["on"] = "c"
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(pipe, run)
    state = json.loads((run / "manifest.json").read_text())["stages"]
    assert state["c"]["status"] == "failed" and state["b"]["status"] == "done"
    assert not (run / "c.txt").exists()
    FAIL["on"] = None
    CALLS.clear()
    run_pipeline(pipe, run)
    assert CALLS == ["c"]


def test_moved_run_directory_still_skips(tmp_path):
    pipe = _pipeline(tmp_path)
    run_pipeline(pipe, tmp_path / "run")
    (tmp_path / "run").rename(tmp_path / "moved")
    CALLS.clear()
    run_pipeline(pipe, tmp_path / "moved")
    assert CALLS == []


def test_deleted_output_is_rebuilt(tmp_path):
    run = tmp_path / "run"
    pipe = _pipeline(tmp_path)
    run_pipeline(pipe, run)
    (run / "b.txt").unlink()
    CALLS.clear()
    run_pipeline(pipe, run)
    assert CALLS == ["b"]  # c's input is byte-identical again, so c stays done


def test_nested_override_and_bad_override(tmp_path):
    from landforge.pipeline.runner import load_pipeline

    spec = load_pipeline(_pipeline(tmp_path), {"a.text": "xy"})
    assert spec.stages[0].with_["text"] == "xy"
    with pytest.raises(InputError, match="STAGE.FIELD"):
        load_pipeline(_pipeline(tmp_path), {"nostage.x": 1})
    with pytest.raises(InputError, match="not a mapping"):
        load_pipeline(_pipeline(tmp_path), {"a.text.deeper": 1})


def test_overrides_and_until(tmp_path):
    run = tmp_path / "run"
    run_pipeline(_pipeline(tmp_path), run, until="b", overrides={"a.text": "xy"})
    assert (run / "b.txt").read_text() == "XY"
    assert not (run / "c.txt").exists()


@pytest.mark.parametrize(
    "body, needle",
    [
        ("name: t\nstages:\n  - {name: a, type: nope}\n", "unknown type 'nope'"),
        (
            "name: t\nstages:\n  - {name: a, type: test_write, with: {out: x, colour: 1}}\n",
            "stages.a.with.colour: unknown field",
        ),
        (
            "name: t\nstages:\n  - {name: a, type: test_write, with: {out: x}}\n"
            "  - {name: a, type: test_write, with: {out: y}}\n",
            "duplicate stage name",
        ),
        ("name: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_pipeline_files_name_the_problem(tmp_path, body, needle):
    p = tmp_path / "bad.yaml"
    p.write_text(body)
    with pytest.raises(InputError) as err:
        load_pipeline(p)
    assert needle in str(err.value) and str(p) in str(err.value)


def test_cli_run_reports_bad_pipeline_in_one_line(tmp_path, capsys):
    from landforge.cli import main

    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing.yaml" in err[0]
