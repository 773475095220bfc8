"""Stages: land-use change segmentation with satellite time series (FUSU).

``landforge change chips`` (bi-temporal patches, labels, change labels and series
footprints), ``change train CONFIG.yaml``, ``change predict`` (change map and T1/T2
maps over a scene through the block engine of ``predict``) and ``change evaluate``
(binary change, per-date segmentation, semantic change, SeK and the FUSU / open-cd
scores). Options live in :mod:`landforge.change.options`; see ``docs/change.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from landforge.change.options import (
    ChangeChipOptions,
    ChangeEvaluateOptions,
    ChangePredictOptions,
    ChangeTrainConfig,
)
from landforge.config import StageConfig
from landforge.errors import OptionError
from landforge.pipeline.registry import StageContext, StageResult, register_stage

__all__ = ["ChangeChipsStage", "ChangeEvaluateStage", "ChangePredictStage", "ChangeTrainStage"]


# ---------------------------------------------------------------- chips
class ChangeChipsStage(StageConfig, ChangeChipOptions):
    """``landforge change chips --t1 A --t2 B --label1 LA --label2 LB --out DIR``."""

    input_fields = ("t1", "t2", "label1", "label2", "series", "series_cloud")
    output_fields = ("out",)
    t1: str = Field(description="T1 high-resolution image (GeoTIFF).")
    t2: str = Field(description="T2 image on T1's grid.")
    label1: str = Field(description="T1 class labels on T1's grid (values 0..K-1).")
    label2: str = Field(description="T2 class labels on T1's grid.")
    series: str | None = Field(
        None, description="Time series: a folder (s2/, s1/ or dated .tif) or a dated stack."
    )
    series_cloud: str | None = Field(
        None, description="Cloud-mask stack (0/1, same dates) for a series stack."
    )
    out: str = Field("change_chips", description="Output folder.")


@register_stage("change_chips", ChangeChipsStage, command="change chips")
def change_chips(cfg: ChangeChipsStage, ctx: StageContext) -> StageResult:
    """Cut T1/T2 patches, labels, change labels and the 5x series footprint of each."""
    # function-local: rasterio/geopandas load only when the stage runs
    from landforge.change.chips import build_change_chips

    s = build_change_chips(
        cfg.t1,
        cfg.t2,
        cfg.label1,
        cfg.label2,
        cfg.out,
        cfg.series,
        ChangeChipOptions.build(cfg),
        series_cloud=cfg.series_cloud,
    )
    skipped = ", ".join(f"{v} {k}" for k, v in s["skipped"].items() if v) or "none"
    lines = [
        f"{s['chips']} chips ({s['changed_chips']} with change; skipped: {skipped}) -> {cfg.out}",
        "splits: " + ", ".join(f"{k} {v}" for k, v in sorted(s["splits"].items())),
    ]
    if cfg.series is not None:
        lines.append(
            f"series: {len(s['series_dates'])} dates x {len(s['series_channels'])} channels, "
            f"{s['dropped_cloud_frames']} frame(s) dropped for cloud"
        )
    keys = ("chips", "changed_chips", "splits", "skipped", "dropped_cloud_frames")
    return StageResult({k: s[k] for k in keys}, lines)


# ---------------------------------------------------------------- train
class ChangeTrainStage(StageConfig, ChangeTrainConfig):
    """``landforge change train CONFIG.yaml``: options in ChangeTrainConfig."""

    input_fields = ("chips", "init")
    output_fields = ("out",)
    cli_config_argument = True
    cli_hidden = ("model_kwargs", "betas", "loss_weights")


@register_stage("change_train", ChangeTrainStage, command="change train")
def change_train(cfg: ChangeTrainStage, ctx: StageContext) -> StageResult:
    """Train a change model on change chips; writes OUT/model.safetensors + cards."""
    # function-local: torch loads only when the stage runs
    from landforge.change.train import train_change

    weights = train_change(ChangeTrainConfig.build(cfg))
    card = json.loads(weights.with_suffix(".json").read_text())
    return StageResult(
        {"model": card.get("model"), **card.get("metrics", {})},
        [f"{weights} (+ {weights.with_suffix('.json').name}, model.change.json)"],
    )


# ---------------------------------------------------------------- predict
class ChangePredictStage(StageConfig, ChangePredictOptions):
    """``landforge change predict --t1 A --t2 B [--series S] --model CKPT --out DIR``."""

    input_fields = ("t1", "t2", "series", "model")
    output_fields = ("out",)
    t1: str = Field(description="T1 image.")
    t2: str = Field(description="T2 image (on T1's grid unless resample).")
    series: str | None = Field(None, description="Time series (folder or dated stack).")
    model: str = Field(description="Checkpoint from 'change train' (model.safetensors).")
    out: str = Field("change_maps", description="Output folder of the COGs.")

    def outputs(self) -> list[str]:
        """The four COGs in ``out``."""
        from landforge.change.predict import OUTPUTS

        return [str(Path(self.out) / v) for v in OUTPUTS.values()]


@register_stage("change_predict", ChangePredictStage, command="change predict")
def change_predict(cfg: ChangePredictStage, ctx: StageContext) -> StageResult:
    """Change map, change probability and T1/T2 class maps as COGs (blocks, resume, Dask)."""
    # function-local: torch loads only when the stage runs
    from landforge.change.predict import predict_change

    s = predict_change(
        cfg.t1, cfg.t2, cfg.model, cfg.out, cfg.series, ChangePredictOptions.build(cfg)
    )
    return StageResult(
        {k: s[k] for k in ("blocks", "computed", "reused", "changed_pixels", "changed_share")},
        [
            f"{s['blocks']} blocks ({s['reused']} reused), "
            f"{100 * s['changed_share']:.2f} % changed -> {cfg.out}"
        ],
    )


# ---------------------------------------------------------------- evaluate
class ChangeEvaluateStage(StageConfig, ChangeEvaluateOptions):
    """``landforge change evaluate``: maps (``--pred DIR``) or a model on chips (``--chips``).

    With ``pred`` (a ``change predict`` folder) and ``truth1`` / ``truth2`` label
    rasters; or with ``chips`` and ``model``, on the chips of ``split``. Writes the
    metrics JSON ``out`` and, for maps, a figure ``<out stem>.png``.
    """

    input_fields = ("pred", "truth1", "truth2", "chips", "model")
    output_fields = ("out",)
    pred: str | None = Field(None, description="Folder written by 'change predict'.")
    truth1: str | None = Field(None, description="True T1 labels (with pred).")
    truth2: str | None = Field(None, description="True T2 labels (with pred).")
    chips: str | None = Field(None, description="Change chip folder (with model).")
    model: str | None = Field(None, description="Checkpoint to score on the chips.")
    split: str = Field("test", description="Chip split scored (with chips).")
    batch: int = Field(8, ge=1, description="Chips per forward pass (with chips).")
    device: str = Field("cpu", description="Torch device (with chips).")
    out: str = Field("change_metrics.json", description="Metrics JSON.")

    @model_validator(mode="after")
    def _one_mode(self) -> ChangeEvaluateStage:
        maps = self.pred is not None
        if maps == (self.chips is not None):
            raise OptionError("pred", "give either pred (+ truth1, truth2) or chips (+ model)")
        if maps and (self.truth1 is None or self.truth2 is None):
            missing = "truth1" if self.truth1 is None else "truth2"
            raise OptionError(missing, "pred needs truth1 and truth2")
        if not maps and self.model is None:
            raise OptionError("model", "chips needs a model checkpoint")
        return self

    def outputs(self) -> list[str]:
        """The metrics JSON (and the figure for maps)."""
        extra = [str(Path(self.out).with_suffix(".png"))] if self.pred is not None else []
        return [*super().outputs(), *extra]


@register_stage("change_evaluate", ChangeEvaluateStage, command="change evaluate")
def change_evaluate(cfg: ChangeEvaluateStage, ctx: StageContext) -> StageResult:
    """Binary change IoU/F1, per-date mIoU, semantic-change mIoU, SeK, FUSU/open-cd scores."""
    # function-local: rasterio/torch load only when the stage runs
    from landforge.change.evaluate import evaluate_change_chips, evaluate_change_maps
    from landforge.change.metrics import format_metrics

    opts = ChangeEvaluateOptions.build(cfg)
    m: dict[str, Any]
    if cfg.pred is not None:
        assert cfg.truth1 is not None and cfg.truth2 is not None
        m = evaluate_change_maps(cfg.pred, cfg.truth1, cfg.truth2, cfg.out, opts)
    else:
        assert cfg.chips is not None and cfg.model is not None
        m = evaluate_change_chips(cfg.chips, cfg.model, cfg.out, cfg.split, cfg.batch, cfg.device)
    keys = ("fusu_score", "opencd_score", "sek", "miou_scd", "seg_miou")
    summary = {k: m[k] for k in keys}
    summary.update(change_iou=m["binary"]["change_iou"], change_f1=m["binary"]["change_f1"])
    summary["semantic_change_miou"] = m["semantic_change"]["miou"]
    return StageResult(summary, [*format_metrics(m), f"-> {cfg.out}"])
