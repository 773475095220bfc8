"""Stages: dataset export and import (``landforge dataset export|import``).

Options live in :mod:`landforge.datasets.export_options`; ``format`` chooses the
exporter (:data:`landforge.datasets.export.EXPORTERS`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from landforge.config import StageConfig
from landforge.datasets.export_options import ExportOptions, ImportOptions
from landforge.pipeline.registry import StageContext, StageResult, register_stage


class DatasetExportStage(StageConfig, ExportOptions):
    """``landforge dataset export STORE --format stac --out catalog``."""

    input_fields = ("store", "map")
    output_fields = ("out",)
    cli_arguments = ("store",)
    store: str = Field(
        description="stac: a chip store directory (`landforge chips`); mslu: a labelled "
        "parcels file (`landforge label check --labelled`)."
    )
    map: str | None = Field(
        None,
        description="stac: a predicted class map to include (COG); mslu: the image the "
        "sample patches are cut from.",
    )
    out: str = Field("dataset_export", description="Directory to write the export to.")


@register_stage("dataset_export", DatasetExportStage, command="dataset export")
def dataset_export(cfg: DatasetExportStage, ctx: StageContext) -> StageResult:
    """Export a chip store as STAC, or labelled parcels in the MSLU-100K layout."""
    # domain functions import pystac and rasterio: loaded when the stage runs
    from landforge.datasets.chip_store import read_meta
    from landforge.datasets.export import export_dataset

    out = export_dataset(cfg.store, cfg.out, ExportOptions.build(cfg), map_path=cfg.map)
    if cfg.format == "mslu":
        n = len(list((Path(out) / "Classification").glob("*.xml")))
        return StageResult(
            {"samples": n, "format": "mslu"}, [f"{out}: MSLU-100K layout of {n} samples"]
        )
    n = int(read_meta(cfg.store)["n_chips"])
    extra = " and a predicted map" if cfg.map else ""
    return StageResult(
        {"chips": n, "format": cfg.format}, [f"{out}: {cfg.format} export of {n} chips{extra}"]
    )


class DatasetImportStage(StageConfig, ImportOptions):
    """``landforge dataset import CATALOG --format stac --out chips``."""

    input_fields = ("source",)
    output_fields = ("out",)
    cli_arguments = ("source",)
    source: str = Field(description="Exported dataset (a STAC catalog.json or its folder).")
    out: str = Field("chips", description="Chip store directory to write.")


@register_stage("dataset_import", DatasetImportStage, command="dataset import")
def dataset_import(cfg: DatasetImportStage, ctx: StageContext) -> StageResult:
    """Read an exported dataset (STAC catalog) back into a chip store."""
    from landforge.datasets.chip_store import read_meta
    from landforge.datasets.export import import_dataset

    out = import_dataset(cfg.source, cfg.out, ImportOptions.build(cfg))
    meta = read_meta(out)
    splits = ", ".join(f"{k} {v}" for k, v in sorted(meta["splits"].items()))
    return StageResult(
        {"chips": int(meta["n_chips"])}, [f"{out}: {meta['n_chips']} chips ({splits})"]
    )
