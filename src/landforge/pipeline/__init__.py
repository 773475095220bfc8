"""Pipeline runner: named stages from a YAML file, a manifest, skip and resume."""

from landforge.pipeline.registry import StageContext, StageResult, StageType, register_stage
from landforge.pipeline.runner import (
    PipelineSpec,
    load_pipeline,
    run_pipeline,
    stage_types,
)

__all__ = [
    "PipelineSpec",
    "StageContext",
    "StageResult",
    "StageType",
    "load_pipeline",
    "register_stage",
    "run_pipeline",
    "stage_types",
]
