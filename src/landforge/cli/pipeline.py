"""``landforge run`` (a pipeline file), ``landforge demo`` and ``landforge stages``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
import yaml

from landforge.errors import InputError

DEMO_PIPELINE = Path(__file__).resolve().parents[1] / "pipelines" / "demo.yaml"
#: the demo's chip side (px) and split block side (chips), as in demo.yaml
DEMO_CHIP, DEMO_BLOCK = 128, 3


def _parse_sets(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError("--set", f"expected STAGE.FIELD=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(raw)  # numbers, booleans, lists as in YAML
    return out


def run(
    pipeline: Path = typer.Argument(..., help="Pipeline YAML file (see examples/)."),
    run_dir: Path | None = typer.Option(
        None, "--run-dir", help="Run directory (default: the file's run_dir or runs/NAME)."
    ),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Override a stage setting: STAGE.FIELD=VALUE (repeatable)."
    ),
    force: bool = typer.Option(False, "--force", help="Re-run every stage."),
    until: str | None = typer.Option(None, "--until", help="Stop after this stage."),
) -> None:
    """Run a pipeline; finished stages are skipped and an interrupted run resumes."""
    from landforge.pipeline import run_pipeline

    manifest = run_pipeline(
        pipeline, run_dir, force=force, until=until, overrides=_parse_sets(set_)
    )
    typer.echo(f"run directory: {manifest['run_dir']}")


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory."),
    size_m: float | None = typer.Option(None, "--size-m", help="Side of the synthetic city (m)."),
    train_minutes: float | None = typer.Option(
        None, "--train-minutes", help="CPU training budget in minutes."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the synthetic city."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Override a stage setting: STAGE.FIELD=VALUE (repeatable)."
    ),
    force: bool = typer.Option(False, "--force", help="Re-run every stage."),
) -> None:
    """Synthesise a city and run the whole path to a land-use map and a report.

    Runs the packaged pipeline (examples/demo.yaml): parcels from the road network, POI
    probability maps, chips, a small multi-task U-Net (footprint + use from RGB + POI
    maps) trained for a few minutes on CPU, sliding-window prediction to COG, building
    polygons with use, parcel land use, evaluation against the synthetic truth on the
    test split (blocks no training chip came from), report.
    """
    from landforge.pipeline import run_pipeline

    overrides = _parse_sets(set_)
    if size_m is not None:
        overrides["city.size_m"] = size_m
        if not any(k.startswith("chips.split") for k in overrides):
            # a small city still needs a few split blocks, or it has no test split
            gsd = float(overrides.get("city.gsd", 1.0))
            chips_per_side = int(size_m / gsd // DEMO_CHIP)
            block = max(1, min(DEMO_BLOCK, chips_per_side // 3))
            overrides["chips.split.block_size"] = block
    if seed is not None:
        overrides["city.seed"] = seed
    if train_minutes is not None:
        overrides["train.max_minutes"] = train_minutes
    t0 = time.perf_counter()
    manifest = run_pipeline(DEMO_PIPELINE, out, force=force, overrides=overrides)
    run = Path(manifest["run_dir"])
    typer.echo(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; outputs in {run}:")
    for rel, what in [
        ("map.tif", "building-use map (COG)"),
        ("buildings.gpkg", "building polygons with use"),
        ("parcel_landuse.gpkg", "parcels with predicted land use"),
        ("metrics.json", "pixel metrics vs synthetic truth, test split"),
        ("parcel_metrics.json", "parcel metrics vs synthetic truth, test split"),
        ("metrics_train_split.json", "pixel metrics, train split: seen in training"),
        ("report.html", "HTML report"),
    ]:
        if (run / rel).exists():
            typer.echo(f"  {run / rel}  ({what})")
    for line in _demo_summary(run):
        typer.echo(line)


def _demo_summary(run: Path) -> list[str]:
    """The demo's accuracy lines: test split first, the train split labelled apart."""

    def load(name: str) -> dict[str, Any] | None:
        path = run / name
        return json.loads(path.read_text()) if path.exists() else None

    def num(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, int | float) and v == v else "n/a"

    def count(n: int, unit: str) -> str:
        return f"{n:,} {unit}{'' if n == 1 else 's'}"

    def where(m: dict[str, Any], unit: str) -> str:
        on = m.get("evaluated_on") or {}
        if not on.get("split"):
            return f"all {unit}s (not held out)"
        n = on.get("pixels", on.get("rows", 0))
        return f"{on['split']} split ({count(on.get('blocks', 0), 'block')}, {count(n, unit)}"

    lines = []
    m = load("metrics.json")
    if m is not None:
        base = m.get("baseline") or {}
        lines.append(
            f"{where(m, 'pixel')}): pixel OA {num(m.get('overall_accuracy'))} (majority "
            f"baseline {num(base.get('overall_accuracy'))}), kappa {num(m.get('kappa'))}, "
            f"mIoU {num(m.get('miou'))} (baseline {num(base.get('miou'))})"
        )
    p = load("parcel_metrics.json")
    if p is not None:
        base = p.get("baseline") or {}
        lines.append(
            f"{where(p, 'parcel')}, {p.get('n', 0):,} labelled): parcel OA "
            f"{num(p.get('overall_accuracy'))} (majority baseline "
            f"{num(base.get('overall_accuracy'))})"
        )
    t = load("metrics_train_split.json")
    if t is not None:
        lines.append(
            f"for comparison only, {where(t, 'pixel')}, seen in training): pixel OA "
            f"{num(t.get('overall_accuracy'))}, kappa {num(t.get('kappa'))}, "
            f"mIoU {num(t.get('miou'))}"
        )
    return lines


def stages(
    name: str | None = typer.Argument(None, help="A stage type: print its fields."),
) -> None:
    """List the stage types (pipeline steps), or one stage's fields with defaults."""
    from landforge.cli.stagecmd import field_rows
    from landforge.pipeline.registry import get_stage, registered_stages

    if name is None:
        for st in registered_stages().values():
            cmd = f"landforge {' '.join(st.command)}" if st.command else ""
            typer.echo(f"{st.name:18s} {st.description}" + (f"  [{cmd}]" if cmd else ""))
        return
    st = get_stage(name, source=name)
    typer.echo(f"{st.name}: {st.description}")
    if st.command:
        typer.echo(f"command: landforge {' '.join(st.command)}")
    typer.echo(f"options model: {st.config.__module__}.{st.config.__name__}")
    for field, type_, default, flag, help_ in field_rows(st.config):
        typer.echo(f"  {field}: {type_} = {default}  [{flag}]")
        if help_:
            typer.echo(f"      {help_}")


def register(app: typer.Typer) -> None:
    """Add ``run``, ``demo`` and ``stages`` to the landforge CLI."""
    app.command("run")(run)
    app.command("demo")(demo)
    app.command("stages")(stages)
