"""Write a grading: graded parcels (GeoParquet), tables (JSON + one CSV each), errors layer.

The tables JSON (``"kind": "landforge-tables/1"``) is what ``landforge report`` shows as
tables; the correct/incorrect layer is a GeoPackage with a PNG map beside it (same name,
``.png``) that the report embeds. Every file is written atomically: nothing half-written
is left when a step fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from landforge.config import jsonable
from landforge.io.atomic import atomic_path

__all__ = ["csv_paths", "errors_map_figure", "write_errors", "write_tables"]


def csv_paths(tables_json: str | Path, tables: dict[str, Any]) -> dict[str, Path]:
    """CSV path of each table: ``<json stem>_<table name>.csv`` beside the JSON."""
    p = Path(tables_json)
    return {t["name"]: p.with_name(f"{p.stem}_{t['name']}.csv") for t in tables["tables"]}


def write_tables(path: str | Path, tables: dict[str, Any]) -> list[Path]:
    """The tables as one JSON file and one CSV per table; returns the paths written."""
    written = []
    for t in tables["tables"]:
        t["csv"] = csv_paths(path, tables)[t["name"]].name
    for name, csv in csv_paths(path, tables).items():
        rows = next(t["rows"] for t in tables["tables"] if t["name"] == name)
        with atomic_path(csv) as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)
        written.append(csv)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(jsonable(tables), indent=1), encoding="utf-8")
    written.append(Path(path))
    return written


def errors_map_figure(layer: gpd.GeoDataFrame, title: str = "") -> Any:
    """Map of parcels coloured by ``correct`` (green) / incorrect (red)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(6.5, 6.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ok = layer["correct"].astype(bool).to_numpy()
    if (~ok).any():
        layer[~ok].plot(ax=ax, color="#d7301f", edgecolor="white", linewidth=0.2)
    if ok.any():
        layer[ok].plot(ax=ax, color="#41ab5d", edgecolor="white", linewidth=0.2)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(
        title or f"held-out predictions: {int(ok.sum())} correct, {int((~ok).sum())} wrong"
    )
    ax.legend(
        handles=[Patch(color="#41ab5d", label="correct"), Patch(color="#d7301f", label="wrong")],
        loc="lower right",
    )
    return fig


def write_errors(
    path: str | Path, graded: gpd.GeoDataFrame, id_col: str, label_col: str
) -> Path | None:
    """Per-parcel correct/incorrect layer (GeoPackage) and its PNG map; None without predictions."""
    from landforge.evaluation.plots import save_png
    from landforge.io.vector import write_vector

    if "correct" not in graded.columns:
        return None
    keep = graded["correct"].notna().to_numpy()
    cols = [id_col, label_col, "heldout_pred", "correct", "level"]
    cols += [c for c in ("area_m2",) if c in graded.columns]
    layer = graded.loc[keep, [*cols, graded.geometry.name]].copy()
    layer["correct"] = layer["correct"].astype(bool)
    layer[label_col] = layer[label_col].astype(str)
    p = Path(path)
    write_vector(layer, p, layer="parcels")
    if len(layer):
        save_png(errors_map_figure(layer), p.with_suffix(".png"))
    return p
