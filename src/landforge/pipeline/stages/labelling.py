"""Stages of the human-machine labelling loop (``landforge label ...``).

``label export`` (parcels with pre-labels -> Label Studio tasks), ``label push`` /
``label pull`` (a running Label Studio), ``label import`` (annotations back, checked,
all-or-nothing), ``label check`` (cross-check agreement, acceptance, revision list),
``label simulate`` (the loop with simulated annotators) and ``label mslu`` (the
MSLU-100K folder layout). Options live in :mod:`landforge.labelling.options`.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from landforge.config import StageConfig
from landforge.features.options import PoiCsvColumns
from landforge.labelling.options import (
    CheckOptions,
    ImportOptions,
    MsluOptions,
    ServerOptions,
    SimulateOptions,
    TaskOptions,
)
from landforge.pipeline.registry import StageContext, StageResult, StageType, register_stage

__all__ = [
    "LabelCheckStage",
    "LabelExportStage",
    "LabelImportStage",
    "LabelMsluStage",
    "LabelPullStage",
    "LabelPushStage",
    "LabelSimulateStage",
    "SERVER_COMMANDS",
]

_TASKS_HELP = "The 'label export' folder (tasks.json, config.xml, images/)."


# ---------------------------------------------------------------- export
class LabelExportStage(StageConfig, PoiCsvColumns, TaskOptions):
    """``landforge label export PARCELS --out tasks/``: options in TaskOptions."""

    input_fields = ("parcels", "image", "poi")
    output_fields = ("out",)
    cli_arguments = ("parcels",)
    parcels: str = Field(description="Parcels with a predicted class (.parquet or .gpkg).")
    image: str | None = Field(None, description="Image raster the patches are cut from.")
    poi: str | None = Field(None, description="POIs for the summary (CSV, vector or .osm.pbf).")
    out: str = Field("tasks", description="Output folder (replaced when it exists).")


@register_stage("label_export", LabelExportStage, command="label export")
def label_export(cfg: LabelExportStage, ctx: StageContext) -> StageResult:
    """Label Studio tasks with pre-labels, patches, config and CSV, grouped by class."""
    # function-local: geopandas/rasterio load only when the stage runs
    from landforge.io.poi import read_pois
    from landforge.io.vector import read_vector
    from landforge.labelling.tasks import export_tasks

    parcels = read_vector(cfg.parcels)
    pois = None
    if cfg.poi is not None:
        pois = read_pois(
            cfg.poi, lon_col=cfg.lon, lat_col=cfg.lat, category_col=cfg.poi_category_col
        )
    summary = export_tasks(
        parcels, cfg.out, TaskOptions.build(cfg), image=cfg.image, pois=pois, source=cfg.parcels
    )
    classes = ", ".join(f"{k} {v}" for k, v in summary["per_class"].items())
    lines = [f"{summary['tasks']} tasks ({classes}) -> {cfg.out}"]
    if "batches" in summary:
        lines.append(f"{summary['batches']} batches, {summary['cross_checks']} cross-checks")
    return StageResult(summary, lines)


# ---------------------------------------------------------------- import
class LabelImportStage(StageConfig, ImportOptions):
    """``landforge label import ANNOTATIONS --tasks tasks/ --out annotations.csv``."""

    input_fields = ("annotations", "tasks")
    output_fields = ("out",)
    cli_arguments = ("annotations",)
    annotations: str = Field(
        description="Label Studio export (JSON, JSON-MIN, CSV) or our filled-in tasks.csv."
    )
    tasks: str = Field(description=_TASKS_HELP)
    out: str = Field("annotations.csv", description="Annotation table (.csv or .parquet).")


@register_stage("label_import", LabelImportStage, command="label import")
def label_import(cfg: LabelImportStage, ctx: StageContext) -> StageResult:
    """Check annotations against the tasks and taxonomy; write them all or nothing."""
    # function-local: pandas/defusedxml load only when the stage runs
    from landforge.labelling.annotations import import_annotations, write_table

    table, summary = import_annotations(cfg.annotations, cfg.tasks, ImportOptions.build(cfg))
    write_table(table, cfg.out)
    who = ", ".join(f"{k} {v}" for k, v in summary["per_annotator"].items()) or "none"
    return StageResult(
        summary,
        [
            f"{summary['annotations']} annotations of {summary['annotated_tasks']} of "
            f"{summary['tasks']} tasks ({summary['skipped']} skipped) -> {cfg.out}",
            f"per annotator: {who}",
        ],
    )


# ---------------------------------------------------------------- check
class LabelCheckStage(StageConfig, CheckOptions):
    """``landforge label check ANNOTATIONS --tasks tasks/ --out check/``."""

    input_fields = ("annotations", "tasks", "parcels")
    output_fields = ("out", "labelled")
    cli_arguments = ("annotations",)
    annotations: str = Field(description="Annotation table of 'label import'.")
    tasks: str = Field(description=_TASKS_HELP)
    parcels: str | None = Field(
        None, description="Parcels to receive the accepted labels (with --labelled)."
    )
    labelled: str | None = Field(
        None, description="Output parcels with accepted 'label' and 'label_status' columns."
    )
    out: str = Field(
        "check",
        description="Folder: check.json, batches.csv, accepted.csv, revision_tasks.json.",
    )


@register_stage("label_check", LabelCheckStage, command="label check")
def label_check(cfg: LabelCheckStage, ctx: StageContext) -> StageResult:
    """Agreement per batch; batches below min-agreement go back as a revision list."""
    # function-local: pandas/geopandas load only when the stage runs
    from landforge.errors import OptionError
    from landforge.io.atomic import atomic_dir
    from landforge.labelling.annotations import read_table
    from landforge.labelling.check import check_annotations
    from landforge.labelling.tasks import load_tasks

    if (cfg.parcels is None) != (cfg.labelled is None):
        raise OptionError("labelled", "give parcels and labelled together")
    tasks = load_tasks(cfg.tasks)
    res = check_annotations(read_table(cfg.annotations), tasks, CheckOptions.build(cfg))
    back = set(res.revision)
    with atomic_dir(cfg.out) as tmp:
        (tmp / "check.json").write_text(json.dumps(res.summary, indent=1))
        res.batches.to_csv(tmp / "batches.csv", index=False)
        res.accepted.to_csv(tmp / "accepted.csv", index=False)
        revision = [t for t in tasks if str(t["data"]["parcel_id"]) in back]
        (tmp / "revision_tasks.json").write_text(json.dumps(revision, indent=1))
    if cfg.parcels is not None and cfg.labelled is not None:
        from landforge.io.vector import read_vector, write_vector

        parcels = read_vector(cfg.parcels)
        # the ids of 'label export': the parcel_id column, else the row number
        ids = (
            parcels["parcel_id"].astype(str)
            if "parcel_id" in parcels.columns
            else parcels.index.to_series(index=parcels.index).astype(str)
        )
        accepted = dict(zip(res.accepted["parcel_id"], res.accepted["label"], strict=True))
        in_tasks = {str(t["data"]["parcel_id"]) for t in tasks}
        parcels["label"] = ids.map(accepted)
        parcels["label_status"] = [
            "accepted" if i in accepted else "revision" if i in back else
            "pending" if i in in_tasks else "unlabelled" for i in ids
        ]  # fmt: skip
        write_vector(parcels, cfg.labelled)
    s = res.summary
    return StageResult(
        s,
        [
            f"batches: {s['batches_accepted']} accepted, {s['batches_revision']} for revision, "
            f"{s['batches_pending']} pending (agreement {s['agreement']:.1%} on "
            f"{s['cross_checked']} cross-checked items)",
            f"acceptance rate {s['acceptance_rate']:.1%} (target {s['target']:.0%}: "
            f"{'met' if s['target_met'] else 'not met'}); {s['revision']} tasks go back "
            f"-> {cfg.out}/revision_tasks.json",
        ],
    )


# ---------------------------------------------------------------- push / pull
# Commands, not pipeline steps: they need a running Label Studio, which a pipeline run
# (and examples/all_stages.yaml) cannot assume. landforge.cli.label adds them to the
# `label` group through the same generated commands (SERVER_COMMANDS).
class LabelPushStage(StageConfig, ServerOptions):
    """``landforge label push tasks/ --url http://host:8080`` (token: $LABEL_STUDIO_TOKEN)."""

    input_fields = ("tasks",)
    output_fields = ("out",)
    cli_arguments = ("tasks",)
    tasks: str = Field(description=_TASKS_HELP)
    out: str | None = Field(None, description="Optional receipt (JSON: project id, counts).")


def label_push(cfg: LabelPushStage, ctx: StageContext) -> StageResult:
    """Create or reuse the Label Studio project and import the tasks with predictions."""
    # function-local: label-studio-sdk is an optional dependency
    from landforge.io.atomic import atomic_path
    from landforge.labelling.server import push_tasks

    summary = push_tasks(cfg.tasks, ServerOptions.build(cfg))
    if cfg.out is not None:
        with atomic_path(cfg.out) as tmp:
            Path(tmp).write_text(json.dumps(summary, indent=1))
    return StageResult(
        summary,
        [
            f"project {summary['project']} at {cfg.url}: {summary['imported']} tasks imported, "
            f"{summary['already_there']} already there"
        ],
    )


class LabelPullStage(StageConfig, ServerOptions):
    """``landforge label pull --url http://host:8080 --out annotations.json``."""

    output_fields = ("out",)
    out: str = Field("annotations.json", description="Label Studio JSON export written here.")


def label_pull(cfg: LabelPullStage, ctx: StageContext) -> StageResult:
    """Pull the project's tasks with their annotations (for 'label import')."""
    # function-local: label-studio-sdk is an optional dependency
    from landforge.labelling.server import pull_annotations

    summary = pull_annotations(cfg.out, ServerOptions.build(cfg))
    return StageResult(
        summary,
        [
            f"project {summary['project']}: {summary['tasks']} tasks, "
            f"{summary['annotations']} annotations -> {cfg.out}"
        ],
    )


#: ``label push`` / ``label pull``: stage types that are not registered as pipeline steps.
SERVER_COMMANDS = (
    StageType("label_push", LabelPushStage, label_push, "Push tasks to Label Studio.",
              ("label", "push")),
    StageType("label_pull", LabelPullStage, label_pull, "Pull annotations from Label Studio.",
              ("label", "pull")),
)  # fmt: skip


# ---------------------------------------------------------------- simulate
def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class LabelSimulateStage(StageConfig, SimulateOptions):
    """``landforge label simulate PARCELS --truth-col label --out loop.json``."""

    input_fields = ("parcels",)
    output_fields = ("out",)
    cli_arguments = ("parcels",)
    parcels: str = Field(
        description="Parcels with the true class and numeric features (.parquet, .gpkg, .csv)."
    )
    out: str = Field("loop.json", description="Loop report (JSON).")


@register_stage("label_simulate", LabelSimulateStage, command="label simulate")
def label_simulate(cfg: LabelSimulateStage, ctx: StageContext) -> StageResult:
    """Run the loop with simulated annotators; accuracy of labels and model per round."""
    # function-local: geopandas/scikit-learn load only when the stage runs
    from landforge.io.atomic import atomic_path
    from landforge.labelling.simulate import run_loop

    if cfg.parcels.lower().endswith(".csv"):
        import pandas as pd

        from landforge.errors import require_file

        frame = pd.read_csv(require_file(cfg.parcels, "parcels file"))
    else:
        from landforge.io.vector import read_vector

        frame = read_vector(cfg.parcels)
    report = run_loop(frame, SimulateOptions.build(cfg), source=cfg.parcels)
    with atomic_path(cfg.out) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=1))
    lines = [
        f"{report['parcels']} parcels ({report['test']} held out, seed set "
        f"{report['seed_set']}); majority {report['majority_accuracy']:.3f}, "
        f"round-0 model {report['model_accuracy_round0']:.3f}"
    ]
    for r in report["rounds"]:
        lines.append(
            f"round {r['round']}: {r['tasks']} tasks, acceptance {r['acceptance_rate']:.1%}, "
            f"accepted-label accuracy {_num(r['accepted_accuracy'])}, "
            f"model {r['model_accuracy']:.3f}"
        )
    lines.append(f"-> {cfg.out}")
    return StageResult(report, lines)


# ---------------------------------------------------------------- MSLU layout
class LabelMsluStage(StageConfig, MsluOptions):
    """``landforge label mslu PARCELS --out mslu/`` (MSLU-100K folder layout)."""

    input_fields = ("parcels", "images", "image")
    output_fields = ("out",)
    cli_arguments = ("parcels",)
    parcels: str = Field(description="Labelled parcels (.parquet or .gpkg), e.g. --labelled.")
    images: str | None = Field(
        None, description="A 'label export' folder whose patches are copied."
    )
    image: str | None = Field(None, description="Image raster to cut patches from instead.")
    out: str = Field("mslu", description="Dataset folder (replaced when it exists).")


@register_stage("label_mslu", LabelMsluStage, command="label mslu")
def label_mslu(cfg: LabelMsluStage, ctx: StageContext) -> StageResult:
    """Write the MSLU-100K layout: Classification/ XML, ImageSets/<class>/, CSV, index."""
    # function-local: geopandas/matplotlib load only when the stage runs
    from landforge.io.vector import read_vector
    from landforge.labelling.mslu import export_mslu

    stats = export_mslu(
        read_vector(cfg.parcels),
        cfg.out,
        MsluOptions.build(cfg),
        images=cfg.images,
        image=cfg.image,
        source=cfg.parcels,
    )
    per = ", ".join(f"{k} {v}" for k, v in stats["per_class"].items())
    return StageResult(stats, [f"{stats['samples']} samples ({per}) -> {cfg.out}"])
