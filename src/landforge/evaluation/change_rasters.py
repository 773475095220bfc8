"""Semantic-change evaluation of bi-temporal class rasters, block by block.

:func:`evaluate_change_rasters` reads two predicted and two true class maps (and an
optional predicted change map) window by window into one
:class:`~landforge.evaluation.change.ChangeConfusion` and returns its SECOND and
transition metrics.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from landforge.errors import InputError
from landforge.evaluation.change import ChangeConfusion
from landforge.evaluation.confusion import ConfusionMatrix
from landforge.evaluation.evaluate import not_nodata, resolve_classes, write_metrics
from landforge.evaluation.options import EvaluateOptions
from landforge.evaluation.scores import UnknownLabelError
from landforge.io.raster import check_same_grid, iter_blocks, open_raster, read_grid
from landforge.progress import track

__all__ = ["evaluate_change_rasters"]


def evaluate_change_rasters(
    pred1: str | os.PathLike[str],
    pred2: str | os.PathLike[str],
    truth1: str | os.PathLike[str],
    truth2: str | os.PathLike[str],
    pred_change: str | os.PathLike[str] | None = None,
    opts: EvaluateOptions | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Semantic-change metrics of bi-temporal class maps (SECOND protocol and transitions).

    All rasters must share the grid of ``truth1``. Without ``classes`` the class list is
    the union of the values of the two truth maps (read once, block by block). A pixel
    is left out where any map is nodata or holds a value of ``ignore``.

    Args:
        pred1: predicted class map at date 1.
        pred2: predicted class map at date 2.
        truth1: true class map at date 1.
        truth2: true class map at date 2.
        pred_change: optional predicted binary change map (non-zero = change); without
            it, change is predicted where ``pred1 != pred2``.
        opts: :class:`~landforge.evaluation.options.EvaluateOptions` (``taxonomy`` or
            ``classes``, ``ignore``, ``block``; band 1 of each map is read);
            ``overrides`` replace its fields.
        out: optional metrics JSON path.
        quiet: no progress bar.
        **overrides: fields of ``opts`` to replace.

    Returns:
        :meth:`ChangeConfusion.summary` plus the input paths.
    """
    o = EvaluateOptions.build(opts, **overrides)
    paths = [Path(p) for p in (truth1, truth2, pred1, pred2)]
    if pred_change is not None:
        paths.append(Path(pred_change))
    for p in paths[1:]:
        read_grid(p, require_crs=False)  # missing files are named before grids are compared
    grid = read_grid(paths[0], require_crs=False)
    for p in paths[1:]:
        check_same_grid(grid, p)
    spec = resolve_classes(o.class_arg(), o.ignore_values())
    windows = list(iter_blocks(grid, o.block))
    with contextlib.ExitStack() as stack:
        srcs = [stack.enter_context(open_raster(p)) for p in paths]
        if spec.labels is None:
            found = ConfusionMatrix(ignore=spec.ignore)
            for w in windows:
                for i, j in ((0, 2), (1, 3)):  # truth and prediction of each date
                    a, b = srcs[i].read(1, window=w), srcs[j].read(1, window=w)
                    found.update(a, b, not_nodata(a, srcs[i].nodata), not_nodata(b, srcs[j].nodata))
            spec.labels = [int(v) for v in found.labels]
        acc = ChangeConfusion(spec.labels, spec.names, spec.ignore)
        for w in track(windows, "evaluating change", quiet=quiet):
            arrays = [src.read(1, window=w) for src in srcs]
            valid = np.ones(arrays[0].shape, bool)
            for a, src in zip(arrays, srcs, strict=True):
                valid &= not_nodata(a, src.nodata)
            change = arrays[4] != 0 if pred_change is not None else None
            try:
                acc.update(*arrays[:4], pred_change=change, valid=valid)
            except UnknownLabelError as exc:
                where = paths[0] if exc.where == "truth" else paths[2]
                raise InputError(where, str(exc)) from None
    metrics = acc.summary()
    metrics.update(
        predictions=[str(p) for p in paths[2:4]],
        truths=[str(p) for p in paths[:2]],
        pred_change=str(pred_change) if pred_change is not None else None,
    )
    if out is not None:
        write_metrics(metrics, out)
    return metrics
