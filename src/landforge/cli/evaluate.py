"""``landforge evaluate`` and ``landforge report``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from landforge.errors import InputError

__all__ = ["register"]


def _parse_classes(text: str | None) -> dict[int, str] | list[str] | None:
    """``"1=residential,2=commercial"`` -> mapping; ``"a,b,c"`` -> names of 0, 1, 2."""
    if not text:
        return None
    items = [s.strip() for s in text.split(",") if s.strip()]
    if all("=" in s for s in items):
        out = {}
        for s in items:
            value, name = s.split("=", 1)
            try:
                out[int(value)] = name.strip()
            except ValueError:
                raise InputError("--classes", f"{value!r} is not an integer class value") from None
        return out
    if any("=" in s for s in items):
        raise InputError("--classes", "use either 'v=name,...' for every class or 'a,b,c'")
    return items


def _parse_ignore(values: list[str] | None, table: bool) -> list[Any]:
    out: list[Any] = []
    for v in values or []:
        for part in str(v).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(int(part))
            except ValueError:
                if not table:
                    raise InputError("--ignore", f"{part!r} is not an integer value") from None
                out.append(part)
    return out


def _pct(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}%"


def _print_metrics(metrics: dict[str, Any], out: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = Table(title="Accuracy", show_header=True, header_style="bold")
    head.add_column("metric")
    head.add_column("model", justify="right")
    head.add_column(f"majority ({metrics['baseline'].get('class')})", justify="right")
    base = metrics["baseline"]
    for key, label in (
        ("overall_accuracy", "OA"),
        ("kappa", "kappa"),
        ("miou", "mIoU"),
        ("fwiou", "FWIoU"),
        ("macro_f1", "macro F1"),
    ):
        fmt = (
            (lambda v: "–" if v is None or math.isnan(v) else f"{v:.4f}")
            if key == "kappa"
            else _pct
        )
        head.add_row(label, fmt(metrics.get(key)), fmt(base.get(key)))
    console.print(head)
    per = Table(title="Per class", show_header=True, header_style="bold")
    for col in ("class", "support", "precision", "recall", "F1", "IoU"):
        per.add_column(col, justify="left" if col == "class" else "right")
    for name, pc in metrics["per_class"].items():
        per.add_row(
            str(name),
            f"{pc['support']:,}",
            _pct(pc["precision"]),
            _pct(pc["recall"]),
            _pct(pc["f1"]),
            _pct(pc["iou"]),
        )
    console.print(per)
    note = f"{metrics['n']:,} evaluated"
    if metrics.get("n_unpredicted"):
        note += f", {metrics['n_unpredicted']:,} without prediction left out"
    if out is not None:
        note += f"; metrics written to {out}"
    console.print(note)


def evaluate_cmd(
    pred: Path = typer.Option(..., "--pred", help="Predicted class raster or table."),
    truth: Path = typer.Option(..., "--truth", help="Truth class raster or table."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Metrics JSON to write."),
    taxonomy: str | None = typer.Option(
        None, "--taxonomy", help="Class system (e.g. mslu, rci) naming the classes."
    ),
    classes: str | None = typer.Option(
        None, "--classes", help="Class names: '1=res,2=com' or 'a,b,c' (values 0, 1, 2)."
    ),
    ignore: list[str] | None = typer.Option(
        None, "--ignore", help="Value(s) to leave out in both maps (repeat or comma-separate)."
    ),
    pred_col: str | None = typer.Option(None, "--pred-col", help="Prediction column (tables)."),
    truth_col: str | None = typer.Option(None, "--truth-col", help="Truth column (tables)."),
    key: str | None = typer.Option(None, "--key", help="Column joining the two tables."),
    block: int = typer.Option(1024, "--block", help="Block size of the windowed raster read."),
    plots: bool = typer.Option(
        False, "--plots", help="Also write <out>.confusion.png and <out>.distribution.png."
    ),
) -> None:
    """Accuracy of a prediction: OA, kappa, mIoU, FWIoU, per-class F1/IoU, majority baseline."""
    from landforge.evaluation.evaluate import evaluate_rasters, evaluate_tables, is_table_path

    if taxonomy and classes:
        raise InputError("--classes", "give either --taxonomy or --classes, not both")
    class_arg: Any = taxonomy or _parse_classes(classes)
    table = bool(pred_col or truth_col)
    if not table and (is_table_path(pred) or is_table_path(truth)):
        raise InputError("--pred-col", "tables need --pred-col and --truth-col")
    if table and not (pred_col and truth_col):
        raise InputError("--truth-col" if pred_col else "--pred-col", "tables need both columns")
    ign = _parse_ignore(ignore, table)
    if table:
        metrics = evaluate_tables(
            pred, truth, pred_col or "", truth_col or "", key=key, classes=class_arg, ignore=ign
        )
    else:
        metrics = evaluate_rasters(pred, truth, classes=class_arg, ignore=ign, block=block)
    if out is not None:
        from landforge.evaluation.evaluate import write_metrics

        write_metrics(metrics, out)
        if plots:
            from landforge.evaluation import plots as P

            stem = out.with_suffix("")
            P.plot_confusion_matrix(metrics, f"{stem}.confusion.png")
            P.plot_class_distribution(metrics, f"{stem}.distribution.png")
    elif plots:
        raise InputError("--plots", "needs --out to know where to write the PNGs")
    _print_metrics(metrics, out)


def report_cmd(
    run_dir: Path = typer.Argument(..., help="Run directory (with or without manifest.json)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="HTML path (RUN/report.html)."),
) -> None:
    """Self-contained HTML report of a run: stages, metrics, confusion matrices, maps."""
    from landforge.evaluation.report import build_report

    path = build_report(run_dir, out)
    typer.echo(f"report written to {path}")


def _values(text: str | None, option: str) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(option, f"expected integer values like 1 or 1,255, got {text!r}") from None


def evaluate_roads_cmd(
    pred: Path = typer.Option(..., "--pred", help="Predicted road raster (mask or class map)."),
    lines: Path | None = typer.Option(
        None, "--lines", help="Reference road centre lines (any vector format, any CRS)."
    ),
    truth_mask: Path | None = typer.Option(
        None, "--truth-mask", help="Reference road mask on the same grid (adds pixel IoU)."
    ),
    road_values: str | None = typer.Option(
        None, "--road-values", help="Road values in --pred, e.g. 1 or 2,3 (default: > 0)."
    ),
    truth_values: str | None = typer.Option(
        None, "--truth-values", help="Road values in --truth-mask (default: > 0)."
    ),
    tolerance_m: float = typer.Option(2.0, "--tolerance-m", help="Buffer tolerance (m)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the metrics JSON here."),
) -> None:
    """Road completeness / correctness / quality on centre lines (buffer tolerance)."""
    from landforge.evaluation.roads import evaluate_roads

    m = evaluate_roads(
        pred,
        lines=lines,
        truth_mask=truth_mask,
        road_values=_values(road_values, "--road-values"),
        truth_values=_values(truth_values, "--truth-values"),
        tolerance_m=tolerance_m,
        out=out,
    )
    parts = [f"{k} {_pct(m.get(k))}" for k in ("completeness", "correctness", "quality")]
    if "pixel_iou" in m:
        parts.append(f"pixel IoU {_pct(m['pixel_iou'])}")
    typer.echo(
        ", ".join(parts)
        + f" (reference {m['truth_length_m']:.0f} m, extracted {m['pred_length_m']:.0f} m,"
        + f" tolerance {tolerance_m:g} m)"
    )


def register(app: typer.Typer) -> None:
    """Add ``evaluate``, ``evaluate-roads`` and ``report`` to the landforge CLI."""
    app.command("evaluate")(evaluate_cmd)
    app.command("evaluate-roads")(evaluate_roads_cmd)
    app.command("report")(report_cmd)
