"""Options model of the chip store (``landforge chips``); defaults live only here.

No heavy imports: the CLI builds its flags from these models at start-up.

The window sampler is a discriminated union on ``method`` (as raster-vision's window
sampling config): :class:`GridSampler`, :class:`RandomSampler` or
:class:`PoissonSampler`. It is written as a mapping (``{method: poisson, radius_m:
100}``), as text (``poisson`` or ``poisson:radius_m=100,min_inside=0.5``) or, for the
two settings the command line has always spelt flat, with ``n_chips`` / ``radius_m``
beside the sampler name (``sampler: random, n_chips: 50``): those are folded into the
sampler on validation (and override a value the sampler gives).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    model_validator,
)

from landforge.config import IntList, Options, error_field, error_message
from landforge.errors import OptionError

__all__ = [
    "DEFAULT_SPLIT",
    "SAMPLERS",
    "ChipOptions",
    "GridSampler",
    "PoissonSampler",
    "RandomSampler",
    "Sampler",
    "check_label_names",
    "check_parcels",
]

SAMPLERS = ("grid", "random", "poisson")
"""Window samplers: regular grid, seeded uniform random windows, Poisson-disk centres
inside parcels."""

SPATIAL_SPLIT: dict[str, float] = {"train": 0.6, "val": 0.2, "test": 0.2}
"""The ratios of ``split: spatial``."""

DEFAULT_SPLIT: dict[str, Any] = {**SPATIAL_SPLIT, "block_size": 4}

#: sampler fields that may also be given flat, beside ``sampler`` (the CLI's flags)
_FLAT = {"n_chips": "random", "radius_m": "poisson"}


# ---------------------------------------------------------------- samplers
class _SamplerBase(Options):
    method: str

    def __str__(self) -> str:
        """The text form: ``method`` or ``method:key=value,...`` (non-default fields)."""
        method = self.method
        given = {
            k: v
            for k, v in self.model_dump(exclude={"method"}).items()
            if v != type(self).default(k)
        }
        return method + (":" + ",".join(f"{k}={v}" for k, v in given.items()) if given else "")


class GridSampler(_SamplerBase):
    """Regular windows every ``stride`` pixels, in raster order."""

    method: Literal["grid"] = "grid"


class RandomSampler(_SamplerBase):
    """Seeded uniformly random windows inside the raster (duplicates dropped)."""

    method: Literal["random"] = "random"
    n_chips: int | None = Field(
        None, ge=1, description="Number of windows drawn (default: as many as the grid gives)."
    )


class PoissonSampler(_SamplerBase):
    """Chip centres from Poisson-disk sampling inside parcels (the stage's ``parcels``)."""

    method: Literal["poisson"] = "poisson"
    radius_m: float | None = Field(
        None,
        gt=0,
        description="Smallest distance between centres in one parcel, in metres "
        "(default: the chip side).",
    )
    min_inside: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Smallest share of a chip inside its parcel where it fits (parcels "
        "are often smaller than a chip; chips then reach into the neighbours).",
    )
    max_per_parcel: int | None = Field(
        None, ge=1, description="At most this many chips per parcel (default: no limit)."
    )


_SAMPLER_TYPES: dict[str, type[_SamplerBase]] = {
    "grid": GridSampler,
    "random": RandomSampler,
    "poisson": PoissonSampler,
}


def _sampler_data(value: Any) -> Any:
    """A sampler as text, name or mapping -> a mapping with ``method`` (models pass)."""
    if isinstance(value, str):
        name, _, rest = value.strip().partition(":")
        data: dict[str, Any] = {"method": name.strip()}
        for item in (v.strip() for v in rest.split(",")):
            if not item:
                continue
            key, sep, val = item.partition("=")
            if not sep or not key.strip() or not val.strip():
                raise ValueError(
                    f"expected METHOD or METHOD:NAME=VALUE,... (e.g. poisson:radius_m=100), "
                    f"got {value!r}"
                )
            data[key.strip()] = val.strip()
        value = data
    if isinstance(value, Mapping):
        method = value.get("method")
        if method is None:
            raise ValueError(f"give the sampler's method: {', '.join(SAMPLERS)}")
        if method not in _SAMPLER_TYPES:
            raise ValueError(f"unknown sampler {method!r}; available: {', '.join(SAMPLERS)}")
        return dict(value)
    return value


#: the window sampler: one of the three models, chosen by ``method``
Sampler = Annotated[
    GridSampler | RandomSampler | PoissonSampler,
    Field(discriminator="method"),
    BeforeValidator(_sampler_data),
]


# ---------------------------------------------------------------- splits
def _split_data(value: Any) -> Any:
    """``spatial`` (60/20/20), ``none`` or ``train=0.7,val=0.3`` -> a mapping or None."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in ("none", ""):
        return None
    if text.lower() == "spatial":
        return dict(SPATIAL_SPLIT)
    out: dict[str, float] = {}
    for item in (v.strip() for v in text.split(",")):
        if not item:
            continue
        key, sep, val = item.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            out[key.strip()] = float(val)
        except ValueError:
            raise ValueError(
                f"expected 'spatial', 'none' or NAME=RATIO,..., got {item!r}"
            ) from None
    return out


def _check_ratios(value: dict[str, float] | None) -> dict[str, float] | None:
    if value is None:
        return value
    for name, ratio in value.items():
        if not math.isfinite(ratio) or ratio < 0:
            raise ValueError(f"ratio of {name!r} must be a non-negative number, got {ratio}")
    if not value or sum(value.values()) <= 0:
        raise ValueError("give at least one positive ratio, e.g. train=0.8,val=0.2")
    return value


#: split ratios per split name (normalised when the store is cut), or None
SplitRatios = Annotated[
    dict[str, float] | None, BeforeValidator(_split_data), AfterValidator(_check_ratios)
]


# ---------------------------------------------------------------- the options
class ChipOptions(Options):
    """How an image and label rasters are cut into a chip store (``landforge chips``)."""

    size: int = Field(256, ge=1, description="Chip side in pixels.")
    stride: int | None = Field(
        None,
        ge=1,
        description="Step between grid windows in pixels (default: the chip size, no "
        "overlap); pixels in a last strip narrower than a chip are not chipped.",
    )
    bands: IntList | None = Field(
        None, description="Image bands to use, 1-based, e.g. 1,2,3 (default: all)."
    )
    sampler: Sampler = Field(
        default_factory=GridSampler,
        description="Window sampler: grid (every stride pixels), random (seeded uniform "
        "windows) or poisson (Poisson-disk centres inside the parcels); its settings as "
        "text (poisson:radius_m=100,min_inside=0.5) or a YAML mapping "
        "({method: poisson, radius_m: 100}).",
    )
    n_chips: int | None = Field(
        None,
        ge=1,
        exclude=True,
        repr=False,
        description="Number of random windows (default: as many as the grid gives); "
        "sets the random sampler's n_chips.",
    )
    radius_m: float | None = Field(
        None,
        gt=0,
        exclude=True,
        repr=False,
        description="Smallest distance between poisson centres in one parcel, in metres "
        "(default: the chip side); sets the poisson sampler's radius_m.",
    )
    split: SplitRatios = Field(
        None,
        description="'spatial' (train/val/test 0.6/0.2/0.2 by blocks), 'none', or "
        "ratios NAME=RATIO,... (a mapping in YAML, block_size may sit in it); default: "
        "every chip in train.",
    )
    block_size: int = Field(4, ge=1, description="Split block side in chip positions.")
    min_valid: float = Field(
        0.5, ge=0, le=1, description="Smallest fraction of valid pixels a chip needs."
    )
    seed: int = Field(
        0, description="Seeds the split, the samplers and the percentile sample of the stats."
    )

    @model_validator(mode="before")
    @classmethod
    def _fold_flat(cls, data: Any) -> Any:
        """``split`` text and ``split.block_size``; flat ``n_chips`` / ``radius_m``."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        split = data.get("split")
        if isinstance(split, str):
            try:
                split = _split_data(split)
            except ValueError as exc:
                raise OptionError("split", str(exc)) from None
        if isinstance(split, Mapping) and "block_size" in split:
            split = dict(split)
            inner = split.pop("block_size")
            data.setdefault("block_size", inner)  # a flat block_size (a CLI flag) wins
        if "split" in data:
            data["split"] = split
        flat = {k: data.pop(k) for k in _FLAT if k in data}
        flat = {k: v for k, v in flat.items() if v is not None}
        if flat:
            data["sampler"] = _with_flat(data.get("sampler", "grid"), flat)
        return data


def _with_flat(sampler: Any, flat: dict[str, Any]) -> Any:
    """The sampler with the flat settings folded in (they override its own)."""
    try:
        data = _sampler_data(sampler)
    except ValueError as exc:
        raise OptionError("sampler", str(exc)) from None
    if isinstance(data, BaseModel):
        data = {k: getattr(data, k) for k in type(data).model_fields}
    if not isinstance(data, Mapping):
        return sampler  # not a sampler at all: the field's validation says so
    method = data["method"]
    for name in flat:
        if _FLAT[name] != method:
            raise OptionError(name, f"only applies to the {_FLAT[name]} sampler, not {method!r}")
    merged = {**data, **flat}
    try:
        return _SAMPLER_TYPES[method].model_validate(merged)
    except ValidationError as exc:
        field = error_field(exc)
        where = field if field in flat else f"sampler.{field}"
        raise OptionError(where, error_message(exc)) from None


# ---------------------------------------------------------------- checks of data arguments
def check_label_names(labels: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``labels`` names at least one label, each a plain name."""
    if not labels:
        raise ValueError("give at least one label raster, e.g. footprint=mask.tif")
    for name in labels:
        if not str(name).isidentifier() or name in ("image", "valid"):
            raise ValueError(
                f"label name {name!r} must be a plain identifier other than image/valid"
            )


def check_parcels(sampler: GridSampler | RandomSampler | PoissonSampler, parcels: Any) -> None:
    """OptionError('parcels') unless parcels are given exactly for the poisson sampler."""
    if sampler.method == "poisson" and parcels is None:
        raise OptionError("parcels", "the poisson sampler needs a parcels layer")
    if sampler.method != "poisson" and parcels is not None:
        raise OptionError("parcels", f"only applies to the poisson sampler, not {sampler.method!r}")
