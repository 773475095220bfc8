"""Options models of the evaluation stages (one per stage; defaults live only here).

No heavy imports: the CLI builds its flags from these models at start-up.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from landforge.config import IntList, Options
from landforge.errors import OptionError

__all__ = [
    "NO_REFERENCE",
    "ClassNames",
    "EvaluateOptions",
    "EvaluateRoadsOptions",
    "parse_class_names",
]

#: the problem when a road evaluation has neither reference lines nor a reference mask
NO_REFERENCE = "give reference centre lines, or a reference road mask (truth_mask)"


def parse_class_names(value: Any) -> Any:
    """``"1=res,2=com"`` -> ``{1: "res", 2: "com"}``; ``"a,b,c"`` or a list -> values 0, 1, 2.

    A mapping passes through (pydantic converts its keys to integers).
    """
    if isinstance(value, list | tuple):
        return {i: name for i, name in enumerate(value)}
    if not isinstance(value, str):
        return value
    items = [s.strip() for s in value.split(",") if s.strip()]
    if all("=" in s for s in items):
        out: dict[int, str] = {}
        for item in items:
            number, name = item.split("=", 1)
            try:
                out[int(number)] = name.strip()
            except ValueError:
                raise ValueError(f"{number!r} is not an integer class value") from None
        return out
    if any("=" in s for s in items):
        raise ValueError("use either 'value=name,...' for every class or 'a,b,c'")
    if len(items) < 2:
        raise ValueError(
            f"expected 'value=name,...' or 'name0,name1,...', got {value!r} "
            "(a class system such as rci goes in taxonomy)"
        )
    return {i: name for i, name in enumerate(items)}


#: ``{value: name}``: YAML mapping or list, or ``"1=res,2=com"`` / ``"a,b,c"``.
ClassNames = Annotated[dict[int, str], BeforeValidator(parse_class_names)]


class EvaluateOptions(Options):
    """How a prediction is compared with the truth (``landforge evaluate``).

    Rasters are compared pixel by pixel on the same grid; tables (``pred_col`` and
    ``truth_col`` given) row by row, matched on ``key``, equal geometries or row order.
    The stage's ``mask`` and ``split_blocks`` restrict both to a region (``split``
    names the split of the blocks), see :mod:`landforge.evaluation.regions`.
    """

    taxonomy: str | None = Field(
        None, description="Class system (e.g. mslu, rci) naming the classes."
    )
    classes: ClassNames | None = Field(
        None,
        description="Class names: '1=res,2=com' or 'a,b,c' (values 0, 1, 2); "
        "in YAML a mapping {value: name}.",
    )
    ignore: list[str] = Field(
        default_factory=list,
        description="Value(s) to leave out in both maps (repeat or comma-separate; "
        "tables may give labels).",
    )
    pred_col: str | None = Field(None, description="Prediction column (tables).")
    truth_col: str | None = Field(None, description="Truth column (tables).")
    key: str | None = Field(None, description="Column joining the two tables.")
    block: int = Field(1024, ge=1, description="Block size of the windowed raster read.")
    band: int = Field(1, ge=1, description="1-based band of both rasters.")
    use_col: str = Field(
        "use",
        min_length=1,
        description="With buildings: the column of true building uses (class values or names).",
    )
    match_iou: float = Field(
        0.5,
        gt=0,
        le=1,
        description="With pred_buildings: IoU a predicted building needs to match a true one.",
    )
    split: str = Field(
        "test",
        min_length=1,
        description="With split_blocks: the split whose blocks are evaluated "
        "(e.g. test; train or val only as a labelled comparison).",
    )

    @field_validator("ignore", mode="before")
    @classmethod
    def _split_ignore(cls, value: Any) -> Any:
        if value is None:
            return []
        items = value if isinstance(value, list | tuple) else [value]
        out = []
        for item in items:
            if isinstance(item, bool):
                raise ValueError(f"expected values or labels, got {item!r}")
            if isinstance(item, int | float):
                out.append(str(int(item)) if float(item).is_integer() else str(item))
            else:
                out += [p.strip() for p in str(item).split(",") if p.strip()]
        return out

    @model_validator(mode="after")
    def _check(self) -> EvaluateOptions:
        if self.taxonomy and self.classes:
            raise OptionError("classes", "give either taxonomy or classes, not both")
        if bool(self.pred_col) != bool(self.truth_col):
            missing = "truth_col" if self.pred_col else "pred_col"
            raise OptionError(missing, "tables need both pred_col and truth_col")
        return self

    @property
    def tables(self) -> bool:
        """Whether attribute tables are compared (both columns given)."""
        return bool(self.pred_col and self.truth_col)

    def class_arg(self) -> str | dict[int, str] | None:
        """The class argument of :func:`~landforge.evaluation.evaluate.resolve_classes`."""
        return self.taxonomy or self.classes

    def ignore_values(self) -> list[int]:
        """``ignore`` as integer values (rasters); a non-integer is an OptionError."""
        out = []
        for v in self.ignore:
            try:
                out.append(int(v))
            except ValueError:
                raise OptionError("ignore", f"{v!r} is not an integer value") from None
        return out

    def ignore_labels(self) -> list[int | str]:
        """``ignore`` for tables: integers where they parse, else labels."""
        out: list[int | str] = []
        for v in self.ignore:
            try:
                out.append(int(v))
            except ValueError:
                out.append(v)
        return out


class EvaluateRoadsOptions(Options):
    """How a road raster is scored on centre lines (``landforge evaluate-roads``)."""

    road_values: IntList | None = Field(
        None, description="Road values in the prediction, e.g. 1 or 2,3 (default: > 0)."
    )
    truth_values: IntList | None = Field(
        None, description="Road values in the reference mask (default: > 0)."
    )
    tolerance_m: float = Field(2.0, ge=0, description="Buffer tolerance (m).")
