"""Options models of the curation stages (``landforge curate tiles|cluster|similar``).

No heavy imports: the CLI builds its flags from these models at start-up.

The national sample paper cuts frames into 512 x 512 patches, describes each by its
first-level label histogram and a rotation-invariant uniform LBP histogram (22 bins),
clusters the patches into scenes with mean-shift and uses the features as a "bag of
features" for similar-image search. Defaults follow the paper where it says something;
the rest is marked "ours" in the field descriptions and in docs/curation.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from landforge.config import IntList, Options
from landforge.errors import OptionError

__all__ = [
    "FEATURE_SETS",
    "ClusterOptions",
    "FeatureSet",
    "SimilarOptions",
    "TilesOptions",
]

#: which features a clustering or a search uses
FeatureSet = Literal["label", "texture", "combined"]
FEATURE_SETS: tuple[str, ...] = ("label", "texture", "combined")


class TilesOptions(Options):
    """How frames are cut into patches and described (``landforge curate tiles``)."""

    size: int = Field(512, ge=8, description="Patch side in pixels (the paper: 512).")
    stride: int | None = Field(
        None, ge=1, description="Step between patches in pixels (default: size, no overlap)."
    )
    edge: Literal["drop", "shift", "partial"] = Field(
        "drop",
        description="Patches that would cross the raster edge: drop them, shift the last "
        "row/column back inside the raster (overlapping its neighbour), or keep the "
        "partial patch (ours).",
    )
    bands: IntList | None = Field(
        None,
        description="1-based image bands averaged into the grey image the LBP texture is "
        "computed on (default: all bands; ours).",
    )
    label_band: int = Field(1, ge=1, description="1-based band of the label raster.")
    taxonomy: str | None = Field(
        None,
        description="Class system (name or YAML path) of the label raster: one histogram "
        "bin per first-level class, label values rolled up to it. Default: bins 1..bins.",
    )
    bins: int = Field(
        10,
        ge=1,
        le=1000,
        description="Without taxonomy: label values 1..bins are the histogram bins (the "
        "paper's 10 first-level classes); other values count as unlabelled.",
    )
    lbp_points: int = Field(
        20, ge=4, le=64, description="LBP sampling points P (the paper: 22 bins, P = 20)."
    )
    lbp_radius: float = Field(
        3.0, gt=0, le=64, description="LBP radius in pixels (not given in the paper; ours)."
    )
    min_valid: float = Field(
        0.5, ge=0, le=1, description="Skip patches with a smaller fraction of valid pixels."
    )

    @model_validator(mode="after")
    def _check(self) -> TilesOptions:
        if self.stride is not None and self.stride > self.size:
            raise OptionError(
                "stride", f"must not exceed size ({self.size}): patches would skip pixels"
            )
        return self


class ClusterOptions(Options):
    """Mean-shift scene clustering of patches (``landforge curate cluster``)."""

    features: FeatureSet = Field(
        "combined",
        description="Features to cluster: label histogram, texture (LBP) histogram, or "
        "both, each column standardised (combined; ours).",
    )
    bandwidth: float | None = Field(
        None, gt=0, description="Mean-shift bandwidth (default: sklearn estimate_bandwidth)."
    )
    quantile: float = Field(
        0.3, gt=0, le=1, description="Quantile of pairwise distances for estimate_bandwidth."
    )
    bandwidth_samples: int = Field(
        1000, ge=10, description="Patches estimate_bandwidth looks at (seeded sample)."
    )
    bin_seeding: bool = Field(
        False, description="Seed mean-shift from a coarse grid (faster on many patches)."
    )
    examples: int = Field(
        6, ge=1, le=50, description="Example patches per cluster in the contact sheet."
    )
    max_clusters_shown: int = Field(
        12, ge=1, le=100, description="Largest clusters drawn in the contact sheet."
    )
    thumb: int = Field(96, ge=16, le=512, description="Thumbnail side (pixels) in the sheet.")
    rgb: IntList | None = Field(
        None,
        description="1-based image bands shown as R,G,B in the sheet (default: 3,2,1 if "
        "the image has 3+ bands, else band 1 as grey).",
    )
    sample_per_cluster: int | None = Field(
        None,
        ge=1,
        description="Cluster-balanced sample: draw this many patches per cluster (all of a "
        "smaller cluster).",
    )
    seed: int = Field(0, description="Seed of the bandwidth sample and the balanced sample.")

    @model_validator(mode="after")
    def _check(self) -> ClusterOptions:
        if self.rgb is not None and len(self.rgb) not in (1, 3):
            raise OptionError("rgb", "give one band (grey) or three (R,G,B)")
        return self


class SimilarOptions(Options):
    """k-nearest-patch search by the same features (``landforge curate similar``).

    Our design: the paper only says the features allow similar-image search.
    """

    features: FeatureSet = Field(
        "combined", description="Features compared: label, texture or combined."
    )
    k: int = Field(5, ge=1, le=1000, description="Number of similar patches per query.")
    metric: Literal["euclidean", "manhattan", "cosine"] = Field(
        "euclidean", description="Distance between feature vectors."
    )
