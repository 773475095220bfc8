"""Simulated annotators and the whole human-machine loop (``landforge label simulate``).

A :class:`SimAnnotator` answers with the true class, except with probability
``error_rate``; a mistake goes to the class's confusable class (``confusion``, e.g.
Commercial <-> Public service, Residential -> Commercial) with probability
``confusion_share``, else to any other class. Error rates of the annotators spread
evenly around the mean (``error_spread``), so some are better than others.

:func:`run_loop` runs MSLU-100K's loop on parcels whose true class is known (the
"truth" the simulated annotators see): a first model is trained on a small seed set
(``seed_share``); each round the current model pre-labels the round's tasks (new ones
plus last round's revision list), tasks are grouped by predicted class and dealt in
batches to the annotators with a cross-check share, the simulated annotators label
them, :func:`~landforge.labelling.check.check_annotations` accepts batches or sends
them back, and the model is retrained on the seed set plus every accepted label. The
report gives, per round, the acceptance rate, the accuracy of the accepted labels
against the truth, and the held-out accuracy of the retrained model beside the
majority class (the test parcels are never labelled; spatial 300 m blocks, ours).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from landforge.errors import InputError, OptionError
from landforge.labelling.check import check_annotations
from landforge.labelling.options import SimulateOptions
from landforge.labelling.tasks import assign_batches

__all__ = ["SimAnnotator", "make_annotators", "run_loop", "select_features"]

_BLOCK_M = 300.0


class SimAnnotator:
    """One simulated annotator.

    Args:
        name: the annotator's name.
        error_rate: probability of a wrong label.
        classes: the classes to choose from.
        confusion: ``{class: confusable class}`` where mistakes go first.
        confusion_share: share of mistakes that go to the confusable class.
        seed: seed of this annotator's random draws.
    """

    def __init__(
        self,
        name: str,
        error_rate: float,
        classes: list[str],
        confusion: dict[str, str],
        confusion_share: float = 0.8,
        seed: int = 0,
    ) -> None:
        self.name = name
        self.error_rate = error_rate
        self.classes = list(classes)
        self.confusion = dict(confusion)
        self.confusion_share = confusion_share
        self.rng = np.random.default_rng(seed)

    def label(self, truth: str) -> str:
        """The annotator's label for a parcel whose true class is ``truth``."""
        if self.rng.random() >= self.error_rate:
            return truth
        target = self.confusion.get(truth)
        if target in self.classes and target != truth and self.rng.random() < self.confusion_share:
            return str(target)
        others = [c for c in self.classes if c != truth]
        return str(self.rng.choice(others)) if others else truth


def make_annotators(classes: list[str], opts: SimulateOptions) -> list[SimAnnotator]:
    """The simulated annotators of ``opts``: error rates spread around the mean."""
    n = opts.annotators
    spread = np.linspace(-opts.error_spread, opts.error_spread, n) if n > 1 else np.zeros(1)
    rates = np.clip(opts.error_rate * (1 + spread), 0.0, 1.0)
    return [
        SimAnnotator(
            f"annotator{i + 1}",
            float(rates[i]),
            classes,
            dict(opts.confusion),
            opts.confusion_share,
            seed=opts.seed * 1000 + i + 1,
        )
        for i in range(n)
    ]


def select_features(frame: pd.DataFrame, opts: SimulateOptions, source: str) -> list[str]:
    """The model's feature columns: ``features`` or every numeric column but the truth."""
    if opts.features:
        missing = [c for c in opts.features if c not in frame.columns]
        if missing:
            raise OptionError("features", f"{source} has no column {missing[0]!r}")
        return list(opts.features)
    skip = {opts.truth_col, opts.id_col, "pred", "level", "geometry"}
    cols = [
        c
        for c in frame.columns
        if c not in skip
        and not str(c).startswith("prob_")
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    if not cols:
        raise InputError(source, "no numeric feature columns for the model (give --features)")
    return cols


def _blocks(gdf: Any, seed: int, test_share: float) -> np.ndarray:
    """Test mask: whole 300 m blocks of centroids, shuffled, until test_share is reached."""
    rng = np.random.default_rng(seed)
    if getattr(gdf, "geometry", None) is None or gdf.crs is None:
        return rng.random(len(gdf)) < test_share
    from landforge.io.vector import to_metric

    c = to_metric(gdf).geometry.centroid
    keys = pd.Series(
        list(zip((c.x // _BLOCK_M).astype(int), (c.y // _BLOCK_M).astype(int), strict=True))
    )
    codes, uniq = pd.factorize(keys)
    order = rng.permutation(len(uniq))
    counts = np.bincount(codes, minlength=len(uniq))
    test = np.zeros(len(uniq), dtype=bool)
    total = 0
    for b in order:
        if total >= test_share * len(gdf):
            break
        test[b] = True
        total += counts[b]
    return test[codes]


def _model(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    # one thread: the loop refits every round; small forests keep it fast and stable
    return RandomForestClassifier(n_estimators=50, min_samples_leaf=2, random_state=seed, n_jobs=1)


def run_loop(
    frame: Any, opts: SimulateOptions | None = None, *, source: str = "parcels", **overrides: Any
) -> dict[str, Any]:
    """Run the labelling loop with simulated annotators; returns the report.

    Args:
        frame: parcels (GeoDataFrame, for spatial test blocks; a DataFrame works with a
            random split) with the true class ``truth_col`` and numeric features.
        opts: :class:`SimulateOptions`.
        source: name of the parcels file, for error messages.
        **overrides: option fields.

    Returns:
        ``{"rounds": [...], "classes", "annotators", "test", "seed", ...}`` with, per
        round: tasks, batches accepted/revision, agreement, acceptance rate, accepted
        and cumulative accepted-label accuracy, model and majority accuracy.
    """
    o = SimulateOptions.build(opts, **overrides)
    if o.truth_col not in frame.columns:
        raise OptionError("truth_col", f"the parcels have no column {o.truth_col!r}")
    frame = frame[frame[o.truth_col].notna() & (frame[o.truth_col].astype(str) != "")]
    frame = frame.reset_index(drop=True)
    if len(frame) < 10:
        raise InputError(source, f"{len(frame)} parcels with a true class; the loop needs 10")
    truth = frame[o.truth_col].astype(str).to_numpy()
    classes = sorted(set(truth))
    cols = select_features(frame, o, source)
    x = frame[cols].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy(dtype=float)
    ids = (
        frame[o.id_col].astype(str).to_numpy()
        if o.id_col in frame.columns
        else np.array([str(i) for i in range(len(frame))])
    )
    rng = np.random.default_rng(o.seed)
    test = _blocks(frame, o.seed, o.test_share)
    rest = rng.permutation(np.flatnonzero(~test))
    n_seed = max(len(classes), int(round(o.seed_share * len(frame))))
    seed_rows, pool = rest[:n_seed], list(rest[n_seed:])
    annotators = make_annotators(classes, o)
    names = [a.name for a in annotators]
    by_name = {a.name: a for a in annotators}
    majority = pd.Series(truth[seed_rows]).mode().iloc[0]
    baseline = float(np.mean(truth[test] == majority))

    labelled: dict[int, str] = {int(r): str(truth[r]) for r in seed_rows}
    model = _model(o.seed).fit(x[seed_rows], truth[seed_rows])
    model_acc = [float(np.mean(model.predict(x[test]) == truth[test]))]
    revision: list[int] = []
    rounds = []
    per_round = o.per_round or len(pool)
    for rnd in range(1, o.rounds + 1):
        new, pool = pool[:per_round], pool[per_round:]
        rows = np.array(revision + new, dtype=int)
        if len(rows) == 0:
            break
        proba = model.predict_proba(x[rows])
        pred = model.classes_[proba.argmax(axis=1)]
        order = pd.DataFrame(
            {"row": rows, "task": ids[rows], "pred": pred, "score": proba.max(axis=1)}
        )
        rank = {c: i for i, c in enumerate(classes)}
        order["rank"] = order["pred"].map(rank)
        order = order.sort_values(["rank", "score"], ascending=[True, False], kind="stable")
        order = assign_batches(order, names, o, seed=o.seed + rnd)
        tasks, ann = [], []
        records: list[Any] = list(order.itertuples(index=False))
        for r in records:
            tasks.append(
                {
                    "data": {
                        "parcel_id": r.task,
                        "batch": r.batch,
                        "annotator": r.annotator,
                        "checker": r.checker,
                    }
                }
            )
            ann.append((r.task, r.annotator, by_name[r.annotator].label(truth[r.row])))
            if r.checker:
                ann.append((r.task, r.checker, by_name[r.checker].label(truth[r.row])))
        table = pd.DataFrame(ann, columns=["parcel_id", "annotator", "label"])
        first = table.drop_duplicates("parcel_id")  # the assigned annotator's labels
        raw = float(np.mean(first["label"].to_numpy() == truth[order["row"].to_numpy()]))
        res = check_annotations(table, tasks, min_agreement=o.min_agreement, target=o.target)
        row_of = dict(zip(order["task"], order["row"], strict=True))
        acc_rows = np.array([row_of[p] for p in res.accepted["parcel_id"]], dtype=int)
        acc_labels = res.accepted["label"].to_numpy(dtype=str)
        for r, lab in zip(acc_rows, acc_labels, strict=True):
            labelled[int(r)] = str(lab)
        revision = [row_of[p] for p in res.revision]
        train = np.array(sorted(labelled), dtype=int)
        y = np.array([labelled[int(r)] for r in train])
        model = _model(o.seed).fit(x[train], y)
        model_acc.append(float(np.mean(model.predict(x[test]) == truth[test])))
        done = np.array([r for r in labelled if r not in set(seed_rows.tolist())], dtype=int)
        rounds.append(
            {
                "round": rnd,
                "tasks": int(len(rows)),
                "revised_tasks": int(len(rows) - len(new)),
                "prelabel_accuracy": float(np.mean(pred == truth[rows])),
                "batches": res.summary["batches"],
                "batches_accepted": res.summary["batches_accepted"],
                "batches_revision": res.summary["batches_revision"],
                "agreement": res.summary["agreement"],
                "acceptance_rate": res.summary["acceptance_rate"],
                "target_met": res.summary["target_met"],
                "annotated_accuracy": raw,
                "accepted": int(len(acc_rows)),
                "accepted_accuracy": float(np.mean(acc_labels == truth[acc_rows]))
                if len(acc_rows)
                else None,
                "all_accepted_accuracy": float(
                    np.mean([labelled[int(r)] == truth[r] for r in done])
                )
                if len(done)
                else None,
                "labelled_total": len(labelled),
                "model_accuracy": model_acc[-1],
            }
        )
    return {
        "classes": classes,
        "features": len(cols),
        "annotators": {a.name: round(a.error_rate, 4) for a in annotators},
        "parcels": len(frame),
        "test": int(test.sum()),
        "seed_set": int(len(seed_rows)),
        "majority_accuracy": baseline,
        "model_accuracy_round0": model_acc[0],
        "left_for_revision": len(revision),
        "left_unlabelled": len(pool),
        "rounds": rounds,
        "seed": o.seed,
    }
