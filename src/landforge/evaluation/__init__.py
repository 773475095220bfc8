"""Evaluation: metrics from one confusion matrix, raster/table evaluation, plots, report.

- :mod:`~landforge.evaluation.metrics`: :class:`ConfusionMatrix` (block-wise, mergeable,
  JSON) and every metric derived from it; semantic-change metrics (:class:`ChangeConfusion`).
- :mod:`~landforge.evaluation.evaluate`: :func:`evaluate_prediction` (``landforge
  evaluate``), :func:`evaluate_rasters`, :func:`evaluate_tables`.
- :mod:`~landforge.evaluation.roads`: :func:`evaluate_roads` (``landforge evaluate-roads``).
- :mod:`~landforge.evaluation.plots`: confusion matrix, class-map quicklook, distributions.
- :mod:`~landforge.evaluation.report`: :func:`build_report` (one HTML file per run).
- :mod:`~landforge.evaluation.options`: the options models of the stages.

Attributes are imported lazily, so that the CLI reads the options models without
importing rasterio or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ChangeConfusion",
    "ConfusionMatrix",
    "build_report",
    "evaluate_change_rasters",
    "evaluate_prediction",
    "evaluate_rasters",
    "evaluate_roads",
    "evaluate_tables",
    "summary_metrics",
    "write_metrics",
]

_WHERE = {
    "ChangeConfusion": "change",
    "ConfusionMatrix": "confusion",
    "build_report": "report",
    "evaluate_change_rasters": "change_rasters",
    "evaluate_prediction": "evaluate",
    "evaluate_rasters": "evaluate",
    "evaluate_roads": "roads",
    "evaluate_tables": "evaluate",
    "summary_metrics": "scores",
    "write_metrics": "evaluate",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"landforge.evaluation.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'landforge.evaluation' has no attribute {name!r}")
