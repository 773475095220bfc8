"""Options models of the POI feature stages (one per stage; defaults live only here).

* :class:`PoiMapOptions`: distance-decay probability maps (``landforge poi-maps``,
  :func:`~landforge.features.poi_maps.write_poi_probability_maps`);
* :class:`PoiEmbedOptions`: category embeddings (``landforge poi-embed``,
  :class:`~landforge.features.poi_embed.POIEmbedder`);
* :class:`ParcelFeatureOptions`: POI features per parcel (``landforge parcels
  features``, :func:`~landforge.features.parcel_features.parcel_poi_features`);
* :class:`PoiCsvColumns`: the coordinate columns of a CSV POI file (stages only: reading
  is not part of the algorithms).

No heavy imports: the CLI builds its flags from these models at start-up.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator

from landforge.config import FloatMap, Options, StrList

__all__ = [
    "ParcelFeatureOptions",
    "PoiCategory",
    "PoiCsvColumns",
    "PoiEmbedOptions",
    "PoiMapOptions",
    "parse_dmax_text",
]


class PoiCategory(Options):
    """The POI category column (shared by every POI stage)."""

    category_col: str = Field("category", description="POI category column.")


class PoiCsvColumns(Options):
    """Coordinate columns of a CSV POI file (other formats carry their geometry)."""

    lon: str | None = Field(None, description="Longitude/x column of a CSV (default: detected).")
    lat: str | None = Field(None, description="Latitude/y column of a CSV (default: detected).")


def parse_dmax_text(text: str) -> dict[str, float]:
    """``"residential=300,commercial=300,industrial=800"`` -> ``{class: metres}``.

    Raises:
        ValueError: empty text, a pair without ``=``, a distance that is not a positive
            number, or a class given twice (pydantic reports it against ``dmax``).
    """
    out: dict[str, float] = {}
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    if not items:
        raise ValueError("give CLASS=METRES pairs, e.g. residential=300,industrial=800")
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"expected CLASS=METRES, got {item!r}")
        try:
            dist = float(value)
        except ValueError:
            raise ValueError(f"distance of {key!r} is not a number: {value.strip()!r}") from None
        if not math.isfinite(dist) or dist <= 0:
            raise ValueError(f"distance of {key!r} must be > 0, got {value.strip()!r}")
        if key in out:
            raise ValueError(f"class {key!r} given twice")
        out[key] = dist
    return out


class PoiMapOptions(PoiCategory):
    """Distance-decay POI probability maps ``p = 1 - min(d / dmax, 1)`` (``poi-maps``)."""

    dmax: FloatMap = Field(
        description="Decay distance per class in m, e.g. residential=300,commercial=300,"
        "industrial=800: classes of the taxonomy (code or name) or, without one, category "
        "values. One band per class, in this order."
    )
    taxonomy: str | None = Field(
        None,
        description="Mapping from POI categories to classes, e.g. gbt35648_rci (see "
        "`landforge taxonomy list`); none: the dmax keys are category values.",
    )
    workers: int = Field(
        -1,
        ge=-1,
        description="Threads over row windows (-1 or 0: one per available core; ours: "
        "measured 1.4x faster than one thread on 2 cores). Results do not depend on it.",
    )
    tile: int = Field(
        32,
        ge=1,
        description="Tile side (pixels) of the exact candidate search; speed and memory only.",
    )
    block_pixels: int = Field(
        1 << 19, ge=1, description="Pixels per window at most; working memory only."
    )

    @field_validator("dmax", mode="before")
    @classmethod
    def _dmax_text(cls, value: Any) -> Any:
        return parse_dmax_text(value) if isinstance(value, str) else value

    @field_validator("dmax")
    @classmethod
    def _dmax_positive(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("give CLASS=METRES pairs, e.g. residential=300,industrial=800")
        for key, dist in value.items():
            if not math.isfinite(dist) or dist <= 0:
                raise ValueError(f"distance of {key!r} must be > 0, got {dist!r}")
        return value


class PoiEmbedOptions(PoiCategory):
    """POI category embeddings: random walks on a POI network + skip-gram (``poi-embed``).

    The fields after ``category_col`` are the parameters stored with saved embeddings.
    """

    dim: int = Field(64, ge=1, description="Vector size.")
    graph: Literal["delaunay", "knn"] = Field(
        "delaunay",
        description="POI network: delaunay (triangulation) or knn (k nearest neighbours).",
    )
    k: int = Field(8, ge=1, description="Neighbours per POI (graph knn).")
    max_dist_m: float = Field(
        500.0, gt=0, description="Longest edge of the POI network (m); longer ones are dropped."
    )
    walks_per_node: int = Field(10, ge=1, description="Random walks started at every POI.")
    walk_length: int = Field(40, ge=1, description="POIs per walk.")
    window: int = Field(5, ge=1, description="Skip-gram context window.")
    epochs: int = Field(5, ge=1, description="Word2Vec epochs.")
    seed: int = Field(0, description="Seed of the jitter, the walks and Word2Vec (one thread).")
    d0_m: float = Field(
        10.0, gt=0, description="Distance offset (m) of the edge weight 1 / (d + d0_m)."
    )
    negative: int = Field(5, ge=1, description="Negative samples of Word2Vec.")


class ParcelFeatureOptions(PoiCategory):
    """POI counts, density and (TF-IDF) mean category embedding per parcel."""

    categories: StrList | None = Field(
        None,
        description="Categories that get an n_<category> column, in this order (default: "
        "the embedding vocabulary, or the categories seen); fix it to align two cities.",
    )
    id_col: str = Field(
        "parcel_id", description="Parcel id column copied to the output when present."
    )
