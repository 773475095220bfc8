"""Stage: the seeded synthetic city."""

from __future__ import annotations

from typing import Any

from landforge.config import StageConfig
from landforge.pipeline.registry import StageContext, StageResult, register_stage


# ---------------------------------------------------------------- synthetic city
class SynthCityStage(StageConfig):
    output_fields = ("out",)
    out: str = "city"
    seed: int = 0
    size_m: float = 3000.0
    gsd: float = 0.5
    options: dict[str, Any] = {}


@register_stage("synth_city", SynthCityStage)
def synth_city(cfg: SynthCityStage, ctx: StageContext) -> StageResult:
    """Generate the seeded synthetic city (roads, parcels, buildings, POIs, imagery)."""
    from landforge.synth import make_city

    info = make_city(cfg.out, seed=cfg.seed, size_m=cfg.size_m, gsd=cfg.gsd, **cfg.options)
    stats = getattr(info, "stats", None)
    return StageResult(dict(stats) if isinstance(stats, dict) else {})
