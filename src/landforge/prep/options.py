"""Options models of the image-preparation stages (one per stage; defaults live only here).

* :class:`RetinexOptions`: illumination correction (``landforge prep retinex``,
  :func:`~landforge.prep.retinex.retinex`);
* :class:`GapfillOptions`: cloud/shadow gap-fill by ordinary kriging (``landforge prep
  gapfill``, :func:`~landforge.prep.gapfill.gapfill`);
* :class:`MonthlyOptions`: Sentinel monthly composites (``landforge prep monthly``,
  :func:`~landforge.prep.monthly.monthly_composites`);
* :class:`CompositeOptions`: band selection and percentile stretch to uint8
  (``landforge prep composite``, :func:`~landforge.prep.composite.composite`);
* :class:`ReclassifyOptions`: class rules inside/outside an urban boundary
  (``landforge prep reclassify``, :func:`~landforge.prep.reclassify.reclassify`).

No heavy imports: the CLI builds its flags from these models at start-up.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from landforge.config import IntList, Options

__all__ = [
    "CompositeOptions",
    "GapfillOptions",
    "MonthlyOptions",
    "ReclassifyOptions",
    "RetinexOptions",
    "WindowOptions",
]


def _split(value: Any) -> Any:
    """``"a,b,c"`` -> ``["a", "b", "c"]``; lists and tuples pass through."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


#: numbers: YAML list or ``"15,80,250"``.
FloatList = Annotated[list[float], BeforeValidator(_split)]
#: two numbers: YAML list or ``"2,98"``.
FloatPair = Annotated[tuple[float, float], BeforeValidator(_split)]
#: variogram model names: YAML list or ``"spherical,exponential"``.
VariogramModels = Annotated[
    list[Literal["spherical", "exponential", "gaussian"]], BeforeValidator(_split)
]


class WindowOptions(Options):
    """How a prep stage walks a raster: block size and the size of the global sample."""

    block: int = Field(
        1024, ge=64, description="Window size in pixels (memory grows with block + margins)."
    )
    sample_pixels: int = Field(
        2_000_000,
        ge=10_000,
        description="Pixels of the whole-raster sample for global statistics (percentiles).",
    )


class RetinexOptions(WindowOptions):
    """Single-scale Retinex of the building-use paper; multi-scale as an option (ours)."""

    sigma: float = Field(
        50.0, gt=0, description="Gaussian sigma of the illumination field, in pixels."
    )
    multiscale: FloatList | None = Field(
        None,
        description=(
            "Multi-scale Retinex sigmas, e.g. 15,80,250: per band, equal weights "
            "(not in the paper; replaces sigma)."
        ),
    )
    truncate: float = Field(
        3.0, ge=2.0, le=6.0, description="Gaussian kernel radius and window margin, in sigmas."
    )
    rgb: IntList | None = Field(
        None,
        description=(
            "Bands R,G,B (1-based) for the Rec.601 luminance; default 1,2,3 for a 3-band "
            "image, else the mean of all bands."
        ),
    )
    stretch: FloatPair = Field(
        (1.0, 99.0),
        description="Percentiles of the Retinex output mapped to the input's min..max.",
    )

    @model_validator(mode="after")
    def _check(self) -> RetinexOptions:
        from landforge.errors import OptionError

        lo, hi = self.stretch
        if not 0 <= lo < hi <= 100:
            raise OptionError("stretch", "expected two percentiles 0 <= low < high <= 100")
        if self.rgb is not None and len(self.rgb) != 3:
            raise OptionError("rgb", "give three band numbers R,G,B")
        if self.multiscale is not None and (not self.multiscale or min(self.multiscale) <= 0):
            raise OptionError("multiscale", "give one or more positive sigmas")
        return self

    def sigmas(self) -> list[float]:
        """The sigmas in use: the multi-scale list, else the single sigma."""
        return list(self.multiscale) if self.multiscale else [self.sigma]


class GapfillOptions(Options):
    """Gap-fill by ordinary kriging in local neighbourhoods (building-use paper)."""

    method: Literal["kriging", "mean", "idw", "linear"] = Field(
        "kriging",
        description=(
            "kriging (ordinary, variogram chosen by fit) or a baseline: mean of the "
            "neighbourhood, inverse-distance (power 2), linear interpolation."
        ),
    )
    models: VariogramModels = Field(
        ["spherical", "exponential", "gaussian"],
        description="Variogram models tried per gap; the best fit (R2) is used.",
    )
    ring: int = Field(
        12, ge=1, description="Neighbourhood: valid pixels within this many pixels of a gap."
    )
    max_points: int = Field(
        300, ge=10, description="Most valid pixels (random, seeded) conditioning one gap."
    )
    min_points: int = Field(
        12, ge=3, description="Fewer valid neighbours: the gap is filled by their mean."
    )
    bands: IntList | None = Field(None, description="Bands to fill (1-based); default all.")
    block: int = Field(512, ge=64, description="Window size in pixels (margin = ring).")
    seed: int = Field(0, description="Seed of the neighbour subsample.")


class MonthlyOptions(Options):
    """Per-month mean of clear observations (FUSU A.2)."""

    sensor: Literal["s2", "s1"] = Field(
        "s2", description="s2: optical bands with cloud masks; s1: VV/VH backscatter."
    )
    bands: IntList | None = Field(
        None, description="Bands to composite (1-based); default all but the cloud band."
    )
    res: float = Field(10.0, gt=0, description="Output pixel size (resampled by nearest).")
    cloud_band: int | None = Field(
        None,
        ge=1,
        description="Band of each scene holding a cloud mask/probability; default the "
        "band described 'cloud', 'CLM' or 'CLP' if any.",
    )
    masks: str | None = Field(
        None, description="Folder of cloud masks/probabilities named as the scenes."
    )
    cloud_threshold: float = Field(
        0.5, description="A pixel is cloudy where the mask/probability is >= this value."
    )
    s1_units: Literal["auto", "linear", "db"] = Field(
        "auto", description="Units of S1 input (auto: the 'units' tag, else linear)."
    )
    db: bool = Field(False, description="S1: write the monthly means in dB (else linear).")
    stack: bool = Field(
        False,
        description="One stack file with months as band descriptions (+ .count.tif) "
        "instead of one COG per month.",
    )
    block: int = Field(1024, ge=64, description="Window size in pixels.")


class CompositeOptions(WindowOptions):
    """Band selection and order, per-band percentile stretch to uint8 (UBGG)."""

    bands: IntList = Field(
        [1, 2, 3],
        description="Bands in output order (1-based), e.g. 4,3,2 for NIR-R-G false colour.",
    )
    percentiles: FloatPair = Field(
        (2.0, 98.0), description="Low and high percentile of each band mapped to 1 and 255."
    )

    @model_validator(mode="after")
    def _check(self) -> CompositeOptions:
        from landforge.errors import OptionError

        lo, hi = self.percentiles
        if not 0 <= lo < hi <= 100:
            raise OptionError("percentiles", "expected two percentiles 0 <= low < high <= 100")
        if not self.bands:
            raise OptionError("bands", "give at least one band")
        return self


class ReclassifyOptions(Options):
    """Classes changed inside/outside an urban boundary by a rule table (UBGG)."""

    rules: str | None = Field(
        None,
        description="Rules YAML (taxonomy + rules: from/to/where); default UBGG: "
        "grass outside the boundary -> farmland.",
    )
    taxonomy: str = Field(
        "ubgg", description="Class system of the map when the rules file names none."
    )
    all_touched: bool = Field(False, description="Pixels touched by the boundary count as inside.")
    block: int = Field(2048, ge=64, description="Window size in pixels.")
