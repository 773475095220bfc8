"""Stages: parcels from a road network."""

from __future__ import annotations

from landforge.config import StageConfig
from landforge.pipeline.registry import StageContext, StageResult, register_stage


# ---------------------------------------------------------------- parcels
class ParcelsStage(StageConfig):
    input_fields = ("roads", "boundary")
    output_fields = ("out",)
    roads: str
    boundary: str | None = None
    out: str = "parcels.parquet"
    clean_m: float = 5.0
    widths: dict[str, float] = {}


@register_stage("parcels", ParcelsStage)
def parcels(cfg: ParcelsStage, ctx: StageContext) -> StageResult:
    """Cut parcels from the road network (road buffers by class, +-5 m opening)."""
    from landforge.io.vector import read_vector, write_vector
    from landforge.parcels import ParcelConfig, generate_parcels

    roads = read_vector(cfg.roads)
    boundary = read_vector(cfg.boundary) if cfg.boundary else None
    pcfg = ParcelConfig(clean_m=cfg.clean_m, widths=cfg.widths or None)
    result = generate_parcels(roads, boundary, pcfg)
    write_vector(result, cfg.out)
    return StageResult(
        {
            "parcels": len(result),
            "median_area_m2": float(result["area_m2"].median()) if len(result) else 0.0,
            "total_area_km2": float(result["area_m2"].sum() / 1e6),
        }
    )
