"""The ``landforge change`` command group; its commands are stages.

``change chips``, ``change train``, ``change predict`` and ``change evaluate`` are
generated from the stages' options models by
:func:`landforge.cli.stagecmd.add_stage_commands`, which finds this group by name.
"""

from __future__ import annotations

import typer

__all__ = ["register"]

change_app = typer.Typer(
    help="Land-use change segmentation with satellite time series (FUSU).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``change`` command group to the landforge CLI."""
    app.add_typer(change_app, name="change")
