"""Options models of the inference stages (one per stage; defaults live only here).

No heavy imports: the CLI builds its flags from these models at start-up.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from landforge.config import (
    IntList,
    Options,
    SchedulerAddress,
    check_dask_choice,
    none_word,
)
from landforge.errors import OptionError

__all__ = [
    "AssignParcelsOptions",
    "BuiltupOptions",
    "PredictOptions",
    "VectorizeOptions",
]


class PredictOptions(Options):
    """How a checkpoint maps a raster (``landforge predict``).

    Where blocks run: ``workers`` 0 computes them in this process, ``workers`` N on a
    local Dask cluster of N single-threaded processes, ``scheduler`` on a running Dask
    cluster. (The earlier ``scheduler: local`` with ``workers: N`` is read as
    ``workers: N``.)
    """

    window: int = Field(1024, ge=1, description="Window size in pixels.")
    overlap: int = Field(
        128, ge=0, description="Context margin dropped on each side of a window (pixels)."
    )
    tta: Annotated[Literal["flips", "d4"] | None, BeforeValidator(none_word)] = Field(
        None, description="Test-time augmentation: none, flips or d4."
    )
    batch: int = Field(8, ge=1, description="Windows per forward pass.")
    threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Footprint probability at or above which a pixel is a building.",
    )
    probs_dtype: Literal["float32", "uint8"] = Field(
        "float32",
        description="Type of the class probabilities: float32 (nodata NaN) or uint8 "
        "(scale 1/254, nodata 255).",
    )
    pad_multiple: int = Field(
        32, ge=1, description="Windows are padded by reflection to a multiple of this."
    )
    device: str = Field("cpu", description="torch device: cpu, cuda, cuda:1, ...")
    bands: IntList | None = Field(
        None,
        description="1-based image bands, e.g. 1,2,3 (default: all, or those matching the "
        "model card's band names).",
    )
    blend: bool = Field(
        False, description="Average overlapping windows (smooth weights) instead of centre crops."
    )
    block_windows: int = Field(
        4, ge=1, description="Windows per block side (the unit of work and of resume)."
    )
    workers: int = Field(
        0,
        ge=0,
        description="Run blocks on a local Dask cluster of N single-threaded processes "
        "(0: in this process).",
    )
    scheduler: SchedulerAddress = Field(
        None, description="Run blocks on a running Dask scheduler, e.g. tcp://host:8786."
    )
    resume: bool = Field(
        True,
        description="Reuse the finished blocks (OUT.parts/) of an interrupted run with the same "
        "model, options and inputs; off: discard them.",
    )

    @model_validator(mode="before")
    @classmethod
    def _local_scheduler(cls, data: Any) -> Any:
        # the earlier spelling of a local cluster: scheduler "local" + workers (default 2)
        if isinstance(data, dict) and data.get("scheduler") == "local":
            data = {**data, "scheduler": None, "workers": data.get("workers", 2)}
        return data

    @field_validator("bands")
    @classmethod
    def _one_based(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            if not value:
                raise ValueError("give at least one band, or leave it out")
            if min(value) < 1:
                raise ValueError(f"band numbers start at 1, got {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PredictOptions:
        if self.window - 2 * self.overlap <= 0:
            raise OptionError(
                "overlap",
                f"overlap {self.overlap} is the margin dropped on each side of a window; "
                f"it must be less than half the window ({self.window})",
            )
        check_dask_choice(self.workers, self.scheduler)
        return self


class BuiltupOptions(Options):
    """How settlement rasters become a built-up mask (``landforge builtup``).

    The target grid is cut into square blocks of ``block`` pixels (the unit of work and
    of memory); ``workers`` / ``scheduler`` run them on Dask as for ``predict``.
    """

    values: str | None = Field(
        None,
        description='Built-up values per input, ";"-separated: a list (1,2) or a threshold '
        "(>0); one item applies to all inputs. Default >0.",
    )
    band: int = Field(1, ge=1, description="Band of every input to read.")
    block: int = Field(
        2048, ge=1, description="Processing block size in pixels (memory grows with its square)."
    )
    skip_unreadable: bool = Field(
        False,
        description="Count an input that cannot be read (missing, corrupt, truncated) as no "
        "data, with one warning naming the files, instead of stopping with an error.",
    )
    workers: int = Field(
        0,
        ge=0,
        description="Run blocks on a local Dask cluster of N single-threaded processes "
        "(0: in this process).",
    )
    scheduler: SchedulerAddress = Field(
        None, description="Run blocks on a running Dask scheduler, e.g. tcp://host:8786."
    )

    @model_validator(mode="after")
    def _one_cluster(self) -> BuiltupOptions:
        check_dask_choice(self.workers, self.scheduler)
        return self


class AssignParcelsOptions(Options):
    """How parcels get a class from a class map (``landforge parcels assign``)."""

    ignore: IntList = Field(
        default_factory=lambda: [0], description="Class values not counted, e.g. 0 or 0,9."
    )
    all_touched: bool = Field(
        False, description="Count every pixel a parcel touches, not only pixel centres."
    )
    taxonomy: Annotated[str | None, BeforeValidator(none_word)] = Field(
        "rci",
        description="Class system naming the values of a map without class names "
        "(maps from `landforge predict` carry theirs); other values are named "
        "class_<value>; none: all are.",
    )
    block: int = Field(4096, ge=1, description="Processing block size in pixels.")


class VectorizeOptions(Options):
    """How a class map becomes building polygons (``landforge vectorize``)."""

    simplify_m: float = Field(
        0.5, ge=0, description="Douglas-Peucker tolerance in metres (0 keeps the pixel outline)."
    )
    min_area_m2: float = Field(4.0, ge=0, description="Drop smaller buildings (m²).")
    block: int = Field(4096, ge=2, description="Processing block size in pixels.")
