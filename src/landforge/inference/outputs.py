"""The rasters ``landforge predict`` writes: which heads make them, colours, tags, types.

Contract in docs/dev/CONTRACTS.md:

- class map, uint8: 0 background, ``k`` = class ``k`` of the class head (1-based,
  ``rci`` values for building use) where the footprint probability is at least
  ``threshold``; single-head models write ``argmax + 1``. 255 is nodata. Colour table
  from the class system, class names in the ``LANDFORGE_CLASSES`` tag.
- class probabilities (optional): one band per class, float32 (nodata NaN) or uint8
  scaled by 254 (nodata 255, GDAL scale 1/254), band descriptions = class names.
- footprint probability (optional): float32, nodata NaN.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from landforge.errors import InputError
from landforge.inference.constants import CLASSES_TAG, NODATA_CLASS, PROB_SCALE
from landforge.inference.options import PredictOptions
from landforge.io.raster import RasterGrid, StagedCOG
from landforge.models.checkpoint import ModelCard
from landforge.taxonomy import load_classes

__all__ = ["HeadPlan", "class_colormap", "open_outputs", "resolve_heads"]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class HeadPlan:
    """Which model heads make the class map.

    Attributes:
        footprint: name of the binary footprint head, or None.
        classes: name of the class head (softmax), or None for footprint-only models.
        class_names: names of class values 1..K in the class map.
    """

    footprint: str | None
    classes: str | None
    class_names: list[str]


def resolve_heads(card: ModelCard) -> HeadPlan:
    """Decide from the card which head is the footprint and which the classes.

    A head with one class name is binary (sigmoid); ``footprint`` is the footprint head
    by name, or the only binary head of a two-head model. The class head is ``use`` if
    present, otherwise the first multi-class head.
    """
    binary = [h for h, names in card.heads.items() if len(names) == 1]
    multi = [h for h, names in card.heads.items() if len(names) > 1]
    footprint = "footprint" if "footprint" in card.heads else (binary[0] if binary else None)
    classes = "use" if "use" in multi else (multi[0] if multi else None)
    if classes is None and footprint is None:
        raise InputError("model", f"model card has no usable output head: {card.heads}")
    names = list(card.heads[classes] if classes else card.heads[footprint])  # type: ignore[index]
    if len(names) > 254:
        raise InputError("model", f"{len(names)} classes do not fit a uint8 class map")
    return HeadPlan(footprint, classes, names)


def class_colormap(
    class_names: Sequence[str], taxonomy: str | None = "rci"
) -> dict[int, tuple[int, int, int, int]]:
    """Colour table for values 1..K named ``class_names`` (0 background, 255 nodata).

    Colours come from the class system (``landforge.taxonomy``) when its label value of a
    class equals the class's position; otherwise from a fixed qualitative palette.
    """
    cmap: dict[int, tuple[int, int, int, int]] = {0: (0, 0, 0, 255), 255: (0, 0, 0, 0)}
    system = _taxonomy_colours(taxonomy or "rci")
    for k, name in enumerate(class_names, start=1):
        colour = system.get((k, name.lower()))
        cmap[k] = colour if colour else _PALETTE[(k - 1) % len(_PALETTE)]
    return cmap


_PALETTE = [
    (230, 85, 13, 255),  # orange-red: residential in the rci maps
    (49, 130, 189, 255),  # blue: commercial
    (117, 107, 177, 255),  # purple: industrial
    (49, 163, 84, 255),
    (253, 208, 35, 255),
    (158, 202, 225, 255),
    (140, 86, 75, 255),
    (227, 119, 194, 255),
    (127, 127, 127, 255),
    (188, 189, 34, 255),
]


def _taxonomy_colours(name: str) -> dict[tuple[int, str], tuple[int, int, int, int]]:
    """{(value, lower-case class name): rgba} from landforge.taxonomy, or {} without it."""
    try:  # an unknown class system: fall back to the palette
        system = load_classes(name)
        values = dict(system.label_values())
        colours = system.colormap()
        return {(v, n.lower()): _rgba(colours[v]) for v, n in values.items() if v in colours}
    except Exception:  # noqa: BLE001 - any failure means "no colours from the taxonomy"
        return {}


def _rgba(colour: Any) -> tuple[int, int, int, int]:
    if isinstance(colour, str):
        h = colour.lstrip("#")
        vals = [int(h[i : i + 2], 16) for i in range(0, len(h), 2)]
    else:
        vals = [int(v) for v in colour]
    if len(vals) == 3:
        vals.append(255)
    return (vals[0], vals[1], vals[2], vals[3])


def open_outputs(
    stack: contextlib.ExitStack,
    grid: RasterGrid,
    out: PathLike,
    probs_out: PathLike | None,
    footprint_out: PathLike | None,
    plan: HeadPlan,
    card: ModelCard,
    o: PredictOptions,
) -> dict[str, StagedCOG]:
    """The staged COGs of a prediction: class map, probabilities, footprint.

    Opened in ``stack``, which aborts those not finished when it closes.
    """
    classes = {str(k): n for k, n in enumerate(plan.class_names, start=1)}
    tags = {
        CLASSES_TAG: json.dumps(classes),
        "LANDFORGE_MODEL": card.model,
        "LANDFORGE_TTA": str(o.tta),
    }
    if card.taxonomy:
        tags["LANDFORGE_TAXONOMY"] = card.taxonomy
    outputs: dict[str, StagedCOG] = {}

    def opened(name: str, staged: StagedCOG) -> None:
        outputs[name] = staged
        stack.callback(staged.abort)  # no-op after finish(); cleans up on error

    opened(
        "classes",
        StagedCOG(
            out,
            grid,
            1,
            np.uint8,
            NODATA_CLASS,
            descriptions=["class"],
            colormap=class_colormap(plan.class_names, card.taxonomy),
            tags=tags,
        ),
    )
    if probs_out is not None:
        uint8 = o.probs_dtype == "uint8"
        opened(
            "probs",
            StagedCOG(
                probs_out,
                grid,
                len(plan.class_names),
                o.probs_dtype,
                NODATA_CLASS if uint8 else float("nan"),
                descriptions=plan.class_names,
                tags=tags,
                scale=1.0 / PROB_SCALE if uint8 else None,
            ),
        )
    if footprint_out is not None:
        opened(
            "footprint",
            StagedCOG(
                footprint_out,
                grid,
                1,
                np.float32,
                float("nan"),
                descriptions=["footprint_probability"],
                tags=tags,
            ),
        )
    return outputs
