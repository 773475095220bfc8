"""``landforge prep``: the command group of the image-preparation stages.

Its commands (``prep retinex``, ``prep gapfill``, ``prep monthly``, ``prep composite``,
``prep reclassify``) are generated from the stages' options models by
:func:`landforge.cli.stagecmd.add_stage_commands`, which finds this group by name.
"""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``prep`` command group to the root app (its commands come later)."""
    group = typer.Typer(
        help="Image preparation: Retinex, kriging gap-fill, monthly composites, "
        "false-colour stretch, urban-boundary class rules.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="prep")
