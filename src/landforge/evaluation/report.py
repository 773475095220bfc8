"""One self-contained HTML report per run directory.

``build_report(RUN)`` writes ``RUN/report.html``: the pipeline stages from
``RUN/manifest.json`` (when there is one), a headline table of the accuracy metrics
(those computed on the test split first; train/val metrics only in rows labelled as
seen in training), a section per metrics JSON found under RUN
(``"kind": "landforge-metrics/1"``) with headline metrics against the majority-class
baseline, per-class table, confusion matrix and class distribution, and a quicklook of
every class-map raster (single-band uint8 with a colour table), and an interactive map
(:mod:`landforge.evaluation.webmap`). Images are embedded as base64 ``data:`` URIs, the
CSS and scripts are inline and a Content-Security-Policy forbids loading anything else,
so the file opens offline, can be mailed, and references nothing on the network.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landforge.errors import InputError
from landforge.evaluation.scores import KIND_METRICS
from landforge.evaluation.text import esc, evaluated_on_text, img_tag, split_label
from landforge.io.atomic import atomic_path

__all__ = ["build_report", "find_metrics", "find_class_maps"]

_MAX_JSON_BYTES = 50 * 1024 * 1024
_MAX_MAPS = 8
_RASTER_SUFFIXES = {".tif", ".tiff"}

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2430;
background:#f5f6f8}
header{background:#1f3a5f;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85;font-size:13px}
main{padding:10px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:14px 18px;
margin:16px 0}
h2{font-size:18px;margin:0 0 10px;color:#1f3a5f}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #dde1e6;padding:4px 9px;text-align:right}
th{background:#eef1f5}td.l,th.l{text-align:left}
tr:nth-child(even) td{background:#fafbfc}
.muted{color:#6b7480;font-size:12px}.ok{color:#1a7f37}.bad{color:#b42318}
.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
.figs img{max-width:100%;border:1px solid #e3e6ea}
code{background:#eef1f5;padding:1px 4px;border-radius:3px}
"""

_HEADLINE = (
    ("overall_accuracy", "OA", "pct"),
    ("kappa", "kappa", "num"),
    ("miou", "mIoU (present classes)", "pct"),
    ("miou_all", "mIoU (all classes)", "pct"),
    ("fwiou", "FWIoU", "pct"),
    ("macro_f1", "macro F1", "pct"),
)


_esc = esc


def _fmt(v: Any, kind: str = "auto") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if kind == "pct":
            return f"{100 * v:.2f}%"
        if kind == "num" or abs(v) < 1e4:
            return f"{v:.4f}" if abs(v) < 10 else f"{v:,.2f}"
        return f"{v:,.0f}"
    return _esc(v)


_img = img_tag


def _table(
    header: Iterable[str],
    rows: Iterable[Iterable[str]],
    left: int = 1,
    also_left: frozenset[int] | set[int] = frozenset(),
) -> str:
    """An HTML table of already-escaped cells; the first ``left`` columns align left."""

    def cls(i: int) -> str:
        return ' class="l"' if i < left or i in also_left else ""

    head = "".join(f"<th{cls(i)}>{h}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def find_metrics(run_dir: str | os.PathLike[str]) -> list[tuple[Path, dict[str, Any]]]:
    """All ``landforge-metrics/1`` JSON files under ``run_dir`` (sorted by path)."""
    root = Path(run_dir)
    found = []
    for path in sorted(root.rglob("*.json")):
        if not path.is_file() or not _visible(path, root) or path.name == "manifest.json":
            continue
        if path.stat().st_size > _MAX_JSON_BYTES:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and data.get("kind") == KIND_METRICS:
            found.append((path, data))
    return found


def _is_class_map(path: Path) -> bool:
    import rasterio

    try:
        with rasterio.open(path) as src:
            if src.count != 1 or src.dtypes[0] != "uint8":
                return False
            try:
                return bool(src.colormap(1))
            except ValueError:
                return False
    except Exception:  # unreadable files are simply not class maps
        return False


def find_class_maps(
    run_dir: str | os.PathLike[str], manifest: Mapping[str, Any] | None = None
) -> list[Path]:
    """Class-map rasters of a run: outputs listed in the manifest, else any .tif in RUN."""
    root = Path(run_dir)
    candidates: list[Path] = []
    if manifest and isinstance(manifest.get("stages"), Mapping):
        for stage in manifest["stages"].values():
            for rel in (stage or {}).get("outputs", []) or []:
                p = root / str(rel)
                if p.is_dir():
                    candidates += sorted(
                        q for q in p.rglob("*") if q.suffix.lower() in _RASTER_SUFFIXES
                    )
                elif p.suffix.lower() in _RASTER_SUFFIXES and p.is_file():
                    candidates.append(p)
    else:
        candidates = sorted(
            p for p in root.rglob("*") if p.suffix.lower() in _RASTER_SUFFIXES and _visible(p, root)
        )
    seen: set[Path] = set()
    out = []
    for p in candidates:
        if p in seen:
            continue
        seen.add(p)
        if _is_class_map(p):
            out.append(p)
    return out


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------


def _summary_text(summary: Any, limit: int = 6) -> str:
    if not isinstance(summary, Mapping):
        return ""
    items = []
    for k, v in summary.items():
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            continue
        if isinstance(v, str) and len(v) > 40:
            continue
        items.append(f"{_esc(k)}={_fmt(v)}")
        if len(items) >= limit:
            break
    return ", ".join(items)


def _stages_section(manifest: Mapping[str, Any]) -> str:
    stages = manifest.get("stages") or {}
    rows = []
    total = 0.0
    for name, st in stages.items():
        st = st or {}
        status = str(st.get("status", ""))
        if status == "running" and st.get("type") == "report":
            status = "this report"  # the stage writing this page is still running
        cls = "ok" if status in ("done", "this report") else "bad" if status == "failed" else ""
        secs = st.get("seconds")
        if isinstance(secs, int | float):
            total += float(secs)
        rows.append(
            [
                _esc(name),
                _esc(st.get("type", "")),
                f'<span class="{cls}">{_esc(status)}</span>',
                f"{secs:,.1f}" if isinstance(secs, int | float) else "–",
                _summary_text(st.get("summary")),
            ]
        )
    pipeline = _esc(manifest.get("pipeline", ""))
    table = _table(["stage", "type", "status", "seconds", "summary"], rows, left=3, also_left={4})
    return (
        f"<section><h2>Run summary</h2><p>pipeline <code>{pipeline}</code> · "
        f"{len(rows)} stage(s) · {total:,.1f} s in total</p>{table}</section>"
    )


#: order of the metrics in the report: held-out first, what the model trained on last
_SPLIT_RANK = {"test": 0, None: 1, "val": 3, "train": 4}


def _split_of(m: Mapping[str, Any]) -> str | None:
    on = m.get("evaluated_on")
    return str(on["split"]) if isinstance(on, Mapping) and on.get("split") else None


def _rank(m: Mapping[str, Any]) -> int:
    return _SPLIT_RANK.get(_split_of(m), 2)


def _seen_note(m: Mapping[str, Any]) -> str:
    """A warning for metrics on pixels the model was trained or tuned on ("" otherwise)."""
    split = _split_of(m)
    if split == "train":
        return " (seen in training: not a measure of accuracy)"
    if split == "val":
        return " (used to select the model: not held out)"
    return ""


def _headline_section(metrics: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """One table of OA / kappa / mIoU per metrics file, held-out metrics first."""
    rows = []
    for rel, m in metrics:
        base = m.get("baseline") or {}
        on = _esc(evaluated_on_text(m)) + _esc(_seen_note(m))
        rows.append(
            [
                f"<code>{_esc(rel)}</code>",
                on,
                _fmt(m.get("n")),
                _fmt(m.get("overall_accuracy"), "pct"),
                _fmt(m.get("kappa"), "num"),
                _fmt(m.get("miou"), "pct"),
                _fmt(base.get("overall_accuracy"), "pct"),
                _fmt(base.get("miou"), "pct"),
            ]
        )
    head = ["metrics", "evaluated on", "n", "OA", "kappa", "mIoU", "majority OA", "majority mIoU"]
    return (
        "<section><h2>Headline</h2>"
        '<p class="muted">Accuracy on the held-out test split comes first; metrics on '
        "pixels or rows the model was trained on are labelled as such.</p>"
        f"{_table(head, rows, left=2)}</section>"
    )


def _segmentation_section(rel: str, m: Mapping[str, Any]) -> str:
    label = split_label(m)
    title = f"Metrics: <code>{_esc(rel)}</code>"
    if label:
        title += f" · {_esc(label)}{_esc(_seen_note(m))}"
    parts = [f"<section><h2>{title}</h2>"]
    meta = [
        f"{k} <code>{_esc(m[k])}</code>"
        for k in ("task", "prediction", "truth", "taxonomy", "match")
        if m.get(k)
    ]
    if m.get("evaluated_on"):
        meta.append(f"evaluated on {_esc(evaluated_on_text(m))}")
    if m.get("n") is not None:
        meta.append(f"{_fmt(m['n'])} pixels/rows evaluated")
    if m.get("n_unpredicted"):
        meta.append(f"{_fmt(m['n_unpredicted'])} with no prediction (left out)")
    if meta:
        parts.append(f'<p class="muted">{" · ".join(meta)}</p>')
    base = m.get("baseline") or {}
    rows = []
    for key, label, kind in _HEADLINE:
        if key not in m and key not in base:
            continue
        v, b = m.get(key), base.get(key)
        gain = "–"
        if isinstance(v, int | float) and isinstance(b, int | float):
            d = v - b
            gain = f"{100 * d:+.2f} pp" if kind == "pct" else f"{d:+.4f}"
            gain = "–" if not math.isfinite(d) else gain
        rows.append([_esc(label), _fmt(v, kind), _fmt(b, kind), gain])
    bl = f"majority baseline ({_esc(base.get('class'))})" if base.get("class") else "baseline"
    parts.append("<h3>Headline metrics</h3>")
    parts.append(_table(["metric", "model", bl, "model − baseline"], rows))
    parts.append(_per_class_table(m.get("per_class") or {}))
    parts.append(_buildings_section(m.get("buildings") or {}))
    parts.append(_matrix_figures(rel, m))
    parts.append("</section>")
    return "".join(parts)


def _per_class_table(per_class: Mapping[str, Any]) -> str:
    """The per-class table of a metrics file ("" when it has none)."""
    if not per_class:
        return ""
    rows = [
        [
            _esc(name),
            _fmt(pc.get("value")),
            _fmt(pc.get("support")),
            _fmt(pc.get("predicted")),
            _fmt(pc.get("precision"), "pct"),
            _fmt(pc.get("recall"), "pct"),
            _fmt(pc.get("f1"), "pct"),
            _fmt(pc.get("iou"), "pct"),
            _fmt(pc.get("ovr_accuracy"), "pct"),
        ]
        for name, pc in per_class.items()
    ]
    head = ["class", "value", "support", "predicted", "precision", "recall", "F1", "IoU"]
    return "<h3>Per class</h3>" + _table([*head, "one-vs-rest acc."], rows)


def _buildings_section(b: Mapping[str, Any]) -> str:
    """Building-level scores (``evaluate --buildings``): "" when there are none."""
    if not b:
        return ""
    parts = ["<h3>Per building</h3>"]
    meta = [
        f"use by majority of the predicted use pixels in each footprint ({_esc(b.get('use_col'))})"
    ]
    if b.get("evaluated_on"):
        meta.append(f"evaluated on {_esc(evaluated_on_text(b))}")
    parts.append(f'<p class="muted">{" · ".join(meta)}</p>')
    for key, title in (
        ("true_footprints", "true footprints"),
        (
            "true_footprints_soft",
            "true footprints, soft vote (highest mean use probability in each footprint)",
        ),
        ("predicted_footprints", "predicted footprints"),
    ):
        s = b.get(key)
        if not s:
            continue
        base = s.get("baseline") or {}
        line = (
            f"<b>{_esc(title)}</b>: {_fmt(s.get('n'))} buildings · OA "
            f"{_fmt(s.get('overall_accuracy'), 'pct')} (majority "
            f"{_fmt(base.get('overall_accuracy'), 'pct')}) · kappa {_fmt(s.get('kappa'), 'num')}"
            f" · macro F1 {_fmt(s.get('macro_f1'), 'pct')} · no use predicted "
            f"{_fmt(s.get('n_no_use_predicted'))}"
        )
        det = s.get("detection") or {}
        if det:
            line += (
                f" · matched at IoU ≥ {_fmt(det.get('min_iou'), 'num')}: "
                f"{_fmt(det.get('n_matched'))} of {_fmt(det.get('n_predicted'))}"
                f" predicted / {_fmt(det.get('n_true'))} true"
            )
        parts.append(f"<p>{line}</p>")
        parts.append(_per_class_table(s.get("per_class") or {}).replace("<h3>Per class</h3>", ""))
    return "".join(parts)


def _matrix_figures(rel: str, m: Mapping[str, Any]) -> str:
    """Confusion matrix and class distribution images ("" without a matrix)."""
    from landforge.evaluation import plots

    cm = m.get("confusion_matrix")
    classes = m.get("classes")
    if not (cm and classes and len(cm) == len(classes)):
        return ""
    arr = np.asarray(cm, float)
    figs = [
        _img(plots.png_bytes(plots.confusion_matrix_figure(m)), f"confusion matrix {rel}"),
        _img(
            plots.png_bytes(
                plots.class_distribution_figure(
                    classes, arr.sum(axis=1), arr.sum(axis=0), m.get("colors")
                )
            ),
            f"class distribution {rel}",
        ),
    ]
    return f'<div class="figs">{"".join(figs)}</div>'


def _flat_numbers(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        if k in {"classes", "labels", "conventions", "kind"} or k.endswith("matrix"):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            if k == "transitions":
                continue
            out += _flat_numbers(v, f"{key}.")
        elif isinstance(v, int | float) or v is None:
            out.append((key, v))
    return out


def _change_section(rel: str, m: Mapping[str, Any]) -> str:
    rows = [[_esc(k), _fmt(v)] for k, v in _flat_numbers(m)]
    parts = [
        f"<section><h2>Change metrics: <code>{_esc(rel)}</code></h2>",
        _table(["metric", "value"], rows),
    ]
    trans = m.get("transitions") or {}
    if trans:
        top = sorted(trans.items(), key=lambda kv: -(kv[1].get("support") or 0))[:25]
        parts.append("<h3>Largest true transitions</h3>")
        parts.append(
            _table(
                ["from→to", "support", "IoU"],
                [[_esc(k), _fmt(v.get("support")), _fmt(v.get("iou"), "pct")] for k, v in top],
            )
        )
    parts.append("</section>")
    return "".join(parts)


def _map_names(path: Path, metrics: list[tuple[Path, dict[str, Any]]]) -> dict[int, str] | None:
    """Class names for a map: from a metrics file evaluating it, else its taxonomy tag."""
    resolved = path.resolve()
    for _p, m in metrics:
        for key in ("prediction", "truth"):
            ref = m.get(key)
            if ref and Path(ref).resolve() == resolved and m.get("labels"):
                return {int(v): str(n) for v, n in zip(m["labels"], m["classes"], strict=False)}
    try:
        import rasterio

        with rasterio.open(path) as src:
            tax = src.tags().get("taxonomy") or src.tags().get("class_system")
        if tax:
            from landforge.taxonomy import load_classes

            return {int(k): str(v) for k, v in load_classes(tax).label_values().items()}
    except Exception:  # names are a nicety: the legend falls back to values
        return None
    return None


def _maps_section(root: Path, maps: list[Path], metrics: list[tuple[Path, dict[str, Any]]]) -> str:
    from landforge.evaluation import plots

    figs = []
    for p in maps[:_MAX_MAPS]:
        rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name
        fig = plots.class_map_figure(p, names=_map_names(p, metrics), title=rel)
        figs.append(_img(plots.png_bytes(fig), f"class map {rel}"))
    more = (
        f'<p class="muted">{len(maps) - _MAX_MAPS} more class map(s) not shown.</p>'
        if len(maps) > _MAX_MAPS
        else ""
    )
    return f'<section><h2>Class maps</h2><div class="figs">{"".join(figs)}</div>{more}</section>'


#: The page may load nothing: scripts, styles and images are inline or ``data:`` URIs.
_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; font-src data:"
)


def _web_map(
    root: Path,
    metrics: list[tuple[Path, dict[str, Any]]],
    manifest: Mapping[str, Any] | None,
    pixels: int | None,
    features: int | None,
) -> str:
    from landforge.evaluation import webmap

    ctx = webmap.MapContext(
        root,
        metrics,
        manifest,
        class_names=lambda p: _map_names(p, metrics),
        pixels=pixels or webmap.DEFAULT_PIXELS,
        features=features or webmap.DEFAULT_FEATURES,
    )
    return webmap.map_section(ctx)


def build_report(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    map_pixels: int | None = None,
    map_features: int | None = None,
) -> Path:
    """Write the HTML report of a run directory.

    Args:
        run_dir: the run directory (with or without ``manifest.json``).
        out: output path (default ``RUN/report.html``).
        map_pixels: pixels per raster layer of the interactive map (default 1,000,000;
            0: no map section).
        map_features: features per vector layer of the map (default 5,000).

    Returns:
        The path of the written report.

    Raises:
        InputError: ``run_dir`` is not a directory.
    """
    root = Path(run_dir)
    if not root.exists():
        raise InputError(root, "run directory does not exist")
    if not root.is_dir():
        raise InputError(root, "expected a run directory, found a file")
    out_path = Path(out) if out is not None else root / "report.html"
    manifest: dict[str, Any] | None = None
    notes = []
    mpath = root / "manifest.json"
    if mpath.is_file():
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("not an object")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            manifest = None
            notes.append(f"manifest.json could not be read ({_esc(exc)}).")
    metrics = find_metrics(root)
    maps = find_class_maps(root, manifest)
    sections = []
    if manifest is not None:
        sections.append(_stages_section(manifest))
    accuracy = sorted(
        (
            (path.relative_to(root).as_posix(), m)
            for path, m in metrics
            if m.get("confusion_matrix") is not None or m.get("per_class") is not None
        ),
        key=lambda item: _rank(item[1]),  # stable: by path within a rank
    )
    if accuracy:
        sections.append(_headline_section(accuracy))
    sections += [_segmentation_section(rel, m) for rel, m in accuracy]
    for path, m in metrics:
        if not (m.get("confusion_matrix") is not None or m.get("per_class") is not None):
            sections.append(_change_section(path.relative_to(root).as_posix(), m))
    if map_pixels != 0:
        sections.append(_web_map(root, metrics, manifest, map_pixels, map_features))
    from landforge.evaluation.dataset_stats import dataset_sections

    sections += dataset_sections(root, metrics, lambda p: _map_names(p, metrics))
    from landforge.evaluation.table_report import tables_sections

    sections += tables_sections(root)  # landforge-tables/1 files (e.g. landforge grade)
    if maps:
        sections.append(_maps_section(root, maps, metrics))
    if not sections:
        notes.append("No manifest, metrics or class maps found in this directory.")
    title = f"landforge report: {root.resolve().name}"
    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    from landforge import __version__

    note_html = "".join(f'<section><p class="muted">{n}</p></section>' for n in notes)
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_esc(title)}</h1><p>{_esc(root.resolve())} · generated {_esc(when)}"
        f" · landforge {_esc(__version__)} · {len(metrics)} metrics file(s), "
        f"{len(maps)} class map(s)</p></header><main>{note_html}{''.join(sections)}</main>"
        "</body></html>\n"
    )
    with atomic_path(out_path) as tmp:
        tmp.write_text(doc, encoding="utf-8")
    return out_path
