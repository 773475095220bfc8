"""Stage: dataset quality levels 0-5 per parcel (``landforge grade``, MSLU-100K).

Options live in :mod:`landforge.quality.options`; the stage config adds the input and
output paths. Reads the predictions of ``landforge parcels predict-classes`` (or labelled
parcels with a feature table), writes the graded parcels (GeoParquet, ``level``
column), the tables (JSON + CSV: levels x class, accuracy by level and by parcel size,
train on one level / test on the gold set) and optionally a correct/incorrect layer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from landforge.config import StageConfig
from landforge.errors import OptionError, require_file
from landforge.pipeline.registry import StageContext, StageResult, register_stage
from landforge.quality.options import GradeOptions


class GradeStage(StageConfig, GradeOptions):
    """``landforge grade --predictions P.parquet --method softprob --out graded.parquet``."""

    input_fields = ("predictions", "parcels", "features")
    output_fields = ("out", "tables", "errors_out")
    cli_flags = {"out": "--out -o"}
    predictions: str | None = Field(
        None,
        description="Predictions of `landforge parcels predict-classes` (GeoParquet: "
        "parcel_id, label, pred, prob_<class>, has_image/has_poi/has_population, area_m2).",
    )
    parcels: str | None = Field(
        None, description="Labelled parcels (.parquet/.gpkg) to grade with models trained here."
    )
    features: str | None = Field(
        None,
        description="Feature table keyed by the id column (`landforge parcels features`, "
        ".parquet or .csv): trains the cascade, the level table and held-out predictions.",
    )
    out: str = Field("graded.parquet", description="Graded parcels (GeoParquet): level column.")
    tables: str = Field(
        "grading.json", description="Tables as JSON (+ one <stem>_<table>.csv each)."
    )
    errors_out: str | None = Field(
        None,
        description="Per-parcel correct/incorrect layer of the held-out predictions (.gpkg; "
        "a .png map beside it).",
    )

    @field_validator("out")
    @classmethod
    def _parquet(cls, value: str) -> str:
        if Path(value).suffix.lower() not in (".parquet", ".geoparquet"):
            raise ValueError("graded parcels are written as GeoParquet (.parquet)")
        return value

    @field_validator("tables")
    @classmethod
    def _json(cls, value: str) -> str:
        if Path(value).suffix.lower() != ".json":
            raise ValueError("tables are written as JSON (.json)")
        return value

    @field_validator("errors_out")
    @classmethod
    def _gpkg(cls, value: str | None) -> str | None:
        if value is not None and Path(value).suffix.lower() != ".gpkg":
            raise ValueError("the correct/incorrect layer is a GeoPackage (.gpkg)")
        return value

    @model_validator(mode="after")
    def _one_input(self) -> GradeStage:
        if (self.predictions is None) == (self.parcels is None):
            raise OptionError("predictions", "give either predictions or parcels (not both)")
        return self


def _read_table(path: str) -> Any:
    import pandas as pd

    from landforge.errors import InputError

    p = require_file(path, "feature table")
    try:
        if p.suffix.lower() == ".csv":
            return pd.read_csv(p)
        return pd.read_parquet(p)
    except (OSError, ValueError) as exc:
        raise InputError(p, f"cannot read the feature table ({exc})") from None


@register_stage("grade", GradeStage, command="grade")
def grade(cfg: GradeStage, ctx: StageContext) -> StageResult:
    """Quality level 0-5 of every parcel: soft probability, model cascade or cleanlab."""
    # domain functions import geopandas/scikit-learn/cleanlab: imported here
    from landforge.io.vector import read_vector, write_vector
    from landforge.quality.frame import grade_parcels
    from landforge.quality.outputs import write_errors, write_tables

    o = GradeOptions.build(cfg)
    source = cfg.predictions if cfg.predictions is not None else cfg.parcels
    assert source is not None  # the validator saw to it
    parcels = read_vector(require_file(source, "parcels file"), require_crs=False)
    features = _read_table(cfg.features) if cfg.features is not None else None
    res = grade_parcels(parcels, features, o, source=source, features_source=str(cfg.features))
    if cfg.errors_out is not None and res.heldout_pred is None:
        raise OptionError(
            "errors_out", "needs held-out predictions: a pred column or a feature table"
        )
    write_vector(res.parcels, cfg.out)
    lines = [f"{len(res.parcels)} parcels graded ({o.method}) -> {cfg.out}"]
    if cfg.errors_out is not None:
        write_errors(cfg.errors_out, res.parcels, o.id_col, o.label_col)
        png = Path(cfg.errors_out).with_suffix(".png")
        if png.is_file():  # the report embeds the map
            res.tables["images"] = [os.path.relpath(png, Path(cfg.tables).parent)]
        lines.append(f"correct/incorrect layer -> {cfg.errors_out}")
    write_tables(cfg.tables, res.tables)
    levels = res.tables["summary"]["levels"]
    lines.append("levels " + ", ".join(f"{k}: {v}" for k, v in levels.items()))
    lines.append(f"tables -> {cfg.tables}")
    return StageResult({"parcels": len(res.parcels), "method": o.method, "levels": levels}, lines)
