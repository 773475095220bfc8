"""Stages: chip stores."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from landforge.config import StageConfig, StrMap
from landforge.datasets.options import ChipOptions, check_label_names, check_parcels
from landforge.pipeline.registry import StageContext, StageResult, register_stage


# ---------------------------------------------------------------- chips
class ChipsStage(StageConfig, ChipOptions):
    """``landforge chips --image I --labels use=U --out chips``: options in ChipOptions.

    The sampler's ``n_chips`` and ``radius_m`` have flat flags (``--sampler poisson
    --radius-m 100``); in YAML the sampler is a mapping (``sampler: {method: poisson,
    radius_m: 100}``) and the poisson sampler's polygons are the input ``parcels``.
    """

    input_fields = ("image", "extras", "labels", "parcels")
    output_fields = ("out",)
    cli_flags = {"extras": "--extra"}
    image: str = Field(description="Image raster (its bands become the chips' first bands).")
    extras: list[str] = Field(
        default_factory=list,
        description="Extra raster on the image grid, e.g. POI maps (repeatable); its "
        "bands follow the image's.",
    )
    labels: StrMap = Field(
        description="Label rasters as NAME=PATH,..., e.g. footprint=fp.tif,use=use.tif "
        "(single-band integer rasters on the image grid)."
    )
    parcels: str | None = Field(
        None,
        description="Parcel polygons for the poisson sampler (any vector format with a CRS).",
    )
    out: str = Field("chips", description="Chip store directory to write.")

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        check_label_names(labels)
        return labels

    @model_validator(mode="after")
    def _parcels_for_poisson(self) -> ChipsStage:
        check_parcels(self.sampler, self.parcels)
        return self


@register_stage("chips", ChipsStage, command="chips")
def chips(cfg: ChipsStage, ctx: StageContext) -> StageResult:
    """Cut an image (+ extra bands) and label rasters into a chip store."""
    # domain functions import rasterio and geopandas: loaded when the stage runs
    from landforge.datasets.chip_store import read_meta
    from landforge.datasets.chip_writer import build_chips

    store = build_chips(
        cfg.image,
        cfg.labels,
        cfg.out,
        ChipOptions.build(cfg),
        extras=cfg.extras,
        parcels=cfg.parcels,
    )
    meta = read_meta(store)
    counts = {str(k): int(v) for k, v in meta["splits"].items()}
    splits = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    return StageResult(
        {"chips": int(meta["n_chips"]), **{f"chips_{k}": v for k, v in counts.items()}},
        [f"{store}: {meta['n_chips']} chips ({splits}), bands {', '.join(meta['bands'])}"],
    )
