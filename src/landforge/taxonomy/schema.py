"""The taxonomy file schema (pydantic) and the checks that go beyond field types.

Two kinds of file share one YAML schema family, told apart by ``taxonomy:``:

``taxonomy: classes``
    a class system: ``levels`` and a flat list of ``classes``, each naming its
    ``parent`` (hierarchies of any depth).
``taxonomy: mapping``
    a mapping from a ``source`` vocabulary (a class system, or ``osm`` tags) to the
    classes of a ``target`` system: ``map`` (target code -> source categories) and
    ``ignore`` (source categories deliberately left out).

Field-level problems are reported by pydantic; the structural checks here (duplicate
codes and values, missing parents, cycles, depth) raise ``ValueError`` with one short
sentence, which the loader turns into an :class:`~landforge.errors.InputError` naming the
file. docs/taxonomies.md documents the schema for users.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

__all__ = ["ClassEntry", "ClassFile", "MappingFile", "OSM_SOURCE", "parse_color"]

OSM_SOURCE = "osm"
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
_TAG = re.compile(r"^[A-Za-z0-9_:.\-]+=[^=\s][^=]*$")


def parse_color(value: Any) -> tuple[int, int, int] | None:
    """``[r, g, b]`` or ``"#rrggbb"`` -> ``(r, g, b)``; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        m = _HEX.match(value.strip())
        if not m:
            raise ValueError(f"colour {value!r} is not '#rrggbb' or [r, g, b]")
        h = m.group(1)
        return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    if (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255 for x in value)
    ):
        return (int(value[0]), int(value[1]), int(value[2]))
    raise ValueError(f"colour {value!r} is not '#rrggbb' or [r, g, b] with 0..255")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassEntry(_Strict):
    """One class in a ``taxonomy: classes`` file."""

    code: StrictStr = Field(min_length=1)
    name: StrictStr = Field(min_length=1)
    parent: StrictStr | None = None
    value: StrictInt | None = Field(default=None, ge=0, le=65535)
    color: tuple[int, int, int] | None = None
    name_zh: StrictStr | None = None
    description: StrictStr | None = None
    aliases: list[StrictStr] = Field(default_factory=list)
    attrs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("color", mode="before")
    @classmethod
    def _color(cls, v: Any) -> tuple[int, int, int] | None:
        return parse_color(v)

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if v != v.strip() or "=" in v:
            raise ValueError(f"code {v!r} must not contain '=' or surrounding spaces")
        return v


class ClassFile(_Strict):
    """A ``taxonomy: classes`` file."""

    taxonomy: Literal["classes"]
    name: StrictStr | None = None
    description: StrictStr = ""
    reference: StrictStr = ""
    notes: StrictStr = ""
    levels: list[StrictStr] = Field(min_length=1)
    nodata_value: StrictInt = Field(default=0, ge=0, le=65535)
    nodata_name: StrictStr = "nodata"
    classes: list[ClassEntry] = Field(min_length=1)

    def check(self) -> dict[str, int]:
        """Structural checks; returns ``code -> level``.

        Raises:
            ValueError: duplicate level names, codes or values; a missing parent; a
                parent cycle; a class deeper than ``levels``; a value equal to nodata.
        """
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"duplicate level name in levels {self.levels}")
        seen: dict[str, ClassEntry] = {}
        values: dict[int, str] = {}
        for c in self.classes:
            if c.code in seen:
                raise ValueError(f"duplicate code {c.code!r}")
            seen[c.code] = c
            if c.value is not None:
                if c.value == self.nodata_value:
                    raise ValueError(
                        f"class {c.code!r} uses label value {c.value}, which is the "
                        f"nodata value ({self.nodata_name})"
                    )
                if c.value in values:
                    raise ValueError(
                        f"duplicate label value {c.value} (classes {values[c.value]!r} "
                        f"and {c.code!r})"
                    )
                values[c.value] = c.code
        for c in self.classes:
            if c.parent is not None and c.parent not in seen:
                raise ValueError(f"class {c.code!r} has parent {c.parent!r}, which does not exist")
        depth: dict[str, int] = {}
        for c in self.classes:
            chain = [c.code]
            p = c.parent
            while p is not None:
                if p in chain:
                    raise ValueError(f"parent cycle: {' -> '.join([*chain, p])}")
                chain.append(p)
                p = seen[p].parent
            level = len(chain) - 1
            if level >= len(self.levels):
                raise ValueError(
                    f"class {c.code!r} is at depth {level + 1} but only {len(self.levels)} "
                    f"level(s) are declared: {self.levels}"
                )
            depth[c.code] = level
        used = set(depth.values())
        for i, lvl in enumerate(self.levels):
            if i not in used:
                raise ValueError(f"level {lvl!r} has no classes")
        return depth


class MappingFile(_Strict):
    """A ``taxonomy: mapping`` file."""

    taxonomy: Literal["mapping"]
    name: StrictStr | None = None
    description: StrictStr = ""
    reference: StrictStr = ""
    notes: StrictStr = ""
    source: StrictStr = Field(min_length=1)
    target: StrictStr = Field(min_length=1)
    map: dict[StrictStr, list[StrictStr]] = Field(min_length=1)
    ignore: list[StrictStr] = Field(default_factory=list)
    key_priority: list[StrictStr] | None = None

    def pairs(self) -> dict[str, str]:
        """``source category -> target code``.

        Raises:
            ValueError: a category listed twice (under one target, two targets, or both
                mapped and ignored); OSM-only problems (bad tag, key missing from
                ``key_priority``).
        """
        out: dict[str, str] = {}
        for target, sources in self.map.items():
            for s in sources:
                if s in out:
                    where = "twice" if out[s] == target else f"to both {out[s]!r} and {target!r}"
                    raise ValueError(f"category {s!r} is mapped {where}")
                out[s] = target
        ignored: set[str] = set()
        for s in self.ignore:
            if s in out:
                raise ValueError(f"category {s!r} is both mapped to {out[s]!r} and ignored")
            if s in ignored:
                raise ValueError(f"category {s!r} is ignored twice")
            ignored.add(s)
        if self.source == OSM_SOURCE:
            self._check_osm([*out, *self.ignore])
        elif self.key_priority is not None:
            raise ValueError("key_priority is only for 'source: osm' mappings")
        return out

    def _check_osm(self, tags: list[str]) -> None:
        if not self.key_priority:
            raise ValueError("an OSM mapping needs key_priority (tag keys, most telling first)")
        if len(set(self.key_priority)) != len(self.key_priority):
            raise ValueError("duplicate key in key_priority")
        keys = set(self.key_priority)
        for tag in tags:
            if not _TAG.match(tag):
                raise ValueError(f"OSM category {tag!r} is not 'key=value' or 'key=*'")
            key = tag.split("=", 1)[0]
            if key not in keys:
                raise ValueError(f"OSM key {key!r} (in {tag!r}) is missing from key_priority")
