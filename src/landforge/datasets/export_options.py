"""Options models of dataset export / import (``landforge dataset export|import``).

No heavy imports: the CLI builds its flags from these models at start-up.

``format`` picks the exporter (:data:`landforge.datasets.export.EXPORTERS`); a new
format is one more value of :data:`ExportFormat` and one function registered there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from landforge.config import Options, StrMap

__all__ = ["ExportFormat", "ExportOptions", "ImportFormat", "ImportOptions"]

#: formats ``dataset export`` writes (add a value here and an exporter in export.py)
ExportFormat = Literal["stac", "mslu"]
#: formats ``dataset import`` reads back into a chip store
ImportFormat = Literal["stac"]


class ExportOptions(Options):
    """How a dataset is exported (``landforge dataset export``)."""

    format: ExportFormat = Field(
        "stac",
        description="Export format: stac (a chip store as a STAC catalog) or mslu (labelled "
        "parcels in the MSLU-100K layout; `landforge label mslu` has all its options).",
    )
    taxonomies: StrMap = Field(
        default_factory=dict,
        description="Class system per label for class names, e.g. use=rci,footprint=... "
        "(default: label values as names).",
    )
    title: str | None = Field(None, description="Title of the exported dataset.")
    description: str = Field(
        "Land-use chips exported by landforge", min_length=1, description="Dataset description."
    )
    datetime: str | None = Field(
        None,
        description="Acquisition time of the imagery (ISO 8601, e.g. 2017-02-16T10:00:00Z); "
        "default: the time of export.",
    )
    license: str = Field("other", min_length=1, description="SPDX licence id of the data.")


class ImportOptions(Options):
    """How a dataset is read back into a chip store (``landforge dataset import``)."""

    format: ImportFormat = Field("stac", description="Format of the dataset: stac.")
