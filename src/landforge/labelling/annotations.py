"""Annotations back from Label Studio or a spreadsheet (``landforge label import``).

Reads Label Studio's JSON export (tasks with their ``annotations``), its JSON-MIN and
CSV exports (one row per annotation, the class under the Choices tag's name) and our
own CSV (``tasks.csv`` of ``label export`` with ``label`` and ``annotator`` filled in).
Every annotation is checked against the task list of the export and its labelling
config before anything is written: it must name a task of that list (and of the same
export: the ``lf_project`` key), its image path must stay inside the export folder
(no absolute path, no ``..``, no symbolic link out) and be the task's own, its class
must be one the config offers, and an annotator may annotate a task once. One problem
fails the whole import (one line naming the file, the count and the first problem);
the output table is written only when everything passed.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from landforge.errors import InputError
from landforge.io.safe_paths import safe_member_path
from landforge.labelling.options import ImportOptions
from landforge.labelling.tasks import PROJECT_KEY, load_tasks

__all__ = [
    "COLUMNS",
    "config_classes",
    "import_annotations",
    "read_annotations",
    "read_table",
    "write_table",
]

#: Columns of the annotation table.
COLUMNS = ["parcel_id", "annotator", "label", "annotation_id", "batch", "role"]


def config_classes(config: str | os.PathLike[str], from_name: str = "class") -> list[str]:
    """The choice values of the Choices tag ``from_name`` in a labelling config (XML)."""
    import defusedxml.ElementTree as DET
    from defusedxml import DefusedXmlException

    p = Path(config)
    if not p.is_file():
        raise InputError(p, "labelling config does not exist (written by 'label export')")
    try:
        root = DET.parse(str(p)).getroot()
    except (DefusedXmlException, SyntaxError) as exc:
        raise InputError(p, f"not a usable labelling config: {exc}") from None
    for tag in root.iter("Choices"):
        if tag.get("name") == from_name:
            return [c.get("value", "") for c in tag.iter("Choice")]
    raise InputError(p, f"no Choices tag named {from_name!r}")


def _annotator(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("email") or value.get("username") or value.get("id") or "")
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _choice(result: list[dict[str, Any]], from_name: str) -> list[str] | None:
    for r in result or []:
        if r.get("from_name") == from_name and r.get("type") == "choices":
            return [str(c) for c in (r.get("value") or {}).get("choices", [])]
    return None


def _min_choice(value: Any) -> list[str] | None:
    """A JSON-MIN/CSV cell: ``"R"``, ``{"choices": [...]}`` or its JSON text; None if empty."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    if isinstance(value, dict):
        return [str(c) for c in value.get("choices", [])]
    if isinstance(value, list):
        return [str(c) for c in value]
    text = str(value)
    if text.startswith("{"):
        try:
            return _min_choice(json.loads(text))
        except ValueError:
            pass
    return [text]


def _detect(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    if path.suffix.lower() == ".json":
        return "json"  # refined to json-min after reading
    if path.suffix.lower() in (".csv", ".tsv"):
        return "csv"
    raise InputError(path, "unknown annotation format; give --format json, json-min, csv or ours")


def read_annotations(
    path: str | os.PathLike[str], opts: ImportOptions | None = None, **overrides: Any
) -> list[dict[str, Any]]:
    """Raw annotation records (not yet validated) from any supported export.

    Each record: ``parcel_id``, ``annotator``, ``choices`` (list or None = skipped),
    ``annotation_id``, ``image`` (the image path the export names, or None),
    ``project_key`` (the export's ``lf_project`` or None).
    """
    o = ImportOptions.build(opts, **overrides)
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "annotation file does not exist")
    fmt = _detect(p, o.format)
    records: list[dict[str, Any]] = []
    if fmt in ("json", "json-min"):
        try:
            items = json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(p, f"not JSON: {exc}") from None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InputError(p, "expected a JSON list of tasks (a Label Studio export)")
        if o.format == "auto" and not any("annotations" in i for i in items):
            fmt = "json-min"
        for item in items:
            data = item.get("data", item) if fmt == "json" else item
            if not isinstance(data, dict):
                raise InputError(p, "a task without a data mapping")
            base = {
                "parcel_id": None if data.get("parcel_id") is None else str(data["parcel_id"]),
                "image": data.get("image_path", data.get("image")),
                "project_key": data.get(PROJECT_KEY),
            }
            if fmt == "json":
                for ann in item.get("annotations") or []:
                    cancelled = bool(ann.get("was_cancelled"))
                    records.append(
                        {
                            **base,
                            "annotator": _annotator(ann.get("completed_by")),
                            "choices": None
                            if cancelled
                            else _choice(ann.get("result"), o.from_name),
                            "annotation_id": ann.get("id"),
                        }
                    )
            else:
                records.append(
                    {
                        **base,
                        "annotator": _annotator(item.get("annotator")),
                        "choices": _min_choice(item.get(o.from_name)),
                        "annotation_id": item.get("annotation_id"),
                    }
                )
        return records
    try:
        table = pd.read_csv(p, dtype=str, keep_default_na=False, sep=None, engine="python")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(p, f"not a readable CSV: {exc}") from None
    if "parcel_id" not in table.columns:
        raise InputError(p, "no parcel_id column (is this an export of landforge tasks?)")
    if fmt == "csv" and o.format == "auto" and o.from_name not in table.columns:
        fmt = "ours"
    col = "label" if fmt == "ours" else o.from_name
    if col not in table.columns:
        raise InputError(p, f"no {col!r} column with the classes")
    for row in table.to_dict("records"):
        image = row.get("image_path") or row.get("image") or None
        records.append(
            {
                "parcel_id": str(row["parcel_id"]),
                "annotator": str(row.get("annotator", "")),
                "choices": _min_choice(row[col]),
                "annotation_id": row.get("annotation_id") or None,
                "image": image,
                "project_key": row.get(PROJECT_KEY) or None,
            }
        )
    return records


def _image_problem(
    record: dict[str, Any], task: dict[str, Any], root: Path, source: Path
) -> str | None:
    """Why the record's image path is refused, or None (absent or the task's own)."""
    given = record.get("image")
    if given in (None, ""):
        return None
    given = str(given)
    own = str(task["data"].get("image", ""))
    rel = str(task["data"].get("image_path", ""))
    prefix = own[: len(own) - len(rel)] if rel and own.endswith(rel) else ""
    name = given[len(prefix) :] if prefix and given.startswith(prefix) else given
    try:
        safe_member_path(root, name, source)
    except InputError as exc:
        return exc.problem
    if given not in (own, rel):
        return f"task {record['parcel_id']}: image {given!r} is not the task's image {own!r}"
    return None


def import_annotations(
    path: str | os.PathLike[str],
    tasks_path: str | os.PathLike[str],
    opts: ImportOptions | None = None,
    **overrides: Any,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read and validate annotations against a task export; all-or-nothing.

    Args:
        path: the annotation export (Label Studio JSON/JSON-MIN/CSV or our CSV).
        tasks_path: the ``label export`` folder (or its ``tasks.json``).
        opts: :class:`ImportOptions`.
        **overrides: option fields.

    Returns:
        The annotation table (:data:`COLUMNS`; skipped annotations are left out) and a
        summary (tasks, annotations, annotated tasks, skipped, per annotator).

    Raises:
        InputError: naming ``path``: the number of problems and the first of them.
    """
    o = ImportOptions.build(opts, **overrides)
    source = Path(path)
    tasks_file = Path(tasks_path)
    root = tasks_file if tasks_file.is_dir() else tasks_file.parent
    tasks = load_tasks(tasks_file)
    by_id = {str(t["data"]["parcel_id"]): t for t in tasks}
    keys = {t["data"].get(PROJECT_KEY) for t in tasks} - {None}
    classes = config_classes(root / "config.xml", o.from_name)
    records = read_annotations(source, o)
    problems: list[str] = []
    unknown = [r for r in records if r["parcel_id"] not in by_id]
    if records and len(unknown) == len(records):
        raise InputError(
            source,
            f"none of its {len(records)} annotations names a task of {root} "
            f"(e.g. parcel {records[0]['parcel_id']!r}): an export of another project?",
        )
    foreign = {r["project_key"] for r in records if r["project_key"]} - keys
    if foreign and keys:
        problems.append(
            f"tasks of another export (project key {sorted(foreign)[0]}, expected "
            f"{sorted(keys)[0]})"
        )
    seen: Counter[tuple[str, str]] = Counter()
    rows: list[dict[str, Any]] = []
    skipped = 0
    for r in records:
        pid = r["parcel_id"]
        task = by_id.get(pid)
        if task is None:
            problems.append(f"annotation of unknown task {pid!r}")
            continue
        why = _image_problem(r, task, root, source)
        if why:
            problems.append(why)
            continue
        if not r["choices"]:  # cancelled, or a spreadsheet row left empty
            skipped += 1
            continue
        if not r["annotator"]:
            problems.append(f"task {pid}: annotation without an annotator")
            continue
        seen[(pid, r["annotator"])] += 1
        if seen[(pid, r["annotator"])] == 2:
            problems.append(f"task {pid}: annotated twice by {r['annotator']}")
        if len(r["choices"]) != 1:
            problems.append(f"task {pid}: {len(r['choices'])} classes chosen, expected one")
            continue
        label = r["choices"][0]
        if label not in classes:
            problems.append(
                f"task {pid}: label {label!r} is not in the taxonomy ({', '.join(classes)})"
            )
            continue
        data = task["data"]
        role = (
            "annotator"
            if data.get("annotator") == r["annotator"]
            else "checker"
            if data.get("checker") == r["annotator"]
            else ("other" if data.get("annotator") else "")
        )
        rows.append(
            {
                "parcel_id": pid,
                "annotator": r["annotator"],
                "label": label,
                "annotation_id": "" if r["annotation_id"] is None else str(r["annotation_id"]),
                "batch": str(data.get("batch", "")),
                "role": role,
            }
        )
    if problems:
        more = f" ({len(problems)} problems; first shown)" if len(problems) > 1 else ""
        raise InputError(source, f"{problems[0]}{more}; nothing was imported")
    table = pd.DataFrame(rows, columns=COLUMNS)
    summary = {
        "tasks": len(tasks),
        "annotations": len(table),
        "annotated_tasks": int(table["parcel_id"].nunique()),
        "skipped": skipped,
        "per_annotator": {str(k): int(v) for k, v in table["annotator"].value_counts().items()},
    }
    return table, summary


def write_table(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the annotation table atomically (.csv or .parquet by suffix)."""
    from landforge.io.atomic import atomic_path

    p = Path(path)
    with atomic_path(p) as tmp:
        if p.suffix.lower() in (".parquet", ".pq"):
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    return p


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an annotation table written by :func:`write_table`."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "annotation table does not exist (write it with 'label import')")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(p)
        else:
            table = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (ValueError, OSError) as exc:
        raise InputError(p, f"not a readable annotation table: {exc}") from None
    missing = [c for c in ("parcel_id", "annotator", "label") if c not in table.columns]
    if missing:
        raise InputError(p, f"not an annotation table: no column {missing[0]!r}")
    return table.astype({"parcel_id": str, "annotator": str, "label": str})
