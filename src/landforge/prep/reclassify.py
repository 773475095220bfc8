"""Reclassify a land-cover map inside or outside an urban boundary (UBGG).

UBGG maps grass outside the urban boundary as farmland: the spectra are alike, the
land use is not. The rule table is a YAML file naming classes of a landforge taxonomy::

    taxonomy: ubgg            # optional; default the stage's taxonomy option
    rules:
      - {from: grass, to: farmland, where: outside}
      - {from: [tree, grass], to: grass, where: inside}

``from`` / ``to`` are class codes, aliases or names (:meth:`ClassSystem.resolve`);
``where`` is ``outside`` (default) or ``inside`` the union of the boundary polygons.
Rules apply in order, each to the original map value (ours: no chaining). Without a
rules file the UBGG rule (grass outside -> farmland) is used. A class name the taxonomy
does not know is an error naming the rules file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio import features

from landforge.config import load_yaml
from landforge.errors import InputError, OptionError
from landforge.io.raster import RasterGrid, StagedCOG, bounded_read_cache, open_raster
from landforge.prep.options import ReclassifyOptions
from landforge.prep.windows import strips

__all__ = ["DEFAULT_RULES", "Rule", "load_rules", "reclassify"]

#: UBGG's rule: grass outside the urban boundary is farmland.
DEFAULT_RULES: dict[str, Any] = {
    "taxonomy": "ubgg",
    "rules": [{"from": "grass", "to": "farmland", "where": "outside"}],
}


@dataclass(frozen=True)
class Rule:
    """Map values ``sources`` to ``target`` where the pixel is ``where`` the boundary."""

    sources: tuple[int, ...]
    target: int
    where: str
    text: str


def load_rules(
    rules: str | os.PathLike[str] | None, taxonomy: str = "ubgg"
) -> tuple[list[Rule], str]:
    """The rules of a YAML file (or UBGG's default) as label values, and the taxonomy name.

    Raises:
        InputError: a file that is not valid YAML, a rule without ``from``/``to``, a
            ``where`` other than inside/outside, or a class the taxonomy does not know;
            the message names the rules file.
    """
    from landforge.taxonomy import load_classes  # the taxonomy loader reads YAML files

    source = str(rules) if rules is not None else "default rules"
    data = load_yaml(rules, "rules file") if rules is not None else DEFAULT_RULES
    if rules is None:
        taxonomy = "ubgg"
    named = data.get("taxonomy")
    try:
        classes = load_classes(str(named if named is not None else taxonomy))
    except OptionError:
        raise
    except InputError as exc:
        if exc.source not in (None, "taxonomy"):  # a taxonomy file: named by its path
            raise
        if named is None:  # the --taxonomy option
            raise OptionError("taxonomy", exc.problem) from None
        raise InputError(source, f"taxonomy: {exc.problem}") from None
    items = data.get("rules")
    if not isinstance(items, list) or not items:
        raise InputError(source, "expected 'rules:' with a list of {from, to, where} rules")

    def value(name: Any, i: int) -> int:
        try:
            c = classes.resolve(str(name))
        except KeyError:
            known = ", ".join(c.code for c in classes.valued())
            raise InputError(
                source,
                f"rule {i}: unknown class {name!r} in taxonomy {classes.name} (known: {known})",
            ) from None
        if c.value is None:
            raise InputError(
                source, f"rule {i}: class {name!r} has no label value in {classes.name}"
            )
        return int(c.value)

    out = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict) or "from" not in item or "to" not in item:
            raise InputError(source, f"rule {i}: give 'from' and 'to' class names")
        where = str(item.get("where", "outside")).lower()
        if where not in ("inside", "outside"):
            raise InputError(
                source, f"rule {i}: where must be 'inside' or 'outside', not {where!r}"
            )
        names = item["from"] if isinstance(item["from"], list) else [item["from"]]
        sources = tuple(value(n, i) for n in names)
        text = f"{'/'.join(str(n) for n in names)} {where} -> {item['to']}"
        out.append(Rule(sources, value(item["to"], i), where, text))
    return out, classes.name


def _boundary_shapes(boundary: str | os.PathLike[str], grid: RasterGrid) -> list[Any]:
    """The boundary polygons in the map's CRS."""
    from landforge.io.vector import read_vector  # function-local: geopandas is heavy

    gdf = read_vector(boundary)
    if gdf.crs is None:
        raise InputError(boundary, "boundary has no CRS")
    gdf = gdf.to_crs(grid.crs)
    geoms = [g for g in gdf.geometry if g is not None and not g.is_empty]
    if not any(g.geom_type in ("Polygon", "MultiPolygon") for g in geoms):
        raise InputError(boundary, "boundary holds no polygon")
    return [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon")]


def reclassify(
    map_path: str | os.PathLike[str],
    boundary: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    opts: ReclassifyOptions | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Apply the rules to ``map_path`` inside/outside ``boundary``; write ``out_path``.

    Args:
        map_path: single-band class map (label values of the taxonomy).
        boundary: polygons of the urban boundary (any vector format, any CRS).
        out_path: output COG, the map's grid and data type, the taxonomy's colours.
        opts: :class:`ReclassifyOptions`.
        **overrides: fields of :class:`ReclassifyOptions`.

    Returns:
        Summary: the rules and the number of pixels each changed.

    Raises:
        InputError: unreadable files, a boundary without polygons or CRS, a bad rules file.
    """
    from landforge.taxonomy import load_classes

    o = ReclassifyOptions.build(opts, **overrides)
    rules, tax_name = load_rules(o.rules, o.taxonomy)
    changed = [0] * len(rules)
    with bounded_read_cache(), open_raster(map_path) as src:
        if src.crs is None:
            raise InputError(map_path, "map has no CRS")
        grid = RasterGrid(src.crs, src.transform, src.width, src.height)
        shapes = _boundary_shapes(boundary, grid)
        dtype = np.dtype(src.dtypes[0])
        colormap = load_classes(tax_name).colormap() if dtype == np.uint8 else None
        staged = StagedCOG(
            out_path,
            grid,
            1,
            dtype,
            src.nodata,
            colormap=colormap,
            tags={"reclassify": "; ".join(r.text for r in rules), "taxonomy": tax_name},
        )
        try:
            for row in strips(grid, o.block):
                strip = np.empty((1, int(row[0].height), grid.width), dtype)
                for window in row:
                    old = src.read(1, window=window)
                    sub = grid.window_grid(window)
                    inside = features.rasterize(
                        ((g, 1) for g in shapes),
                        out_shape=sub.shape,
                        transform=sub.transform,
                        fill=0,
                        all_touched=o.all_touched,
                        dtype="uint8",
                    ).astype(bool)
                    new = old.copy()
                    for k, rule in enumerate(rules):
                        where = inside if rule.where == "inside" else ~inside
                        hit = np.isin(old, rule.sources) & where
                        new[hit] = rule.target
                        changed[k] += int(hit.sum())
                    col = slice(int(window.col_off), int(window.col_off + window.width))
                    strip[0, :, col] = new
                staged.write(strip, int(row[0].row_off))
            staged.finish()
        except BaseException:
            staged.abort()
            raise
    return {
        "taxonomy": tax_name,
        "rules": [{"rule": r.text, "pixels": n} for r, n in zip(rules, changed, strict=True)],
        "out": str(Path(out_path)),
    }
