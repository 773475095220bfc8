"""``landforge dataset``: export a chip store in an open format, and read it back.

Its commands (``dataset export``, ``dataset import``) are generated from the stages'
options models by :func:`landforge.cli.stagecmd.add_stage_commands`, which finds this
group by name.
"""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``dataset`` command group to the root app (its commands come later)."""
    group = typer.Typer(
        help="Export a chip store (STAC catalog with label and ML-AOI extensions) and "
        "read an export back into a chip store.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="dataset")
