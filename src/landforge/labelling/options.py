"""Options models of the labelling stages (one per step; defaults live only here).

* :class:`TaskOptions`: Label Studio tasks from pre-labelled parcels (``label export``);
* :class:`ImportOptions`: annotations back from Label Studio or a spreadsheet
  (``label import``);
* :class:`CheckOptions`: cross-check agreement and acceptance (``label check``);
* :class:`ServerOptions`: a running Label Studio (``label push`` / ``label pull``);
* :class:`SimulateOptions`: simulated annotators and the whole loop (``label simulate``);
* :class:`MsluOptions`: the MSLU-100K folder layout (``dataset export --format mslu``).

No heavy imports: the CLI builds its flags from these models at start-up.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from landforge.config import Options, StrMap
from landforge.errors import OptionError

__all__ = [
    "MSLU_FOLDERS",
    "BatchOptions",
    "CheckOptions",
    "ImportOptions",
    "MsluOptions",
    "ServerOptions",
    "SimulateOptions",
    "TaskOptions",
]


def _names(value: Any) -> Any:
    """``"a,b"``, ``["a,b", "c"]`` (a repeated flag) -> ``["a", "b", "c"]``; no repeats."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return value
    items = [v.strip() for item in value for v in str(item).split(",") if v.strip()]
    if len(set(items)) != len(items):
        raise ValueError("a name is given twice")
    return items


#: names: ``"a,b,c"``, a YAML list or a repeated flag.
Names = Annotated[list[str], BeforeValidator(_names)]

#: MSLU-100K's five image folders, keyed by the landforge MSLU primary class code.
MSLU_FOLDERS: dict[str, str] = {"E": "Agr", "R": "Res", "B": "Com", "A": "Pub", "M": "Ind"}


class BatchOptions(Options):
    """Batches and the cross-check share (MSLU-100K's loop)."""

    batch_size: int = Field(
        50, ge=1, description="Tasks per batch (one annotator, one predicted class)."
    )
    cross_check: float = Field(
        0.25, ge=0, le=1, description="Share of each annotator's items a second one checks."
    )


class TaskOptions(BatchOptions):
    """How parcels become Label Studio tasks."""

    taxonomy: str = Field("mslu", description="Class system of the labels (taxonomy name/file).")
    level: int = Field(0, ge=0, description="Taxonomy level of the labels (0 = primary).")
    classes: Names = Field(
        default_factory=list,
        description="Classes offered to annotators; default: every class at the level.",
    )
    id_col: str = Field("parcel_id", description="Parcel id column (default: the row number).")
    pred_col: str = Field("pred", description="Predicted class column (the pre-label).")
    score_col: str | None = Field(
        None, description="Pre-label score column; default: the largest prob_<class> column."
    )
    model_version: str = Field("landforge", description="model_version of the predictions.")
    outline: bool = Field(True, description="Also pre-fill the parcel outline (polygonlabels).")
    patch_px: int = Field(256, ge=32, le=4096, description="Patch image size in pixels.")
    margin: float = Field(0.15, ge=0, le=2, description="Margin around a parcel (share of size).")
    image_url: str = Field(
        "", description="Prefix of the image paths in the tasks (e.g. /data/local-files/?d=)."
    )
    poi_category_col: str = Field("category", description="POI category column.")
    poi_top: int = Field(5, ge=1, description="POI categories named in a task's summary.")
    annotators: Names = Field(
        default_factory=list,
        description="Annotators to assign batches to (with cross-checks); none: no assignment.",
    )
    seed: int = Field(0, description="Seed of the cross-check draw.")


class ImportOptions(Options):
    """How an annotation export is read."""

    format: Literal["auto", "json", "json-min", "csv", "ours"] = Field(
        "auto", description="Export format (auto: from the suffix and content)."
    )
    from_name: str = Field("class", description="Name of the Choices tag holding the class.")


class CheckOptions(Options):
    """Agreement thresholds of ``label check``."""

    min_agreement: float = Field(
        0.9, ge=0, le=1, description="A batch below this agreement goes back for revision."
    )
    target: float = Field(0.95, ge=0, le=1, description="Acceptance-rate target.")


class ServerOptions(Options):
    """A running Label Studio server (the token never comes from the command line)."""

    url: str = Field("http://localhost:8080", description="Label Studio URL.")
    token_env: str = Field(
        "LABEL_STUDIO_TOKEN", description="Environment variable holding the API token."
    )
    token_file: str | None = Field(
        None, description="File holding the API token (instead of the variable)."
    )
    project: str = Field("landforge parcels", description="Project title (created or reused).")
    timeout: float = Field(10.0, gt=0, le=600, description="Seconds to wait for an answer.")


class SimulateOptions(BatchOptions, CheckOptions):
    """Simulated annotators and the human-machine loop."""

    truth_col: str = Field("label", description="True class column behind the annotators.")
    id_col: str = Field("parcel_id", description="Parcel id column (default: the row number).")
    features: Names = Field(
        default_factory=list,
        description="Feature columns of the retrained model; default: every numeric column.",
    )
    annotators: int = Field(4, ge=2, description="Number of simulated annotators.")
    error_rate: float = Field(0.08, ge=0, le=1, description="Mean error rate of an annotator.")
    error_spread: float = Field(
        0.5, ge=0, le=1, description="Error rates spread +-this share around the mean."
    )
    confusion: StrMap = Field(
        default_factory=lambda: {"B": "A", "A": "B", "R": "B", "M": "B", "E": "A"},
        description="Where an annotator's mistakes go: CLASS=CONFUSED (else any class).",
    )
    confusion_share: float = Field(
        0.8, ge=0, le=1, description="Share of mistakes that go to the confusable class."
    )
    rounds: int = Field(3, ge=1, le=50, description="Labelling rounds.")
    per_round: int = Field(0, ge=0, description="New tasks per round (0: all in round 1).")
    seed_share: float = Field(
        0.1, ge=0, lt=1, description="Share of parcels with known labels for the first model."
    )
    test_share: float = Field(0.3, gt=0, lt=1, description="Held-out share (model accuracy).")
    seed: int = Field(0, description="Seed of annotators, assignment and splits.")

    @model_validator(mode="after")
    def _shares(self) -> SimulateOptions:
        if self.seed_share + self.test_share >= 1:
            raise OptionError("seed_share", "seed_share + test_share must be below 1")
        return self


class MsluOptions(Options):
    """The MSLU-100K layout: folders, XML per sample, CSV and a GeoParquet index."""

    label_col: str = Field("label", description="Primary class column.")
    secondary_col: str | None = Field(None, description="Secondary class column, if any.")
    id_col: str = Field("parcel_id", description="Parcel id column (default: the row number).")
    level_col: str = Field("level", description="Quality level column (0-5), if present.")
    city_col: str | None = Field(None, description="City column (default: the city option).")
    district_col: str = Field("district_id", description="District column, if present.")
    city: str = Field("", description="City name written where there is no city column.")
    taxonomy: str = Field("mslu", description="Class system of the labels.")
    folders: StrMap = Field(
        default_factory=lambda: dict(MSLU_FOLDERS),
        description="Class code -> image folder (MSLU: E=Agr,R=Res,B=Com,A=Pub,M=Ind).",
    )
    other: Literal["skip", "code"] = Field(
        "skip", description="Classes without a folder: skip them or use their code as folder."
    )
    patch_px: int = Field(256, ge=32, le=4096, description="Patch size when rendering images.")
    margin: float = Field(0.15, ge=0, le=2, description="Margin around a parcel (share of size).")
