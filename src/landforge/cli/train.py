"""``landforge chips`` (cut a chip store), ``landforge train`` (train a model),
``landforge train-sequence`` (region sequences) and ``landforge cross-domain``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from landforge.errors import InputError

__all__ = ["register", "parse_labels", "parse_split"]


def parse_labels(text: str) -> dict[str, str]:
    """``footprint=mask.tif,use=use.tif`` -> ``{"footprint": "mask.tif", "use": "use.tif"}``."""
    labels: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, path = part.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError("--labels", f"expected NAME=PATH, got {part!r}")
        if name.strip() in labels:
            raise InputError("--labels", f"label {name.strip()!r} given twice")
        labels[name.strip()] = path.strip()
    if not labels:
        raise InputError("--labels", "give at least one NAME=PATH")
    return labels


def parse_split(text: str | None, block_size: int) -> dict[str, Any] | None:
    """``spatial`` (60/20/20), ``none``, or ``train=0.7,val=0.3`` -> split mapping."""
    if text is None or text.strip().lower() == "none":
        return None
    if text.strip().lower() == "spatial":
        return {"train": 0.6, "val": 0.2, "test": 0.2, "block_size": block_size}
    split: dict[str, Any] = {"block_size": block_size}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        try:
            split[name.strip()] = float(value)
        except ValueError:
            raise InputError(
                "--split", f"expected 'spatial' or NAME=RATIO,..., got {part!r}"
            ) from None
        if not sep:
            raise InputError("--split", f"expected 'spatial' or NAME=RATIO,..., got {part!r}")
    return split


def _parse_bands(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise InputError("--bands", f"expected band numbers like 1,2,3, got {text!r}") from None


def register(app: typer.Typer) -> None:
    """Add ``chips``, ``train``, ``train-sequence`` and ``cross-domain`` to the CLI."""

    @app.command("chips")
    def chips_cmd(
        image: Path = typer.Option(..., "--image", help="Image raster (bands become inputs)."),
        labels: str = typer.Option(
            ..., "--labels", help="Label rasters as NAME=PATH,... e.g. footprint=fp.tif,use=u.tif"
        ),
        out: Path = typer.Option(..., "--out", help="Chip store directory to write."),
        extra: list[Path] = typer.Option(
            [], "--extra", help="Extra raster on the image grid (repeatable), e.g. POI maps."
        ),
        bands: str | None = typer.Option(
            None, "--bands", help="Image bands to use, 1-based, e.g. 1,2,3 (default: all)."
        ),
        size: int = typer.Option(256, "--size", help="Chip side in pixels."),
        stride: int | None = typer.Option(
            None, "--stride", help="Step between chips (default: --size)."
        ),
        split: str | None = typer.Option(
            None,
            "--split",
            help="'spatial' (train/val/test 0.6/0.2/0.2 by blocks) or "
            "NAME=RATIO,... ; default: every chip in train.",
        ),
        block_size: int = typer.Option(4, "--block-size", help="Split block side in chips."),
        sampler: str = typer.Option(
            "grid",
            "--sampler",
            help="Window sampler: grid (every --stride pixels), random (seeded uniform "
            "windows) or poisson (Poisson-disk centres inside --parcels).",
        ),
        n_chips: int | None = typer.Option(
            None, "--n-chips", help="Number of random windows (default: as many as the grid)."
        ),
        parcels: Path | None = typer.Option(
            None, "--parcels", help="Parcel polygons for --sampler poisson (any vector format)."
        ),
        radius_m: float | None = typer.Option(
            None,
            "--radius-m",
            help="Smallest distance between poisson centres in metres (default: chip side).",
        ),
        min_valid: float = typer.Option(
            0.5, "--min-valid", help="Smallest fraction of valid pixels a chip needs."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of the split and the samplers."),
    ) -> None:
        """Cut an image (+ extra bands) and label rasters into a chip store."""
        from landforge.datasets.chips import build_chips, read_meta

        store = build_chips(
            image,
            parse_labels(labels),
            out,
            extras=extra,
            bands=_parse_bands(bands),
            size=size,
            stride=stride,
            sampler=sampler,
            split=parse_split(split, block_size),
            min_valid=min_valid,
            seed=seed,
            n_chips=n_chips,
            parcels=parcels,
            radius_m=radius_m,
        )
        meta = read_meta(store)
        splits = ", ".join(f"{k} {v}" for k, v in sorted(meta["splits"].items()))
        typer.echo(f"{store}: {meta['n_chips']} chips ({splits}), bands {', '.join(meta['bands'])}")

    @app.command("train")
    def train_cmd(
        config: Path = typer.Argument(..., help="Training config (YAML), see examples/."),
        out: Path | None = typer.Option(None, "--out", help="Output directory (overrides out)."),
        resume: Path | None = typer.Option(
            None, "--resume", help="Resume an earlier run from its output directory."
        ),
        max_minutes: float | None = typer.Option(
            None, "--max-minutes", help="Time budget in minutes (overrides max_minutes)."
        ),
        init: Path | None = typer.Option(
            None,
            "--init",
            help="Start from a landforge checkpoint (NAME.safetensors + NAME.json): "
            "transfer learning (overrides init).",
        ),
    ) -> None:
        """Train a model on a chip store; writes OUT/model.safetensors + OUT/model.json."""
        from landforge.training.config import load_train_config
        from landforge.training.train import train

        cfg = load_train_config(config, out=out, resume=resume, max_minutes=max_minutes, init=init)
        weights = train(cfg)
        from landforge.models.checkpoint import checkpoint_paths

        card = checkpoint_paths(weights)[1]
        typer.echo(f"{weights} (+ {card.name})")

    @app.command("train-sequence")
    def train_sequence_cmd(
        config: Path = typer.Argument(..., help="Sequence config (YAML), see examples/."),
    ) -> None:
        """Train on region A, fine-tune on B, ...; score every region after each step.

        Writes OUT/sequence.json and OUT/sequence.md (step x region OA, mIoU, kappa).
        """
        from landforge.training.sequence import load_sequence_config, run_sequence

        path = run_sequence(load_sequence_config(config))
        typer.echo(f"{path} (+ {path.with_suffix('.md').name})")

    @app.command("cross-domain")
    def cross_domain_cmd(
        config: Path = typer.Argument(..., help="Cross-domain config (YAML), see examples/."),
    ) -> None:
        """Train a model per region and test it on every region (+ CBST adaptation).

        Writes OUT/cross_domain.json and OUT/cross_domain.md.
        """
        from landforge.training.crossdomain import load_cross_domain_config, run_cross_domain

        path = run_cross_domain(load_cross_domain_config(config))
        typer.echo(f"{path} (+ {path.with_suffix('.md').name})")
