"""Pipeline runner: named stages from a YAML file, a manifest, skip and resume."""

from landforge.pipeline.runner import (
    PipelineSpec,
    StageResult,
    load_pipeline,
    register_stage,
    run_pipeline,
    stage_types,
)

__all__ = [
    "PipelineSpec",
    "StageResult",
    "load_pipeline",
    "register_stage",
    "run_pipeline",
    "stage_types",
]
