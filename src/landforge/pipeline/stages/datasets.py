"""Stages: chip stores."""

from __future__ import annotations

from pathlib import Path

from landforge.config import StageConfig
from landforge.pipeline.registry import StageContext, StageResult, register_stage


# ---------------------------------------------------------------- chips
class ChipsStage(StageConfig):
    input_fields = ("image", "extras", "labels")
    output_fields = ("out",)
    image: str
    bands: list[int] | None = None
    extras: list[str] = []
    labels: dict[str, str]
    size: int = 256
    stride: int | None = None
    split: dict[str, float] | None = None
    seed: int = 0
    out: str = "chips"


@register_stage("chips", ChipsStage)
def chips(cfg: ChipsStage, ctx: StageContext) -> StageResult:
    """Cut the image (+ extra rasters) and label rasters into a chip store."""
    import geopandas as gpd

    from landforge.datasets.chips import build_chips

    build_chips(
        cfg.image,
        cfg.labels,
        cfg.out,
        extras=cfg.extras,
        bands=cfg.bands,
        size=cfg.size,
        stride=cfg.stride,
        split=cfg.split,
        seed=cfg.seed,
    )
    index = gpd.read_parquet(Path(cfg.out) / "index.parquet")
    counts = index["split"].value_counts().to_dict() if "split" in index else {}
    return StageResult({"chips": len(index), **{f"chips_{k}": int(v) for k, v in counts.items()}})
