"""Evaluation: metrics from one confusion matrix, raster/table evaluation, plots, report.

- :mod:`~landforge.evaluation.metrics`: :class:`ConfusionMatrix` (block-wise, mergeable,
  JSON) and every metric derived from it; semantic-change metrics (:class:`ChangeConfusion`).
- :mod:`~landforge.evaluation.evaluate`: :func:`evaluate_rasters`, :func:`evaluate_tables`.
- :mod:`~landforge.evaluation.plots`: confusion matrix, class-map quicklook, distributions.
- :mod:`~landforge.evaluation.report`: :func:`build_report` (one HTML file per run).
"""

from landforge.evaluation.evaluate import (
    evaluate_change_rasters,
    evaluate_rasters,
    evaluate_tables,
    write_metrics,
)
from landforge.evaluation.metrics import ChangeConfusion, ConfusionMatrix, summary_metrics

__all__ = [
    "ChangeConfusion",
    "ConfusionMatrix",
    "build_report",
    "evaluate_change_rasters",
    "evaluate_rasters",
    "evaluate_tables",
    "summary_metrics",
    "write_metrics",
]


def __getattr__(name: str) -> object:  # lazy: the report pulls in matplotlib
    if name == "build_report":
        from landforge.evaluation.report import build_report

        return build_report
    raise AttributeError(f"module 'landforge.evaluation' has no attribute {name!r}")
