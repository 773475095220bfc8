"""Options of the dataset-quality grading (``landforge grade``): defaults live only here.

Levels (MSLU-100K, ours where marked):

* **0**: lacks information: no label, or a required modality missing (``require``;
  default: POIs for ``softprob``/``cleanlab``, POIs and imagery for ``cascade``);
* **1**: cannot be judged: the manual flag says so, or the parcel's area exceeds
  ``max_area_m2`` (the proxy);
* **2**: a manual ``poor`` flag, or the model(s) disagree / are unsure;
* **3-5**: by the method: soft probability (max p >= 0.99 -> 5, [0.9, 0.99) -> 4,
  [0.6, 0.9) -> 3, below -> 2), the model cascade (correct by tier 1 -> 5, by tier 2 -> 4,
  by the full model -> 3, else 2) or confident learning (cleanlab; mapping ours).

No heavy imports: the CLI builds its flags from these models at start-up.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from landforge.config import Options
from landforge.errors import OptionError

__all__ = [
    "FloatList",
    "GradeOptions",
    "NameList",
    "MANUAL_FLAGS",
    "METHODS",
    "MODALITIES",
    "TIER_MODELS",
    "TIER_RULES",
]

METHODS = ("softprob", "cascade", "cleanlab")
#: modality -> flag column of a predictions file (``has_<modality>``)
MODALITIES = ("label", "poi", "image", "population")
#: how the training set of a cascade tier is chosen
TIER_RULES = ("clean", "agree", "random")
#: scikit-learn classifiers a tier (or the full model) can be
TIER_MODELS = ("hgb", "logistic", "forest")
#: manual flag values (case-insensitive; empty / missing = no flag)
MANUAL_FLAGS = {"": "ok", "ok": "ok", "cannot_judge": "cannot_judge", "poor": "poor"}


def _floats(value: Any) -> Any:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


#: numbers: YAML list or ``"0.6,0.9,0.99"``.
FloatList = Annotated[list[float], BeforeValidator(_floats)]


def _names(value: Any) -> Any:
    # the CLI gives a list[str] field as a repeatable flag: split "a,b" items too
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        return [v.strip() for item in value for v in str(item).split(",") if v.strip()]
    return value


#: names: YAML list or ``"a,b,c"`` (a required list is also a repeatable CLI flag).
NameList = Annotated[list[str], BeforeValidator(_names)]


class GradeOptions(Options):
    """How every sample of a labelled dataset gets a quality level 0-5."""

    method: Literal["softprob", "cascade", "cleanlab"] = Field(
        "softprob",
        description="softprob (max class probability of the full model), cascade (tier "
        "models on growing, less clean subsets) or cleanlab (confident learning).",
    )
    thresholds: FloatList = Field(
        [0.6, 0.9, 0.99],
        description="Probability bounds of levels 3, 4 and 5 (softprob; cleanlab's label "
        "quality score for samples it does not flag).",
    )
    score: Literal["max", "label"] = Field(
        "max",
        description="softprob score: max (the largest class probability, MSLU) or label "
        "(probability of the given label: not in the paper).",
    )
    probabilities: Literal["in_sample", "out_of_fold"] = Field(
        "in_sample",
        description="Probabilities of models trained here: in_sample (MSLU) or out_of_fold "
        "(cross-fitted on spatial blocks: not in the paper). cleanlab is always out of fold.",
    )
    require: NameList | None = Field(
        None,
        description="Modalities a sample needs above level 0: label, poi, image, "
        "population (default: label,poi; cascade: label,poi,image).",
    )
    label_col: str = Field("label", description="Label (class name) column.")
    id_col: str = Field("parcel_id", description="Parcel id column.")
    manual_col: str | None = Field(
        None,
        description="Manual flag column: empty/ok, cannot_judge (level 1) or poor (level 2).",
    )
    max_area_m2: float | None = Field(
        None, gt=0, description="Parcels larger than this cannot be judged (level 1)."
    )
    tier_sizes: FloatList = Field(
        [1000, 10000],
        description="Cascade: training samples of tier 1 and tier 2 (a count, or a share of "
        "the gradable samples when below 1); the full model uses all of them.",
    )
    tier_rules: NameList = Field(
        ["clean", "agree"],
        description="Cascade: how each tier's samples are chosen: clean (complete, purest "
        "first), agree (the previous tier predicts their label, most confident first), random.",
    )
    tier_models: NameList = Field(
        ["hgb", "hgb", "hgb"],
        description="Classifier of tier 1, tier 2 and the full model (hgb, logistic, forest); "
        "also the model of softprob and cleanlab (the last one).",
    )
    purity_col: str | None = Field(
        None, description="Label purity column used by the clean rule (default: none)."
    )
    folds: int = Field(5, ge=2, description="Folds of the out-of-fold probabilities.")
    block_size_m: float = Field(
        300.0, gt=0, description="Side of the spatial blocks of the folds and the gold set (m)."
    )
    gold_col: str | None = Field(
        None,
        description="Boolean column marking the gold test set of the level table (default: "
        "a spatially blocked share, gold_share).",
    )
    gold_share: float = Field(
        0.2, gt=0, lt=1, description="Share of blocks held out as gold set without gold_col."
    )
    small_m2: float = Field(5000.0, gt=0, description="Error analysis: small parcels below (m²).")
    large_m2: float = Field(50000.0, gt=0, description="Error analysis: large parcels above (m²).")
    group_col: str | None = Field(
        None, description="Error analysis per group (city, district) of this column."
    )
    seed: int = Field(0, description="Seed of the folds, the tier samples and the models.")

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: list[float]) -> list[float]:
        if len(value) != 3:
            raise ValueError("give three bounds (levels 3, 4, 5), e.g. 0.6,0.9,0.99")
        if not all(0.0 <= v <= 1.0 for v in value):
            raise ValueError("bounds are probabilities in [0, 1]")
        if not value[0] < value[1] < value[2]:
            raise ValueError("bounds must increase, e.g. 0.6,0.9,0.99")
        return value

    @field_validator("require")
    @classmethod
    def _require(cls, value: list[str] | None) -> list[str] | None:
        bad = [v for v in value or [] if v not in MODALITIES]
        if bad:
            raise ValueError(f"unknown modality {bad[0]!r}; choose from {', '.join(MODALITIES)}")
        return value

    @field_validator("tier_sizes")
    @classmethod
    def _sizes(cls, value: list[float]) -> list[float]:
        if not 1 <= len(value) <= 2:
            raise ValueError("give one or two tier sizes (levels 5 and 4)")
        if any(v <= 0 or (v > 1 and v != int(v)) for v in value):
            raise ValueError("a tier size is a count (>= 1) or a share (0-1)")
        return value

    @field_validator("tier_rules")
    @classmethod
    def _rules(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v not in TIER_RULES]
        if bad:
            raise ValueError(f"unknown rule {bad[0]!r}; choose from {', '.join(TIER_RULES)}")
        return value

    @field_validator("tier_models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v not in TIER_MODELS]
        if bad:
            raise ValueError(f"unknown model {bad[0]!r}; choose from {', '.join(TIER_MODELS)}")
        if not value:
            raise ValueError("name at least one model")
        return value

    @model_validator(mode="after")
    def _across(self) -> GradeOptions:
        if len(self.tier_rules) < len(self.tier_sizes):
            raise OptionError("tier_rules", "give one rule per tier size")
        if self.small_m2 >= self.large_m2:
            raise OptionError("small_m2", "must be below large_m2")
        return self

    def required(self) -> list[str]:
        """The modalities a sample needs above level 0 (``label`` always)."""
        if self.require is not None:
            return ["label", *[m for m in self.require if m != "label"]]
        return ["label", "poi", "image"] if self.method == "cascade" else ["label", "poi"]

    def tier_model(self, tier: int) -> str:
        """Classifier name of tier ``tier`` (0-based; the full model is the last)."""
        return self.tier_models[min(tier, len(self.tier_models) - 1)]
