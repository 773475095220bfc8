"""Options model of the spatially blocked split (``block_split``, ``landforge split``).

No heavy imports: the CLI builds its flags from this model at start-up.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from landforge.config import Options

__all__ = ["DEFAULT_RATIOS", "Ratios", "SplitOptions", "parse_ratios"]

#: train / val / test shares when none are given.
DEFAULT_RATIOS: dict[str, float] = {"train": 0.6, "val": 0.2, "test": 0.2}

_DEFAULT_NAMES = tuple(DEFAULT_RATIOS)


def parse_ratios(value: Any) -> Any:
    """Split ratios from text or a mapping, checked (not normalised).

    ``"0.6,0.2,0.2"`` names them train, val, test in order; ``"train=0.7,val=0.3"``
    names them; a mapping passes through. Every ratio must be a number >= 0 and one at
    least > 0; :func:`~landforge.datasets.splits.normalise_ratios` scales them to sum 1.

    Raises:
        ValueError: text that is neither form, or a bad ratio (pydantic reports it
            against the field).
    """
    if isinstance(value, str):
        items = [t.strip() for t in value.split(",") if t.strip()]
        if not items:
            raise ValueError("give ratios, e.g. 0.6,0.2,0.2 or train=0.8,val=0.2")
        named = ["=" in t for t in items]
        if any(named) and not all(named):
            raise ValueError(f"{value!r}: name all ratios or none")
        if all(named):
            pairs = [t.split("=", 1) for t in items]
            value = {k.strip(): v.strip() for k, v in pairs}
        elif len(items) > len(_DEFAULT_NAMES):
            raise ValueError(f"{value!r}: name more than three subsets, e.g. a=0.5,b=0.5")
        else:
            value = dict(zip(_DEFAULT_NAMES, items, strict=False))
    if not isinstance(value, dict):
        return value  # pydantic reports the type
    out: dict[str, float] = {}
    for name, raw in value.items():
        try:
            ratio = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"ratio of {name!r} must be a number, got {raw!r}") from None
        if not (math.isfinite(ratio) and ratio >= 0):
            raise ValueError(f"ratio of {name!r} must be a non-negative number, got {raw!r}")
        out[str(name)] = ratio
    if not out or sum(out.values()) <= 0:
        raise ValueError("give at least one positive ratio, e.g. train=0.8,val=0.2")
    return out


#: subset name -> share: YAML mapping, ``"0.6,0.2,0.2"`` or ``"train=0.7,val=0.3"``.
Ratios = Annotated[dict[str, float], BeforeValidator(parse_ratios)]


class SplitOptions(Options):
    """Spatially blocked train / val / test split of features (``block_split``)."""

    ratios: Ratios = Field(
        default_factory=lambda: dict(DEFAULT_RATIOS),
        description="train,val,test ratios (e.g. 0.6,0.2,0.2) or name=ratio pairs.",
    )
    block_size_m: float = Field(1000.0, gt=0, description="Side of the square blocks in metres.")
    strata_col: str | None = Field(None, description="Class column to stratify by.")
    group_col: str | None = Field(
        None, description="Keep each group (e.g. parcel_id) in one subset."
    )
    seed: int = Field(0, description="Random seed.")
