"""``landforge label``: the command group of the labelling loop.

Its pipeline stages (``label export``, ``import``, ``check``, ``simulate``, ``mslu``) are
added by :func:`landforge.cli.stagecmd.add_stage_commands`, which finds this group by
name. ``label push`` and ``label pull`` talk to a running Label Studio, so they are
commands only (not pipeline steps); they are generated here from their options models
the same way.
"""

from __future__ import annotations

import typer

from landforge.cli.stagecmd import stage_command
from landforge.pipeline.stages.labelling import SERVER_COMMANDS

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``label`` command group with ``push`` and ``pull`` to the root app."""
    group = typer.Typer(
        help="Human-machine labelling loop: Label Studio tasks, annotations, cross-checks.",
        no_args_is_help=True,
    )
    for stage in SERVER_COMMANDS:
        assert stage.command is not None
        group.command(stage.command[-1])(stage_command(stage))
    app.add_typer(group, name="label")
