"""``landforge curate``: the command group of the dataset-curation stages.

Its commands (``curate tiles``, ``curate cluster``, ``curate similar``) are generated
from the stages' options models by :func:`landforge.cli.stagecmd.add_stage_commands`,
which finds this group by name.
"""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``curate`` command group to the root app (its commands come later)."""
    group = typer.Typer(
        help="Dataset curation: frames to patches with label and LBP texture histograms, "
        "mean-shift scene clusters, similar-patch search.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="curate")
