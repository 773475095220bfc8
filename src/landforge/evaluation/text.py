"""Metrics as text for a person: the lines ``landforge evaluate`` and ``evaluate-roads`` print."""

from __future__ import annotations

import base64
import html
import io
import math
import shutil
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "esc",
    "evaluated_on_text",
    "img_tag",
    "metrics_lines",
    "pct",
    "roads_line",
    "split_label",
]

_HEADLINE = (
    ("overall_accuracy", "OA"),
    ("kappa", "kappa"),
    ("miou", "mIoU"),
    ("fwiou", "FWIoU"),
    ("macro_f1", "macro F1"),
)


def pct(v: Any) -> str:
    """A ratio as a percentage with two decimals; ``–`` when undefined."""
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}%"


def _num(v: Any) -> str:
    return "–" if v is None or math.isnan(v) else f"{v:.4f}"


def split_label(metrics: Mapping[str, Any]) -> str | None:
    """``"test split"`` when the metrics were computed on one split's blocks, else None."""
    on = metrics.get("evaluated_on") or {}
    return f"{on['split']} split" if on.get("split") else None


def evaluated_on_text(metrics: Mapping[str, Any]) -> str:
    """What the metrics were computed on, for a person.

    E.g. ``"test split (2 blocks of chips/split_blocks.gpkg)"``, ``"mask m.tif"``, or
    ``"all pixels/rows"`` when neither a split nor a mask restricted them.
    """
    on = metrics.get("evaluated_on") or {}
    parts = []
    if on.get("split"):
        n = on.get("blocks")
        parts.append(
            f"{on['split']} split ({n} block{'s' if n != 1 else ''} of {on.get('split_blocks')})"
        )
    if on.get("mask"):
        parts.append(f"mask {on['mask']}")
    return ", ".join(parts) if parts else "all pixels/rows"


def metrics_lines(metrics: Mapping[str, Any], out: Any = None) -> list[str]:
    """The accuracy table, the per-class table and a note, as printed lines.

    Args:
        metrics: a ``landforge-metrics/1`` dictionary.
        out: where the metrics JSON was written (named in the note), or None.
    """
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    width = max(80, shutil.get_terminal_size().columns)
    console = Console(file=buffer, width=width, color_system=None, highlight=False)
    base = metrics["baseline"]
    label = split_label(metrics)
    title = f"Accuracy ({label})" if label else "Accuracy"
    head = Table(title=title, show_header=True, header_style="bold")
    head.add_column("metric")
    head.add_column("model", justify="right")
    head.add_column(f"majority ({base.get('class')})", justify="right")
    for key, label in _HEADLINE:
        fmt: Callable[[Any], str] = _num if key == "kappa" else pct
        head.add_row(label, fmt(metrics.get(key)), fmt(base.get(key)))
    console.print(head)
    per = Table(title="Per class", show_header=True, header_style="bold")
    for col in ("class", "support", "precision", "recall", "F1", "IoU"):
        per.add_column(col, justify="left" if col == "class" else "right")
    for name, pc in metrics["per_class"].items():
        per.add_row(
            str(name),
            f"{pc['support']:,}",
            pct(pc["precision"]),
            pct(pc["recall"]),
            pct(pc["f1"]),
            pct(pc["iou"]),
        )
    console.print(per)
    for key, what in (
        ("true_footprints", "true footprints"),
        ("true_footprints_soft", "true footprints, soft vote"),
        ("predicted_footprints", "matched predicted footprints"),
    ):
        b = (metrics.get("buildings") or {}).get(key)
        if b:
            f1 = ", ".join(
                f"{n} {pct(pc['f1'])}" for n, pc in b["per_class"].items() if pc["support"]
            )
            console.print(
                f"Per building ({b['n']:,} {what}): OA {pct(b['overall_accuracy'])}"
                f" (majority {pct(b['baseline']['overall_accuracy'])}), kappa "
                f"{_num(b['kappa'])}; F1 {f1}",
                markup=False,
            )
    note = f"{metrics['n']:,} evaluated"
    if metrics.get("evaluated_on"):
        note += f" in {evaluated_on_text(metrics)}"
    if metrics.get("n_unpredicted"):
        note += f", {metrics['n_unpredicted']:,} without prediction left out"
    if out is not None:
        note += f"; metrics written to {out}"
    console.print(note, markup=False)
    return buffer.getvalue().splitlines()


def roads_line(m: Mapping[str, Any]) -> str:
    """One line of road metrics: completeness, correctness, quality, lengths, tolerance."""
    parts = [f"{k} {pct(m.get(k))}" for k in ("completeness", "correctness", "quality")]
    if "pixel_iou" in m:
        parts.append(f"pixel IoU {pct(m['pixel_iou'])}")
    return (
        ", ".join(parts)
        + f" (reference {m['truth_length_m']:.0f} m, extracted {m['pred_length_m']:.0f} m,"
        + f" tolerance {m['tolerance_m']:g} m)"
    )


def esc(x: Any) -> str:
    """``x`` as escaped HTML text (attribute-safe)."""
    return html.escape(str(x), quote=True)


def img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` holding ``png`` as a base64 ``data:`` URI (reports stay one file)."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
