"""Report sections for table files: JSON with ``"kind": "landforge-tables/1"``.

A tables file holds a ``title``, an optional ``summary`` (flat numbers), ``tables`` (each
``{"name", "title", "rows": [{column: value}, ...]}``) and optional ``images`` (PNG
paths relative to the JSON). ``landforge grade`` writes one; any stage can. Each file
becomes one section of the HTML report (:func:`landforge.evaluation.report.build_report`)
with its tables and embedded images.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

__all__ = ["KIND_TABLES", "find_tables", "tables_sections"]

KIND_TABLES = "landforge-tables/1"
_MAX_BYTES = 20 * 1024 * 1024
_MAX_ROWS = 200


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return _esc(v)


def find_tables(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every tables JSON under ``root`` (hidden folders skipped), sorted by path."""
    found = []
    for path in sorted(root.rglob("*.json")):
        rel = path.relative_to(root).parts
        if any(p.startswith(".") for p in rel) or not path.is_file():
            continue
        if path.stat().st_size > _MAX_BYTES:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and data.get("kind") == KIND_TABLES:
            found.append((path, data))
    return found


def _table_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="muted">(empty)</p>'
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th{' class=l' if i == 0 else ''}>{_esc(c)}</th>" for i, c in enumerate(cols))
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=l' if i == 0 else ''}>{_cell(r.get(c))}</td>" for i, c in enumerate(cols)
        )
        + "</tr>"
        for r in rows[:_MAX_ROWS]
    )
    more = (
        f'<p class="muted">{len(rows) - _MAX_ROWS} more rows.</p>' if len(rows) > _MAX_ROWS else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _section(root: Path, path: Path, data: dict[str, Any]) -> str:
    rel = path.relative_to(root).as_posix()
    parts = [f"<section><h2>{_esc(data.get('title') or 'Tables')}: <code>{_esc(rel)}</code></h2>"]
    summary = data.get("summary") or {}
    flat = [(k, v) for k, v in summary.items() if isinstance(v, int | float | str) or v is None]
    if flat:
        parts.append(_table_html([{"": k, "value": v} for k, v in flat]))
    for t in data.get("tables") or []:
        if not isinstance(t, dict):
            continue
        parts.append(f"<h3>{_esc(t.get('title') or t.get('name') or '')}</h3>")
        parts.append(_table_html([r for r in t.get("rows") or [] if isinstance(r, dict)]))
    for img in data.get("images") or []:
        p = (path.parent / str(img)).resolve()
        if p.suffix.lower() == ".png" and p.is_file() and p.is_relative_to(root.resolve()):
            b64 = base64.b64encode(p.read_bytes()).decode("ascii")
            parts.append(
                f'<div class="figs"><img alt="{_esc(img)}" src="data:image/png;base64,{b64}"></div>'
            )
    parts.append("</section>")
    return "".join(parts)


def tables_sections(root: Path) -> list[str]:
    """One HTML section per tables JSON under ``root``."""
    return [_section(root, p, d) for p, d in find_tables(root)]
