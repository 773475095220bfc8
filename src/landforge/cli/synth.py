"""``landforge synth``: generate seeded synthetic data (``landforge synth city``)."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]

synth_app = typer.Typer(
    help="Generate seeded synthetic data for demos, tests and benchmarks.",
    no_args_is_help=True,
)


@synth_app.command("city")
def city(
    out: Path = typer.Option(..., "--out", help="Directory to write the city into."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same files."),
    size_m: float = typer.Option(3000.0, "--size-m", help="Side of the square extent, metres."),
    gsd: float = typer.Option(0.5, "--gsd", help="Pixel size of the image and labels, metres."),
    crs: str = typer.Option("EPSG:32650", "--crs", help="Projected metric CRS of the outputs."),
    mixed_rate: float = typer.Option(0.10, "--mixed-rate", help="Share of mixed-use parcels."),
    change_rate: float = typer.Option(
        0.07, "--change-rate", help="Share of parcels changing by epoch 2."
    ),
    months: int = typer.Option(25, "--months", help="Number of monthly Sentinel scenes."),
    no_t2: bool = typer.Option(False, "--no-t2", help="Skip the second epoch (t2/)."),
    no_s2: bool = typer.Option(False, "--no-s2", help="Skip the Sentinel-2 stack (s2/)."),
    no_s1: bool = typer.Option(False, "--no-s1", help="Skip the Sentinel-1 stack (s1/)."),
    no_population: bool = typer.Option(False, "--no-population", help="Skip population.parquet."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Generate a synthetic city: vectors, VHR image, labels, 2nd epoch, Sentinel stacks."""
    from landforge.synth import make_city

    info = make_city(
        out,
        seed=seed,
        size_m=size_m,
        gsd=gsd,
        crs=crs,
        mixed_rate=mixed_rate,
        change_rate=change_rate,
        months=months,
        t2=not no_t2,
        s2=not no_s2,
        s1=not no_s1,
        population=not no_population,
        quiet=quiet,
    )
    core = info.stats["core"]
    typer.echo(
        f"wrote {len(info.files)} files to {info.out_dir} in {info.seconds:.1f} s: "
        f"{info.counts['parcels']} parcels, {info.counts['buildings']} buildings, "
        f"{info.counts['pois']} POIs (core: {core['buildings_per_km2']:.0f} buildings/km², "
        f"{core['building_coverage_pct']:.0f} % built)"
    )


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command group to the landforge CLI."""
    app.add_typer(synth_app, name="synth")
