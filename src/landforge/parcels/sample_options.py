"""Options model of the parcel-sample stage (``landforge parcels samples``).

Kept apart from :mod:`landforge.parcels.options` (the parcel-generation stages) so the
multi-source samples of the parcel classifier have their own small module. No heavy
imports: the CLI builds its flags from this model at start-up.
"""

from __future__ import annotations

from pydantic import Field

from landforge.config import IntList, Options, StrList

__all__ = ["SampleOptions"]


class SampleOptions(Options):
    """Per-parcel samples for the multi-source classifier (MSLU-100K, Huang et al.).

    Image patches are Poisson-disk squares inside the parcel
    (:func:`~landforge.parcels.poisson.poisson_patches`); the paper gives no patch size,
    so ``patch_px`` and ``max_patches`` are ours.
    """

    id_col: str = Field("parcel_id", description="Parcel id column (unique per parcel).")
    label_col: str | None = Field(
        None, description="Class column of the parcels (e.g. use_primary); none: unlabelled."
    )
    patch_px: int = Field(
        224, ge=8, description="Patch side in image pixels (ours: the paper gives none)."
    )
    max_patches: int = Field(8, ge=1, description="Patches per parcel at most (ours: 8).")
    min_inside: float = Field(
        0.75, gt=0, le=1, description="Smallest share of a patch inside its parcel (ours)."
    )
    bands: IntList | None = Field(
        None, description="Image bands to cut (1-based, e.g. 1,2,3); default all."
    )
    series_length: int = Field(
        24, ge=2, description="Population series length (hours; MSLU: one day, 24 values)."
    )
    population_day: int | None = Field(
        0,
        ge=0,
        description="Day to take from a population table with a 'day' column (0 = first); "
        "none: the mean over days.",
    )
    population_value_col: str = Field(
        "density", description="Value column of a long population table."
    )
    poi_columns: StrList | None = Field(
        None,
        description="POI feature columns to use (default: n_*, poi_density_ha, emb_tfidf_*, "
        "emb_mean_* of `landforge parcels features`).",
    )
    seed: int = Field(0, description="Random seed of the patch positions.")
