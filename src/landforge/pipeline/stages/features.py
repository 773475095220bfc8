"""Stages: POI features."""

from __future__ import annotations

from landforge.config import StageConfig
from landforge.pipeline.registry import StageContext, StageResult, register_stage


# ---------------------------------------------------------------- POI maps
class PoiMapsStage(StageConfig):
    input_fields = ("poi", "like")
    output_fields = ("out",)
    poi: str
    like: str
    taxonomy: str = "gbt35648_rci"
    category_col: str = "category"
    dmax: dict[str, float]
    out: str = "poi.tif"


@register_stage("poi_maps", PoiMapsStage)
def poi_maps(cfg: PoiMapsStage, ctx: StageContext) -> StageResult:
    """POI distance-decay probability maps on the image grid."""
    from landforge.features.poi_maps import write_poi_probability_maps
    from landforge.io.poi import read_pois
    from landforge.io.raster import read_grid
    from landforge.taxonomy import load_mapping

    mapping = load_mapping(cfg.taxonomy)
    pois = read_pois(cfg.poi, category_col=cfg.category_col)
    grid = read_grid(cfg.like)
    write_poi_probability_maps(
        cfg.out, pois, grid, cfg.dmax, mapping=mapping, category_col=cfg.category_col
    )
    return StageResult({"pois": len(pois), "classes": list(cfg.dmax)})
