"""CLI for inference: ``landforge predict``, ``landforge vectorize``, ``landforge builtup``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from landforge.errors import InputError

__all__ = ["register"]


def _parse_bands(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise InputError(
            "--bands", f"expected comma-separated band numbers, got {text!r}"
        ) from None


def predict(
    model: Path = typer.Option(
        ..., "--model", help="Checkpoint (NAME.safetensors, NAME.json or stem)."
    ),
    image: Path = typer.Option(..., "--image", help="Image raster (its bands come first)."),
    out: Path = typer.Option(..., "--out", help="Class map COG to write."),
    extra: list[Path] = typer.Option(
        [],
        "--extra",
        help="Extra raster on the image grid (e.g. POI maps); repeatable, in card order.",
    ),
    window: int = typer.Option(1024, "--window", help="Window size in pixels."),
    overlap: int = typer.Option(
        128, "--overlap", help="Context margin dropped on each side of a window (pixels)."
    ),
    tta: str = typer.Option("none", "--tta", help="Test-time augmentation: none, flips or d4."),
    batch: int = typer.Option(8, "--batch", help="Windows per forward pass."),
    mask: Path | None = typer.Option(
        None,
        "--mask",
        help="Built-up mask on the image grid; windows without mask pixels are skipped.",
    ),
    probs: Path | None = typer.Option(None, "--probs", help="Write class probabilities here."),
    probs_uint8: bool = typer.Option(
        False,
        "--probs-uint8",
        help="Store probabilities as uint8 (scale 1/254) instead of float32.",
    ),
    footprint_prob: Path | None = typer.Option(
        None, "--footprint-prob", help="Write the footprint probability here."
    ),
    device: str = typer.Option("cpu", "--device", help="torch device: cpu, cuda, cuda:1, ..."),
    threshold: float = typer.Option(0.5, "--threshold", help="Footprint probability threshold."),
    bands: str | None = typer.Option(
        None,
        "--bands",
        help="1-based image bands, e.g. 1,2,3 (default: matched to the model card by name).",
    ),
    blend: bool = typer.Option(
        False,
        "--blend",
        help="Average overlapping windows (smooth weights) instead of centre crops.",
    ),
    block_windows: int = typer.Option(
        4, "--block-windows", help="Windows per block side (unit of work and of --resume)."
    ),
    workers: int = typer.Option(
        0, "--workers", help="Run blocks on a local Dask cluster of N single-threaded processes."
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Run blocks on a running Dask scheduler, e.g. tcp://host:8786."
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Reuse finished blocks of an interrupted run (OUT.parts/); without it they are "
        "discarded.",
    ),
) -> None:
    """Predict a land-use / building-use map over a raster of any size."""
    from landforge.inference.predictor import predict_raster

    if workers and scheduler:
        raise InputError("--workers", "give either --workers N (local cluster) or --scheduler")
    if workers < 0:
        raise InputError("--workers", f"must be >= 0, got {workers}")

    summary = predict_raster(
        model,
        image,
        out,
        extras=extra,
        window=window,
        overlap=overlap,
        tta=None if tta == "none" else tta,
        batch=batch,
        mask=mask,
        probs_out=probs,
        footprint_out=footprint_prob,
        device=device,
        threshold=threshold,
        probs_dtype="uint8" if probs_uint8 else "float32",
        bands=_parse_bands(bands),
        blend=blend,
        block_windows=block_windows,
        scheduler=scheduler if scheduler else ("local" if workers else None),
        workers=max(workers, 1),
        resume=resume,
    )
    skipped = summary["windows_skipped"]
    typer.echo(
        f"wrote {out} ({summary['width']}x{summary['height']}, {summary['windows']} windows"
        + (f", {skipped} skipped by mask" if skipped else "")
        + (f", {summary['blocks_reused']} blocks reused" if summary["blocks_reused"] else "")
        + f", {summary['seconds']:.1f} s)"
    )
    typer.echo(json.dumps(summary["class_pixels"]))


def builtup(
    inputs: list[Path] = typer.Option(
        ...,
        "--inputs",
        help="Settlement rasters (GHSL, WSF, WorldCover, ...), any CRS: --inputs A.tif B.tif.",
    ),
    more: list[Path] = typer.Argument(
        None, help="Further inputs (after --inputs A.tif).", show_default=False
    ),
    like: Path = typer.Option(..., "--like", help="Raster whose grid the mask is computed on."),
    out: Path = typer.Option(..., "--out", help="Mask COG to write (uint8 0/1, nodata 255)."),
    values: str | None = typer.Option(
        None,
        "--values",
        help='Built-up values per input, ";"-separated: a list (1,2) or a threshold (>0); '
        "one item applies to all inputs. Default >0.",
    ),
    band: int = typer.Option(1, "--band", help="Band of every input to read."),
    block: int = typer.Option(2048, "--block", help="Processing block size in pixels."),
) -> None:
    """Built-up mask: union of settlement products resampled (max) onto an image grid."""
    from landforge.inference.builtup import builtup_mask

    paths = [*inputs, *(more or [])]
    summary = builtup_mask(paths, like, out, values=values, band=band, block=block)
    total = summary["width"] * summary["height"]
    typer.echo(
        f"wrote {out} ({summary['width']}x{summary['height']}, "
        f"{summary['builtup_pixels'] / max(total, 1):.1%} built-up, "
        f"{summary['nodata_pixels'] / max(total, 1):.1%} without input data)"
    )


def register(app: typer.Typer) -> None:
    """Add the inference commands to the landforge CLI."""
    app.command("predict")(predict)
    app.command("builtup")(builtup)
