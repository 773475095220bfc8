"""Dataset statistics for the report: what the samples of a run contain.

For every chip store under the run directory (a ``meta.json`` beside an
``index.parquet``): pixels and chips per class and split, per label (FUSU Fig. 4 style
bars). For every parcel table an evaluation scored (the truth side of a table metrics
file): parcels per class, per city / district / region when the table has such a column
(MSLU Fig. 5 style), the parcel area distribution per class (box plot), and the quality
level x class table (MSLU Tables 3/4: count and row %) when the table has a ``level``
column. Each kind of dataset is one function returning HTML; a new one (parcel samples,
change datasets) adds a function to :data:`SECTIONS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landforge.evaluation.text import esc as _esc
from landforge.evaluation.text import img_tag as _img

__all__ = ["SECTIONS", "chip_store_sections", "dataset_sections", "parcel_table_sections"]

#: Columns naming the place of a sample, first match wins (per-city tables).
PLACE_COLUMNS = ("city", "district", "region", "area_name")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(i: int, v: Any) -> str:
        if isinstance(v, (int, np.integer)):
            text = f"{int(v):,}"
        elif isinstance(v, (float, np.floating)):
            text = f"{float(v):.1f}"
        else:
            text = _esc(v)
        return f'<td class="l">{text}</td>' if i == 0 else f"<td>{text}</td>"

    head = "".join(
        f'<th class="l">{_esc(h)}</th>' if i == 0 else f"<th>{_esc(h)}</th>"
        for i, h in enumerate(header)
    )
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _bars(
    names: Sequence[str], groups: Mapping[str, Sequence[float]], ylabel: str, title: str
) -> bytes:
    """Grouped bars: one group per class, one bar per key of ``groups`` (e.g. splits)."""
    from landforge.evaluation import plots

    fig = plots._new_figure(min(max(5.0, 0.6 * len(names) + 2.5), 16.0), 3.6)
    ax = fig.add_subplot()
    x = np.arange(len(names))
    width = 0.8 / max(len(groups), 1)
    for i, (label, values) in enumerate(groups.items()):
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x, list(names), rotation=45, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return plots.png_bytes(fig)


# ---------------------------------------------------------------------- chip stores
def _chip_stores(root: Path) -> list[Path]:
    out = []
    for meta in sorted(root.rglob("meta.json")):
        rel = meta.relative_to(root).parts
        if any(p.startswith(".") for p in rel) or not (meta.parent / "index.parquet").is_file():
            continue
        out.append(meta.parent)
    return out


def chip_store_sections(
    root: Path, names_for: Callable[[Path], dict[int, str] | None]
) -> list[str]:
    """Pixels and chips per class and split of every chip store under ``root``."""
    import pandas as pd

    sections = []
    for store in _chip_stores(root):
        try:
            meta = json.loads((store / "meta.json").read_text())
            index = pd.read_parquet(store / "index.parquet")
        except (OSError, ValueError) as exc:
            sections.append(
                f'<section><h2>Dataset: <code>{_esc(store.name)}</code></h2><p class="muted">'
                f"could not be read: {_esc(exc)}</p></section>"
            )
            continue
        rel = store.relative_to(root).as_posix()
        splits = [s for s in ("train", "val", "test") if s in set(index.get("split", []))]
        splits += sorted(set(index.get("split", [])) - set(splits))
        parts = [
            f"<section><h2>Dataset: chip store <code>{_esc(rel)}</code></h2>"
            f"<p>{len(index):,} chips of {_esc(meta.get('size'))} px "
            f"({_esc(meta.get('sampler', 'grid'))} sampler); per split: "
            + ", ".join(f"{s} {int((index['split'] == s).sum()):,}" for s in splits)
            + "</p>"
        ]
        labels = meta.get("labels") or {}
        for label in meta.get("label_names") or list(labels):
            cols = [
                c
                for c in index.columns
                if c.startswith(f"{label}_") and c[len(label) + 1 :].isdigit()
            ]
            if not cols:
                continue
            values = [int(c[len(label) + 1 :]) for c in cols]
            names = names_for(Path(labels[label])) if label in labels else None
            names = names or {}
            shown = [names.get(v, str(v)) for v in values]
            per_split = {
                s: [int(index.loc[index["split"] == s, c].sum()) for c in cols] for s in splits
            }
            chips_with = {
                s: [int((index.loc[index["split"] == s, c] > 0).sum()) for c in cols]
                for s in splits
            }
            header = ["class", *[f"{s} pixels" for s in splits], *[f"{s} chips" for s in splits]]
            rows = [
                [shown[i], *[per_split[s][i] for s in splits], *[chips_with[s][i] for s in splits]]
                for i in range(len(cols))
            ]
            parts.append(f"<h3>label <code>{_esc(label)}</code></h3>{_table(header, rows)}")
            png = _bars(shown, per_split, "pixels (log)", f"{label}: pixels per class and split")
            parts.append(f'<div class="figs">{_img(png, f"{label} pixels per class")}</div>')
        parts.append("</section>")
        sections.append("".join(parts))
    return sections


# ---------------------------------------------------------------------- parcel tables
def _parcel_tables(
    root: Path, metrics: Sequence[tuple[Path, Mapping[str, Any]]]
) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    for _p, m in metrics:
        truth, col = m.get("truth"), m.get("truth_col")
        if not truth or not col or Path(str(truth)).suffix.lower() in (".tif", ".tiff"):
            continue
        path = Path(str(truth)) if Path(str(truth)).is_absolute() else root / str(truth)
        if path.is_file() and (path, col) not in out:
            out.append((path, str(col)))
    return out


def parcel_table_sections(
    root: Path, metrics: Sequence[tuple[Path, Mapping[str, Any]]]
) -> list[str]:
    """Parcels per class (and place), area per class, and level x class of parcel tables."""
    from landforge.evaluation import plots
    from landforge.io.vector import read_vector

    sections = []
    for path, col in _parcel_tables(root, metrics):
        gdf = read_vector(path)
        if col not in gdf.columns:
            continue
        gdf = gdf[gdf[col].notna()]
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        classes = sorted(gdf[col].astype(str).unique())
        cls = gdf[col].astype(str)
        parts = [f"<section><h2>Dataset: parcels <code>{_esc(rel)}</code></h2>"]
        area = gdf.geometry.area if gdf.crs is not None and gdf.crs.is_projected else None
        rows = []
        for c in classes:
            sel = cls == c
            row: list[Any] = [c, int(sel.sum())]
            if area is not None:
                a = area[sel]
                row += [float(a.median()), float(a.sum() / 1e4)]
            rows.append(row)
        header = ["class", "parcels"] + (
            ["median area m²", "total area ha"] if area is not None else []
        )
        parts.append(_table(header, rows))
        place = next((c for c in PLACE_COLUMNS if c in gdf.columns), None)
        if place is not None:
            table = gdf.groupby([gdf[place].astype(str), cls]).size().unstack(fill_value=0)
            parts.append(f"<h3>parcels per {_esc(place)} and class</h3>")
            parts.append(
                _table([place, *table.columns], [[i, *map(int, r)] for i, r in table.iterrows()])
            )
        if area is not None and len(classes):
            fig = plots._new_figure(min(max(5.0, 0.6 * len(classes) + 2.5), 16.0), 3.6)
            ax = fig.add_subplot()
            ax.boxplot([area[cls == c].to_numpy() for c in classes], showfliers=False)
            ax.set_xticks(np.arange(1, len(classes) + 1), classes, rotation=45, ha="right")
            ax.set_yscale("log")
            ax.set_ylabel("parcel area m² (log)")
            ax.set_title("parcel area per class")
            parts.append(
                f'<div class="figs">{_img(plots.png_bytes(fig), "parcel area per class")}</div>'
            )
        if "level" in gdf.columns:
            table = gdf.groupby([gdf["level"].astype(int), cls]).size().unstack(fill_value=0)
            header = ["level", *[f"{c} (n, row %)" for c in table.columns], "total"]
            rows = []
            for lvl, r in table.iterrows():
                total = int(r.sum())
                rows.append([lvl, *[f"{int(v):,} ({100 * v / total:.1f} %)" for v in r], total])
            parts.append("<h3>quality level x class</h3>" + _table(header, rows))
        parts.append("</section>")
        sections.append("".join(parts))
    return sections


def dataset_sections(
    root: Path,
    metrics: Sequence[tuple[Path, Mapping[str, Any]]],
    names_for: Callable[[Path], dict[int, str] | None],
) -> list[str]:
    """All dataset sections of a run (chip stores, then parcel tables)."""
    out: list[str] = []
    for section in SECTIONS:
        out += section(root, metrics, names_for)
    return out


#: One function per kind of dataset: (root, metrics, class names of a raster) -> sections.
SECTIONS: list[Callable[..., list[str]]] = [
    lambda root, metrics, names_for: chip_store_sections(root, names_for),
    lambda root, metrics, names_for: parcel_table_sections(root, metrics),
]
