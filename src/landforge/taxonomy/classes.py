"""Class systems: a hierarchy of land-use classes with optional label values and colours.

A :class:`ClassSystem` is built from a validated YAML file (see
:mod:`landforge.taxonomy.schema`) and is immutable afterwards, so the loader can cache it
and hand the same object to every caller.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["ClassDef", "ClassSystem", "RGB"]

RGB = tuple[int, int, int]

# Fallback colours for classes with a label value but no colour in the file
# (a qualitative palette; dark enough to read on white, never pure black = nodata).
_PALETTE: tuple[RGB, ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
    (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ClassDef:
    """One class of a class system.

    Attributes:
        code: unique identifier within its system (``"R2"``, ``"catering"``).
        name: English name.
        level: depth in the hierarchy, 0 for primary classes.
        parent: code of the parent class, ``None`` at level 0.
        value: integer label value in rasters, or ``None`` when the class has none.
        color: RGB colour for colour tables, or ``None``.
        name_zh: Chinese name, where the source vocabulary has one.
        description: free text (what the class contains, where it comes from).
        aliases: other strings that identify this class (e.g. a provider's type code).
        attrs: any further attributes from the file (read-only).
    """

    code: str
    name: str
    level: int
    parent: str | None = None
    value: int | None = None
    color: RGB | None = None
    name_zh: str | None = None
    description: str | None = None
    aliases: tuple[str, ...] = ()
    attrs: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), hash=False, compare=False
    )


class ClassSystem:
    """A hierarchy of classes (any depth) loaded from a taxonomy file.

    Args:
        name: the system's name (``"mslu"``).
        levels: one name per hierarchy level, top first (``["primary", "secondary"]``).
        classes: classes in file order; parents must be listed (anywhere) in the same list.
        description: one line saying what the system is.
        reference: where the classes come from (a standard, a paper).
        nodata_value: raster value meaning "no class" (background / nodata).
        nodata_name: what ``nodata_value`` is called (``"background"``).
        path: the file the system was loaded from.

    Construction does not validate; use :func:`landforge.taxonomy.load_classes`, which
    does. Instances are shared through a cache: treat them as read-only.
    """

    kind = "classes"

    def __init__(
        self,
        name: str,
        levels: list[str],
        classes: list[ClassDef],
        *,
        description: str = "",
        reference: str = "",
        nodata_value: int = 0,
        nodata_name: str = "nodata",
        path: Path | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.reference = reference
        self.nodata_value = nodata_value
        self.nodata_name = nodata_name
        self.path = path
        self._levels = tuple(levels)
        self._classes = tuple(classes)
        self._by_code = {c.code: c for c in self._classes}
        self._by_value = {c.value: c for c in self._classes if c.value is not None}
        self._order = {c.code: i for i, c in enumerate(self._classes)}
        self._children: dict[str | None, list[ClassDef]] = {}
        for c in self._classes:
            self._children.setdefault(c.parent, []).append(c)
        self._lookup: dict[str, ClassDef] = {}
        for c in self._classes:  # code > alias > name > Chinese name, first wins
            for key in (*c.aliases, c.name, c.name_zh):
                if key:
                    self._lookup.setdefault(key.casefold(), c)
        for c in self._classes:
            self._lookup[c.code.casefold()] = c

    # -- container protocol -------------------------------------------------------------
    def __repr__(self) -> str:
        return f"ClassSystem({self.name!r}, levels={list(self._levels)}, {len(self)} classes)"

    def __len__(self) -> int:
        return len(self._classes)

    def __iter__(self) -> Iterator[ClassDef]:
        return iter(self._classes)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    # -- structure ----------------------------------------------------------------------
    @property
    def levels(self) -> list[str]:
        """Level names, top first."""
        return list(self._levels)

    @property
    def classes(self) -> list[ClassDef]:
        """All classes in file order."""
        return list(self._classes)

    def codes(self, level: int | str | None = None) -> list[str]:
        """Codes of all classes, or of one level, in file order."""
        classes = self._classes if level is None else self.at_level(level)
        return [c.code for c in classes]

    def level_index(self, level: int | str) -> int:
        """Index of ``level`` given as an index or a level name.

        Raises:
            KeyError: if there is no such level.
        """
        if isinstance(level, str):
            if level not in self._levels:
                raise KeyError(f"{self.name}: no level {level!r}; levels: {list(self._levels)}")
            return self._levels.index(level)
        if not 0 <= level < len(self._levels):
            raise KeyError(f"{self.name}: no level {level}; levels 0..{len(self._levels) - 1}")
        return level

    def primary(self) -> list[ClassDef]:
        """Top-level classes, in file order."""
        return self.at_level(0)

    def at_level(self, level: int | str) -> list[ClassDef]:
        """Classes at ``level`` (index or name), in file order."""
        idx = self.level_index(level)
        return [c for c in self._classes if c.level == idx]

    def leaves(self) -> list[ClassDef]:
        """Classes without children, in file order."""
        return [c for c in self._classes if c.code not in self._children]

    def children(self, code: str) -> list[ClassDef]:
        """Direct children of ``code``, in file order (empty for a leaf).

        Raises:
            KeyError: if ``code`` is not a class of this system.
        """
        self.by_code(code)
        return list(self._children.get(code, ()))

    def descendants(self, code: str) -> list[ClassDef]:
        """All classes below ``code`` at any depth, in file order."""
        out: list[ClassDef] = []
        stack = [code]
        while stack:
            kids = self.children(stack.pop())
            out.extend(kids)
            stack.extend(k.code for k in kids)
        return sorted(out, key=lambda c: self._order[c.code])

    def by_code(self, code: str) -> ClassDef:
        """The class with ``code``.

        Raises:
            KeyError: if there is none.
        """
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"{self.name}: no class with code {code!r}") from None

    def by_value(self, value: int) -> ClassDef:
        """The class with label ``value``.

        Raises:
            KeyError: if no class has that value (the nodata value included).
        """
        try:
            return self._by_value[int(value)]
        except KeyError:
            raise KeyError(f"{self.name}: no class with label value {value!r}") from None

    def resolve(self, key: str) -> ClassDef:
        """The class identified by its code, an alias, its name or its Chinese name.

        Matching ignores case; a code always wins over another class's name.

        Raises:
            KeyError: if nothing matches.
        """
        try:
            return self._lookup[str(key).casefold()]
        except KeyError:
            raise KeyError(f"{self.name}: no class {key!r}") from None

    def ancestor(self, code: str, level: int | str = 0) -> ClassDef:
        """The ancestor of ``code`` at ``level`` (the class itself at its own level).

        Raises:
            KeyError: if ``code`` is unknown or lies above ``level``.
        """
        idx = self.level_index(level)
        c = self.by_code(code)
        if c.level < idx:
            raise KeyError(f"{self.name}: class {code!r} is at level {c.level}, above level {idx}")
        while c.level > idx:
            assert c.parent is not None  # guaranteed by validation
            c = self._by_code[c.parent]
        return c

    def lineage(self, code: str) -> list[ClassDef]:
        """``code`` and its ancestors, from the top level down."""
        c = self.by_code(code)
        return [self.ancestor(code, lvl) for lvl in range(c.level + 1)]

    # -- rasters ------------------------------------------------------------------------
    def label_values(self) -> dict[int, str]:
        """``value -> name`` for classes that have a label value, sorted by value."""
        return {v: self._by_value[v].name for v in sorted(self._by_value)}

    def label_codes(self) -> dict[int, str]:
        """``value -> code`` for classes that have a label value, sorted by value."""
        return {v: self._by_value[v].code for v in sorted(self._by_value)}

    def valued(self) -> list[ClassDef]:
        """Classes that have a label value, sorted by value."""
        return [self._by_value[v] for v in sorted(self._by_value)]

    def colormap(self) -> dict[int, RGB]:
        """``value -> (r, g, b)`` for a GeoTIFF colour table; nodata is black.

        A valued class without a colour in the file takes its parent's colour, else a
        fixed palette colour, so the table is complete and stable between runs.
        """
        cmap: dict[int, RGB] = {self.nodata_value: (0, 0, 0)}
        for i, v in enumerate(sorted(self._by_value)):
            cmap[v] = self.color_of(self._by_value[v].code) or _PALETTE[i % len(_PALETTE)]
        return cmap

    def color_of(self, code: str) -> RGB | None:
        """The colour of ``code``, inherited from the nearest ancestor that has one."""
        c: ClassDef | None = self.by_code(code)
        while c is not None:
            if c.color is not None:
                return c.color
            c = self._by_code.get(c.parent) if c.parent else None
        return None
