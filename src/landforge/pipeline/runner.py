"""Run a pipeline of named stages and keep a manifest, so re-runs skip and resume.

A pipeline file lists stages in order::

    name: demo
    stages:
      - name: city
        type: synth_city
        with: {out: city, size_m: 1500}
      - name: parcels
        type: parcels
        with: {roads: city/roads.gpkg, boundary: city/boundary.gpkg, out: parcels.parquet}

Relative paths are resolved against the run directory; ``{pipeline_dir}`` in a path
stands for the folder holding the pipeline file. For every stage the runner records in
``RUN/manifest.json`` the config and its hash, the SHA-256 of every input, the outputs,
status and timings. A stage is skipped when it finished before with the same config and
the same input hashes and its outputs still exist; an interrupted run therefore resumes
at its first unfinished stage, and changing a stage's config re-runs it and, because its
outputs change, the stages downstream of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import landforge.pipeline.stages  # noqa: F401  (registers the built-in stages)
from landforge import __version__
from landforge.config import StageConfig, jsonable, load_yaml, validate
from landforge.errors import InputError, OptionError
from landforge.io.atomic import atomic_path, ensure_dir
from landforge.pipeline.registry import (
    StageContext,
    StageResult,
    get_stage,
    register_stage,
    registered_stages,
)
from landforge.progress import console, is_quiet

__all__ = [
    "PipelineSpec",
    "StageResult",
    "StageSpec",
    "StageContext",
    "load_pipeline",
    "register_stage",
    "run_pipeline",
    "stage_types",
    "file_hash",
]


def stage_types() -> dict[str, str]:
    """Registered stage types and their one-line descriptions."""
    return {name: st.description for name, st in registered_stages().items()}


MANIFEST = "manifest.json"


class StageSpec(BaseModel):
    """One entry of ``stages:`` in a pipeline file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    type: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")


class PipelineSpec(BaseModel):
    """A pipeline file: a name, an optional default run directory and ordered stages."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str | None = None
    run_dir: str | None = None
    stages: list[StageSpec]


def load_pipeline(
    path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None
) -> PipelineSpec:
    """Read and validate a pipeline YAML file, including every stage's config.

    ``overrides`` maps ``"stage.field"`` (or a nested ``"stage.field.key"``) to a value
    replacing that stage's setting (``landforge run --set city.size_m=800``).
    """
    data = load_yaml(path)
    spec: PipelineSpec = validate(PipelineSpec, data, str(path))
    by_name = {s.name: s for s in spec.stages}
    for key, value in (overrides or {}).items():
        stage_name, *fields = key.split(".")
        if stage_name not in by_name or not fields or not all(fields):
            raise InputError("--set", f"{key!r} does not name a stage field (STAGE.FIELD)")
        target = by_name[stage_name].with_
        for name in fields[:-1]:  # nested settings: train.options.epochs=1
            child = target.setdefault(name, {})
            if not isinstance(child, dict):
                raise InputError("--set", f"{key!r}: {name!r} is not a mapping")
            target = child
        target[fields[-1]] = value
    names = [s.name for s in spec.stages]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise InputError(path, f"duplicate stage name(s): {', '.join(sorted(dupes))}")
    stages = registered_stages()
    for i, st in enumerate(spec.stages):
        if st.type not in stages:
            known = ", ".join(stages)
            raise InputError(
                path, f"stages[{i}] ({st.name}): unknown type {st.type!r}; known: {known}"
            )
        validate(stages[st.type].config, st.with_, str(path), prefix=f"stages.{st.name}.with")
    return spec


# ---------------------------------------------------------------- hashing
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def file_hash(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (relative names + contents)."""
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode())
            h.update(file_hash(f).encode())
        return h.hexdigest()
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def _config_hash(type_name: str, config: Mapping[str, Any]) -> str:
    blob = json.dumps({"type": type_name, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------- manifest
def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise InputError(path, "manifest is not valid JSON; delete it to start afresh") from None


def _write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    manifest["updated"] = _now()
    with atomic_path(run_dir / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, default=str))


# ---------------------------------------------------------------- running
def _resolve(value: Any, run_dir: Path, pipeline_dir: Path) -> Any:
    if isinstance(value, str):
        text = value.replace("{pipeline_dir}", str(pipeline_dir))
        p = Path(text).expanduser()
        return str(p if p.is_absolute() else run_dir / p)
    if isinstance(value, list):
        return [_resolve(v, run_dir, pipeline_dir) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, run_dir, pipeline_dir) for k, v in value.items()}
    return value


def _resolved_config(cfg: StageConfig, run_dir: Path, pipeline_dir: Path) -> StageConfig:
    updates = {
        name: _resolve(getattr(cfg, name), run_dir, pipeline_dir)
        for name in (*cfg.input_fields, *cfg.output_fields)
    }
    return cfg.model_copy(update=updates)


def _input_hashes(cfg: StageConfig, stage: str, run: Path) -> dict[str, str]:
    """SHA-256 of each input, keyed by its path relative to the run directory.

    Relative keys mean a moved or copied run directory still resumes.
    """
    hashes = {}
    for p in cfg.inputs():
        path = Path(p)
        if not path.exists():
            raise InputError(path, f"input of stage {stage!r} does not exist")
        hashes[_rel(p, run)] = file_hash(path)
    return hashes


def run_pipeline(
    pipeline: str | os.PathLike[str],
    run_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    until: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the pipeline file ``pipeline`` in ``run_dir``; returns the manifest.

    Args:
        pipeline: path of the pipeline YAML.
        run_dir: where outputs and ``manifest.json`` go (default: the file's ``run_dir``
            or ``runs/<name>``).
        force: re-run every stage even when it could be skipped.
        until: stop after this stage.
        overrides: ``{"stage.field": value}`` replacing settings of the file.
    """
    spec = load_pipeline(pipeline, overrides)
    pipeline_dir = Path(pipeline).resolve().parent
    run = Path(run_dir or spec.run_dir or Path("runs") / spec.name).resolve()
    ensure_dir(run, "run directory")
    manifest = read_manifest(run)
    manifest.setdefault("created", _now())
    manifest.update(
        pipeline=spec.name,
        pipeline_file=str(Path(pipeline).resolve()),
        landforge_version=__version__,
    )
    stages_state: dict[str, Any] = manifest.setdefault("stages", {})
    if until is not None and until not in {s.name for s in spec.stages}:
        raise InputError("--until", f"no stage named {until!r} in {pipeline}")

    t_all = time.perf_counter()
    for index, st in enumerate(spec.stages, start=1):
        stype = get_stage(st.type)
        cfg: StageConfig = stype.config.model_validate(st.with_)
        config_json = cfg.model_dump(mode="json")
        chash = _config_hash(st.type, config_json)
        rcfg = _resolved_config(cfg, run, pipeline_dir)
        inputs = _input_hashes(rcfg, st.name, run)
        prev = stages_state.get(st.name, {})
        outputs_exist = all(Path(p).exists() for p in rcfg.outputs())
        label = f"[{index}/{len(spec.stages)}] {st.name} ({st.type})"
        if (
            not force
            and prev.get("status") == "done"
            and prev.get("config_hash") == chash
            and prev.get("inputs") == inputs
            and outputs_exist
        ):
            _say(f"{label}: up to date, skipped")
        else:
            _say(f"{label}: running")
            entry = {
                "type": st.type,
                "status": "running",
                "config": config_json,
                "config_hash": chash,
                "inputs": inputs,
                "outputs": [_rel(p, run) for p in rcfg.outputs()],
                "started": _now(),
            }
            stages_state[st.name] = entry
            _write_manifest(run, manifest)
            t0 = time.perf_counter()
            try:
                result = stype.fn(rcfg, StageContext(run, st.name)) or StageResult()
            except BaseException as exc:
                entry.update(status="failed", error=str(exc)[:500], finished=_now())
                entry["seconds"] = round(time.perf_counter() - t0, 3)
                _write_manifest(run, manifest)
                if isinstance(exc, OptionError):  # name the field as the file spells it
                    where = f"stages.{st.name}.with.{exc.field}"
                    raise InputError(pipeline, f"{where}: {exc.problem}") from exc
                raise
            missing = [p for p in rcfg.outputs() if not Path(p).exists()]
            if missing:
                raise RuntimeError(f"stage {st.name!r} did not write {missing}")
            entry.update(
                status="done",
                finished=_now(),
                seconds=round(time.perf_counter() - t0, 3),
                summary=jsonable(result.summary),
            )
            _write_manifest(run, manifest)
            _say(f"{label}: done in {entry['seconds']:.1f} s")
        if until == st.name:
            break
    manifest["seconds_total_last_run"] = round(time.perf_counter() - t_all, 3)
    manifest["run_dir"] = str(run)
    _write_manifest(run, manifest)
    return manifest


def _rel(path: str, run: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(run))
    except ValueError:
        return str(path)


def _say(text: str) -> None:
    if not is_quiet():
        console.print(text)
