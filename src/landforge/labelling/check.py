"""Cross-check agreement, acceptance and the revision list (``landforge label check``).

MSLU-100K's rule (the paper's numbers are the defaults): a share of every annotator's
items (25 %) is labelled again by a second annotator; a batch whose cross-checked
items agree less than 90 % of the time goes back for revision; the acceptance rate
(share of annotated items in accepted batches) is reported against a 95 % target.

Ours, where the paper is silent: a batch with no cross-checked item yet, or with
items its annotator has not labelled, is *pending* (neither accepted nor sent back);
a cross-checked item on which the two annotators disagree is sent back even when its
batch passes, so no accepted label is one that a second annotator disputed.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from landforge.labelling.options import CheckOptions

__all__ = ["CheckResult", "check_annotations"]


class CheckResult:
    """Outcome of a check: batch table, accepted labels, revision task ids, summary."""

    def __init__(
        self,
        batches: pd.DataFrame,
        accepted: pd.DataFrame,
        revision: list[str],
        summary: dict[str, Any],
    ) -> None:
        self.batches = batches
        self.accepted = accepted
        self.revision = revision
        self.summary = summary


def _primary_and_check(table: pd.DataFrame, tasks: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per task: batch, its annotator's label and the checker's label."""
    by_task: dict[str, dict[str, str]] = {}
    for r in table.itertuples(index=False):
        by_task.setdefault(str(r.parcel_id), {})[str(r.annotator)] = str(r.label)
    rows = []
    for t in tasks:
        d = t["data"]
        pid = str(d["parcel_id"])
        labels = by_task.get(pid, {})
        annotator = d.get("annotator") or (next(iter(labels)) if labels else "")
        checker = d.get("checker") or ""
        if not d.get("checker") and not d.get("annotator") and len(labels) > 1:
            checker = list(labels)[1]
        rows.append(
            {
                "parcel_id": pid,
                "batch": str(d.get("batch") or "b0000"),
                "annotator": annotator,
                "label": labels.get(annotator),
                "checker": checker,
                "check_label": labels.get(checker) if checker else None,
            }
        )
    return pd.DataFrame(rows)


def check_annotations(
    table: pd.DataFrame,
    tasks: list[dict[str, Any]],
    opts: CheckOptions | None = None,
    **overrides: Any,
) -> CheckResult:
    """Agreement per batch, accepted labels and the tasks that go back for revision.

    Args:
        table: the annotation table of ``label import`` (parcel_id, annotator, label).
        tasks: the task list of ``label export`` (with batch/annotator/checker data
            when annotators were assigned; otherwise every task is one batch and the
            first two annotators of a task are annotator and checker).
        opts: :class:`CheckOptions` (``min_agreement``, ``target``).
        **overrides: option fields.
    """
    o = CheckOptions.build(opts, **overrides)
    items = _primary_and_check(table, tasks)
    items["checked"] = items["label"].notna() & items["check_label"].notna()
    items["agree"] = items["checked"] & (items["label"] == items["check_label"])
    rows = []
    for batch, grp in items.groupby("batch", sort=True):
        n_checked = int(grp["checked"].sum())
        agreement = float(grp["agree"].sum() / n_checked) if n_checked else math.nan
        complete = bool(grp["label"].notna().all())
        if not complete or not n_checked:
            status = "pending"
        elif agreement >= o.min_agreement:
            status = "accepted"
        else:
            status = "revision"
        rows.append(
            {
                "batch": batch,
                "annotator": ", ".join(sorted(set(grp["annotator"]) - {""})),
                "items": len(grp),
                "annotated": int(grp["label"].notna().sum()),
                "checked": n_checked,
                "agreement": agreement,
                "status": status,
            }
        )
    batches = pd.DataFrame(
        rows, columns=["batch", "annotator", "items", "annotated", "checked", "agreement", "status"]
    )
    by_batch = dict(zip(batches["batch"], batches["status"], strict=True))
    items["status"] = items["batch"].map(by_batch)
    disputed = items["checked"] & ~items["agree"]
    ok = (items["status"] == "accepted") & ~disputed
    back = (items["status"] == "revision") | ((items["status"] == "accepted") & disputed)
    accepted = items.loc[ok, ["parcel_id", "label", "annotator", "batch"]].reset_index(drop=True)
    annotated = int(items["label"].notna().sum())
    rate = float(ok.sum() / annotated) if annotated else 0.0
    summary = {
        "tasks": len(items),
        "annotated": annotated,
        "batches": len(batches),
        "batches_accepted": int((batches["status"] == "accepted").sum()),
        "batches_revision": int((batches["status"] == "revision").sum()),
        "batches_pending": int((batches["status"] == "pending").sum()),
        "cross_checked": int(items["checked"].sum()),
        "agreement": float(items["agree"].sum() / max(int(items["checked"].sum()), 1)),
        "accepted": int(ok.sum()),
        "revision": int(back.sum()),
        "acceptance_rate": rate,
        "target": o.target,
        "target_met": rate >= o.target,
        "min_agreement": o.min_agreement,
    }
    return CheckResult(batches, accepted, items.loc[back, "parcel_id"].tolist(), summary)
