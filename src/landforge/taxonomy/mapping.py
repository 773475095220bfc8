"""Category mappings: source categories (POI types, OSM tags, classes) -> target classes.

A mapping answers three ways for a source category: a target code (mapped), ``None``
(deliberately ignored: the category says nothing about land use), or :class:`KeyError`
(unknown: the mapping has never heard of it, which usually means a typo or a different
vocabulary). Keeping "ignored" and "unknown" apart is what lets
:meth:`CategoryMapping.map_many` report categories a user's data has but the mapping
does not cover.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from landforge.taxonomy.classes import ClassDef, ClassSystem
from landforge.taxonomy.schema import OSM_SOURCE

__all__ = ["CategoryMapping"]

_IGNORED = object()  # sentinel in the lookup table: known category, no target


class CategoryMapping:
    """Source categories -> codes of a target :class:`ClassSystem`.

    Args:
        name: the mapping's name (``"gbt35648_rci"``).
        source: name of the source vocabulary (a class system name, or ``"osm"``).
        target: name of the target class system.
        pairs: ``source category -> target code``.
        ignored: source categories deliberately mapped to nothing.
        target_system: the loaded target system.
        source_system: the loaded source system (``None`` for OSM tags).
        key_priority: OSM tag keys, most telling first (OSM mappings only).
        description, reference: as in the file.
        path: the file the mapping was loaded from.

    Build through :func:`landforge.taxonomy.load_mapping`, which validates.
    """

    kind = "mapping"

    def __init__(
        self,
        name: str,
        source: str,
        target: str,
        pairs: Mapping[str, str],
        ignored: Iterable[str],
        *,
        target_system: ClassSystem,
        source_system: ClassSystem | None = None,
        key_priority: Iterable[str] | None = None,
        description: str = "",
        reference: str = "",
        path: Path | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.target = target
        self.description = description
        self.reference = reference
        self.path = path
        self._target_system = target_system
        self._source_system = source_system
        self._pairs = dict(pairs)
        self._ignored = tuple(ignored)
        self._table: dict[str, Any] = {s: _IGNORED for s in self._ignored}
        self._table.update(self._pairs)
        self.key_priority: list[str] = list(key_priority or ())
        self._rank = {k: i for i, k in enumerate(self.key_priority)}

    def __repr__(self) -> str:
        return (
            f"CategoryMapping({self.name!r}, {self.source!r} -> {self.target!r}, "
            f"{len(self._pairs)} mapped, {len(self._ignored)} ignored)"
        )

    @property
    def is_osm(self) -> bool:
        """True for mappings whose source is OSM ``key=value`` tags."""
        return self.source == OSM_SOURCE

    @property
    def pairs(self) -> dict[str, str]:
        """``source category -> target code`` as written in the file."""
        return dict(self._pairs)

    @property
    def ignored(self) -> list[str]:
        """Source categories deliberately mapped to nothing."""
        return list(self._ignored)

    def target_system(self) -> ClassSystem:
        """The class system the mapping's codes belong to."""
        return self._target_system

    def source_system(self) -> ClassSystem | None:
        """The source class system, or ``None`` when the source is OSM tags."""
        return self._source_system

    def classes(self, level: int | str | None = None) -> list[ClassDef]:
        """Target classes the mapping actually produces, in target order.

        Args:
            level: roll the codes up to this target level first (see :meth:`map`).
        """
        ts = self._target_system
        codes = {self._at_level(c, level) for c in self._pairs.values()}
        return [c for c in ts.classes if c.code in codes]

    # -- one category -------------------------------------------------------------------
    def map(self, category: str, *, level: int | str | None = None) -> str | None:
        """Target code for one source category.

        For a hierarchical source, a category not listed itself takes the mapping of its
        nearest listed ancestor (``R2`` follows ``R``); a category is also found by its
        name, Chinese name or alias in the source system (``"餐饮服务"`` for Gaode's
        ``food_beverages``). For OSM, ``category`` is one ``key=value`` tag and
        ``key=*`` answers for values not listed.

        Args:
            category: a source category.
            level: if given, return the target class's ancestor at this level.

        Returns:
            the target code, or ``None`` if the category is explicitly ignored.

        Raises:
            KeyError: if the mapping does not know ``category``.
        """
        hit = self._lookup(category)
        if hit is None:
            raise KeyError(f"{self.name}: unknown {self.source} category {category!r}")
        return None if hit is _IGNORED else self._at_level(hit, level)

    def _lookup(self, category: str) -> Any:
        """Table entry (code or ``_IGNORED``) for a category, or ``None`` if unknown."""
        category = str(category)
        if category in self._table:
            return self._table[category]
        if self.is_osm:
            key, sep, value = category.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                return None
            hits = [self._table.get(f"{key}={part}") for part in _values(value)]
            for hit in hits:  # as in map_tags: a mapped part beats an ignored one
                if hit is not None and hit is not _IGNORED:
                    return hit
            if any(hit is _IGNORED for hit in hits):
                return _IGNORED
            return self._table.get(f"{key}=*")
        src = self._source_system
        if src is None:
            return None
        try:
            c: ClassDef | None = src.resolve(category)
        except KeyError:
            return None
        while c is not None:
            if c.code in self._table:
                return self._table[c.code]
            c = src.by_code(c.parent) if c.parent else None
        return None

    def _at_level(self, code: str, level: int | str | None) -> str:
        return code if level is None else self._target_system.ancestor(code, level).code

    # -- OSM features -------------------------------------------------------------------
    def map_tags(self, tags: Mapping[str, Any], *, level: int | str | None = None) -> str | None:
        """Target code for an OSM feature from all its tags.

        Keys are tried in ``key_priority`` order (keys not listed are not used), in two
        passes: first exact ``key=value`` entries, then ``key=*`` wildcards, so a specific
        tag on a lower-priority key (``landuse=industrial``) beats a wildcard on a
        higher-priority key (``shop=*``). Ignored tags (``building=yes``) carry no
        information: the search goes on to the next key. A ``;``-separated value tries
        each part in turn.

        Returns:
            the target code, or ``None`` if no tag maps to a class.

        Raises:
            ValueError: if this is not an OSM mapping.
        """
        if not self.is_osm:
            raise ValueError(
                f"{self.name}: map_tags needs an OSM mapping (source is {self.source!r})"
            )
        keys = [k for k in self.key_priority if _present(tags.get(k))]
        for k in keys:  # pass 1: exact key=value
            for part in _values(str(tags[k])):
                hit = self._table.get(f"{k}={part}")
                if hit is not None and hit is not _IGNORED:
                    return self._at_level(hit, level)
        for k in keys:  # pass 2: key=* wildcards
            if any(self._table.get(f"{k}={p}") is _IGNORED for p in _values(str(tags[k]))):
                continue  # an explicitly ignored value is not rescued by the wildcard
            hit = self._table.get(f"{k}=*")
            if hit is not None and hit is not _IGNORED:
                return self._at_level(hit, level)
        return None

    # -- many categories ----------------------------------------------------------------
    def map_many(
        self, values: Iterable[Any], *, level: int | str | None = None
    ) -> tuple[pd.Series, dict[str, int]]:
        """Map a column of categories (or of OSM tag dicts) at once.

        Each distinct value is looked up once, so a million POIs cost as much as their
        few hundred distinct categories.

        Args:
            values: categories (a Series keeps its index); for OSM mappings each item may
                be a ``key=value`` string or a dict of tags (see :meth:`map_tags`).
            level: as in :meth:`map`.

        Returns:
            ``(codes, unknown)``: target codes (``None`` for ignored, unknown and missing
            values) aligned with ``values``, and ``category -> count`` for the categories
            the mapping does not know (missing values are not counted).
        """
        s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        try:  # fast path: look each distinct value up once
            idx, uniques = pd.factorize(s, use_na_sentinel=True)
        except TypeError:  # unhashable items (OSM tag dicts): one by one
            return self._map_each(s, level)
        unknown: dict[str, int] = {}
        counts = np.bincount(idx[idx >= 0], minlength=len(uniques))
        table: list[str | None] = []
        for i, v in enumerate(uniques.tolist()):
            if isinstance(v, Mapping):
                table.append(self.map_tags(v, level=level))
                continue
            if not _present(v):
                table.append(None)
                continue
            try:
                table.append(self.map(v, level=level))
            except KeyError:
                table.append(None)
                unknown[str(v)] = unknown.get(str(v), 0) + int(counts[i])
        lut = np.array([*table, None], dtype=object)  # idx -1 (missing) -> last = None
        codes = lut[idx]
        return pd.Series(codes, index=s.index, dtype=object, name=s.name), unknown

    def _map_each(self, s: pd.Series, level: int | str | None) -> tuple[pd.Series, dict[str, int]]:
        codes: list[str | None] = [None] * len(s)
        unknown: dict[str, int] = {}
        for i, v in enumerate(s.tolist()):
            if isinstance(v, Mapping):
                codes[i] = self.map_tags(v, level=level)
            elif _present(v):
                try:
                    codes[i] = self.map(v, level=level)
                except KeyError:
                    unknown[str(v)] = unknown.get(str(v), 0) + 1
        return pd.Series(codes, index=s.index, dtype=object, name=s.name), unknown


def _present(v: Any) -> bool:
    """False for None, NaN and empty strings (missing tag / category)."""
    if isinstance(v, str):
        return bool(v.strip())
    if v is None or isinstance(v, Mapping):
        return v is not None
    try:
        return not bool(pd.isna(v))
    except (TypeError, ValueError):  # list-likes: present
        return True


def _values(value: str) -> list[str]:
    """An OSM value and, if ``;``-separated, each of its parts (whole value first)."""
    value = value.strip()
    parts = [p.strip() for p in value.split(";") if p.strip()]
    return [value, *[p for p in parts if p != value]]
