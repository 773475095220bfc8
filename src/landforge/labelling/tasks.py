"""Label Studio tasks from pre-labelled parcels (``landforge label export``).

Every parcel becomes one task: a PNG patch with its outline drawn (``images/``), a
POI summary, and a *prediction* (Label Studio's pre-annotation) holding the model's
class as a ``choices`` result with its score and, optionally, the outline as a
``polygonlabels`` result in percent coordinates of the patch. Tasks are grouped and
ordered by predicted class, then by falling score (MSLU-100K's "grouping learning
strategy": annotators see similar parcels together). With annotators given, each
class group is cut into batches dealt to the annotators, and a share of every
annotator's items (25 % by default) is assigned to a second annotator as a cross-check.

The export folder holds ``tasks.json`` (Label Studio's import format), ``tasks.csv``
(the same for a spreadsheet: fill in ``label`` and ``annotator``), ``config.xml`` (the
labelling config for the taxonomy) and ``images/``. It is written all at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from landforge.errors import InputError, OptionError
from landforge.labelling.options import BatchOptions, TaskOptions

__all__ = [
    "PROJECT_KEY",
    "assign_batches",
    "export_tasks",
    "label_config",
    "load_tasks",
    "taxonomy_classes",
]

#: Data field of every task naming the export it came from (checked on import).
PROJECT_KEY = "lf_project"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def taxonomy_classes(
    taxonomy: str, level: int, classes: list[str]
) -> tuple[list[str], dict[str, str]]:
    """The class codes offered to annotators and their names.

    Raises:
        OptionError: an unknown taxonomy, a level it does not have, or a class not in it.
    """
    from landforge.taxonomy import load_classes

    try:
        system = load_classes(taxonomy)
    except (KeyError, FileNotFoundError, InputError) as exc:
        raise OptionError("taxonomy", f"unknown taxonomy {taxonomy!r}: {exc}") from None
    if level >= len(system.levels):
        raise OptionError("level", f"{taxonomy} has {len(system.levels)} level(s)")
    names = {c.code: c.name for c in system.at_level(level)}
    codes = list(classes) if classes else list(names)
    unknown = [c for c in codes if c not in names]
    if unknown:
        raise OptionError(
            "classes",
            f"not {taxonomy} level-{level} classes: {', '.join(unknown)} "
            f"(it has: {', '.join(names)})",
        )
    return codes, {c: names[c] for c in codes}


def label_config(classes: list[str], names: dict[str, str], outline: bool = True) -> str:
    """The Label Studio labelling config: the patch, the POI summary, one choice per class."""
    choices = "\n".join(
        f"    <Choice value={quoteattr(c)} hint={quoteattr(names.get(c, c))}/>" for c in classes
    )
    polygon = (
        '  <PolygonLabels name="outline" toName="image" strokeWidth="2">\n'
        '    <Label value="parcel" background="red"/>\n'
        "  </PolygonLabels>\n"
        if outline
        else ""
    )
    return (
        "<View>\n"
        '  <Header value="Parcel $parcel_id (pre-label $pred, score $score)"/>\n'
        '  <Image name="image" value="$image" zoom="true"/>\n'
        '  <Text name="poi" value="$poi_summary"/>\n'
        '  <Choices name="class" toName="image" choice="single-radio" required="true" '
        'showInLine="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        f"{polygon}"
        "</View>\n"
    )


def assign_batches(
    order: pd.DataFrame, annotators: list[str], opts: BatchOptions, seed: int = 0
) -> pd.DataFrame:
    """Batches per predicted class, dealt to annotators, plus cross-check assignments.

    Args:
        order: tasks in labelling order with columns ``task`` and ``pred``.
        annotators: annotator names (two or more for cross-checks).
        opts: ``batch_size`` and ``cross_check`` (share of each annotator's items).
        seed: seed of the cross-check draw.

    Returns:
        ``order`` with ``batch`` (text), ``annotator`` and ``checker`` ("" = none).
    """
    out = order.copy()
    batch = np.empty(len(out), dtype=object)
    annot = np.empty(len(out), dtype=object)
    load = dict.fromkeys(annotators, 0)
    n = 0
    for _, idx in out.groupby("pred", sort=False).indices.items():
        for start in range(0, len(idx), opts.batch_size):
            rows = idx[start : start + opts.batch_size]
            who = min(annotators, key=lambda a: (load[a], annotators.index(a)))
            load[who] += len(rows)
            batch[rows] = f"b{n:04d}"
            annot[rows] = who
            n += 1
    out["batch"] = batch
    out["annotator"] = annot
    checker = np.full(len(out), "", dtype=object)
    if len(annotators) > 1 and opts.cross_check > 0:
        # drawn per batch (at least one item each), so every batch gets an agreement
        # and each annotator has about `cross_check` of their items checked
        rng = np.random.default_rng(seed)
        checks = dict.fromkeys(annotators, 0)
        for idx in pd.Series(np.arange(len(out))).groupby(batch).indices.values():
            owner = annot[idx[0]]
            k = max(1, int(round(opts.cross_check * len(idx))))
            others = [b for b in annotators if b != owner]
            for row in np.sort(rng.choice(idx, size=min(k, len(idx)), replace=False)):
                who = min(others, key=lambda b: (checks[b] + load[b], others.index(b)))
                checks[who] += 1
                checker[row] = who
    out["checker"] = checker
    return out


def _scores(gdf: pd.DataFrame, score_col: str | None, source: str) -> np.ndarray | None:
    if score_col is not None:
        if score_col not in gdf.columns:
            raise OptionError("score_col", f"{source} has no column {score_col!r}")
        return pd.to_numeric(gdf[score_col], errors="coerce").to_numpy(dtype=float)
    probs = [c for c in gdf.columns if str(c).startswith("prob_")]
    if not probs:
        return None
    return gdf[probs].apply(pd.to_numeric, errors="coerce").max(axis=1).to_numpy(dtype=float)


def _preds(values: pd.Series, classes: list[str], taxonomy: str, level: int, source: str) -> list:
    from landforge.taxonomy import load_classes

    system = load_classes(taxonomy)
    out: list[str | None] = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
            continue
        code = str(v)
        if code not in classes:
            try:
                code = system.ancestor(system.resolve(code).code, level).code
            except KeyError:
                code = ""
            if code not in classes:
                raise InputError(
                    source, f"predicted class {v!r} is not one of {', '.join(classes)}"
                )
        out.append(code)
    return out


def _poi_summary(
    metric: Any, pois: Any, category_col: str, top: int
) -> tuple[list[str], list[int], dict[int, np.ndarray]]:
    """Per parcel: 'cat xN, ...' of its POIs, their count and coordinates (metric CRS)."""
    n = len(metric)
    if pois is None or len(pois) == 0:
        return [""] * n, [0] * n, {}
    import geopandas as gpd

    pts = pois.to_crs(metric.crs)
    pts = pts[pts.geometry.notna() & ~pts.geometry.is_empty]
    left = gpd.GeoDataFrame({"_row": np.arange(n)}, geometry=metric.geometry.values, crs=metric.crs)
    joined = gpd.sjoin(pts[[category_col, "geometry"]], left, predicate="within", how="inner")
    text = [""] * n
    count = [0] * n
    coords: dict[int, np.ndarray] = {}
    for row, grp in joined.groupby("_row"):
        vc = grp[category_col].astype(str).value_counts()
        text[int(row)] = ", ".join(f"{k} x{v}" for k, v in vc.head(top).items())
        count[int(row)] = int(len(grp))
        coords[int(row)] = np.column_stack([grp.geometry.x, grp.geometry.y])
    return text, count, coords


def export_tasks(
    parcels: Any,
    out: str | os.PathLike[str],
    opts: TaskOptions | None = None,
    *,
    image: str | os.PathLike[str] | None = None,
    pois: Any = None,
    source: str = "parcels",
    **overrides: Any,
) -> dict[str, Any]:
    """Write Label Studio tasks, patches, config and CSV for pre-labelled parcels.

    Args:
        parcels: GeoDataFrame with the predicted class column (``pred_col``) and
            optionally ``prob_<class>`` or a score column.
        out: the export folder (written atomically; replaced when it exists).
        opts: :class:`TaskOptions`.
        image: an image raster the patches are cut from (default: plain patches).
        pois: POI points with ``poi_category_col`` for the POI summary (optional).
        source: name of the parcels file, for error messages.
        **overrides: option fields.

    Returns:
        A summary: tasks, per predicted class, batches, cross-checks, project key.
    """
    o = TaskOptions.build(opts, **overrides)
    from landforge.io.atomic import atomic_dir
    from landforge.io.vector import require_column, to_metric
    from landforge.labelling.patches import outline_percent, parcel_window, render_patch

    classes, names = taxonomy_classes(o.taxonomy, o.level, o.classes)
    require_column(parcels, o.pred_col, source, option="pred_col")
    if len(parcels) == 0:
        raise InputError(source, "no parcels to export")
    ids = (
        parcels[o.id_col].astype(str).tolist()
        if o.id_col in parcels.columns
        else [str(i) for i in range(len(parcels))]
    )
    if len(set(ids)) != len(ids):
        raise InputError(source, f"parcel ids in {o.id_col!r} are not unique")
    preds = _preds(parcels[o.pred_col], classes, o.taxonomy, o.level, source)
    scores = _scores(parcels, o.score_col, source)
    if pois is not None and o.poi_category_col not in pois.columns:
        raise OptionError("poi_category_col", f"the POIs have no column {o.poi_category_col!r}")

    with contextlib.ExitStack() as stack:
        raster = None
        if image is not None:
            from landforge.io.raster import open_raster

            raster = stack.enter_context(open_raster(image))
        metric = parcels.to_crs(raster.crs) if raster is not None else to_metric(parcels)
        text, n_pois, coords = _poi_summary(metric, pois, o.poi_category_col, o.poi_top)
        rank = {c: i for i, c in enumerate(classes)}
        order = pd.DataFrame(
            {
                "row": np.arange(len(ids)),
                "task": ids,
                "pred": [p if p is not None else "" for p in preds],
                "rank": [rank.get(p, len(classes)) if p else len(classes) for p in preds],
                "score": scores if scores is not None else np.full(len(ids), np.nan),
            }
        ).sort_values(["rank", "score", "task"], ascending=[True, False, True], kind="stable")
        if o.annotators:
            order = assign_batches(order, list(o.annotators), o, seed=o.seed)
        key = hashlib.sha256(
            json.dumps([o.taxonomy, o.level, classes, sorted(ids)]).encode()
        ).hexdigest()[:16]
        with atomic_dir(out) as tmp:
            (tmp / "images").mkdir()
            tasks, rows = [], []
            used: set[str] = set()
            records: list[Any] = list(order.itertuples(index=False))
            for pos, r in enumerate(records):
                geom = metric.geometry.iloc[r.row]
                stem = _SAFE.sub("_", r.task) or "parcel"
                while stem in used:
                    stem += "_"
                used.add(stem)
                rel = f"images/{stem}.png"
                patch = parcel_window(geom, o.margin, o.patch_px)
                w, h = render_patch(geom, patch, tmp / rel, raster, coords.get(r.row))
                score = None if np.isnan(r.score) else round(float(r.score), 4)
                data = {
                    "image": o.image_url + rel,
                    "image_path": rel,
                    "parcel_id": r.task,
                    "pred": r.pred,
                    "score": score,
                    "poi_summary": text[r.row],
                    "n_pois": n_pois[r.row],
                    "order": pos,
                    PROJECT_KEY: key,
                }
                if o.annotators:
                    data.update(batch=r.batch, annotator=r.annotator, checker=r.checker)
                task: dict[str, Any] = {"data": data}
                if r.pred:
                    result: list[dict[str, Any]] = [
                        {
                            "from_name": "class",
                            "to_name": "image",
                            "type": "choices",
                            "value": {"choices": [r.pred]},
                        }
                    ]
                    if o.outline:
                        result.append(
                            {
                                "from_name": "outline",
                                "to_name": "image",
                                "type": "polygonlabels",
                                "original_width": w,
                                "original_height": h,
                                "image_rotation": 0,
                                "value": {
                                    "points": outline_percent(geom, patch),
                                    "polygonlabels": ["parcel"],
                                },
                            }
                        )
                    pred: dict[str, Any] = {"model_version": o.model_version, "result": result}
                    if score is not None:
                        pred["score"] = score
                    task["predictions"] = [pred]
                tasks.append(task)
                rows.append({**{k: v for k, v in data.items() if k != PROJECT_KEY}, "label": ""})
            (tmp / "tasks.json").write_text(json.dumps(tasks, indent=1))
            pd.DataFrame(rows).to_csv(tmp / "tasks.csv", index=False)
            (tmp / "config.xml").write_text(label_config(classes, names, o.outline))
    per_class = order["pred"].replace("", "(none)").value_counts().to_dict()
    summary: dict[str, Any] = {
        "tasks": len(ids),
        "per_class": {str(k): int(v) for k, v in per_class.items()},
        "project_key": key,
        "with_score": scores is not None,
    }
    if o.annotators:
        summary["batches"] = int(order["batch"].nunique())
        summary["cross_checks"] = int((order["checker"] != "").sum())
    return summary


def load_tasks(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read an export's ``tasks.json`` (or the folder holding it); InputError if unusable."""
    p = Path(path)
    if p.is_dir():
        p = p / "tasks.json"
    if not p.is_file():
        raise InputError(p, "task list does not exist (write it with 'landforge label export')")
    try:
        tasks = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(p, f"not a JSON task list: {exc}") from None
    if not isinstance(tasks, list) or not all(
        isinstance(t, dict) and isinstance(t.get("data"), dict) and "parcel_id" in t["data"]
        for t in tasks
    ):
        raise InputError(p, "not a landforge task list (a list of tasks with data.parcel_id)")
    return tasks
