"""``landforge parcels``: the command group of the parcel stages.

Its commands (``parcels generate``, ``parcels label``, ``parcels select``, ``parcels
assign``, ...) are generated from the stages' options models by
:func:`landforge.cli.stagecmd.add_stage_commands`, which finds this group by name. The
group itself runs ``parcels generate`` when no subcommand is given:
``landforge parcels --roads R --out P`` is ``landforge parcels generate --roads R --out P``.
"""

from __future__ import annotations

import inspect
from typing import Any

import typer

from landforge.cli.stagecmd import stage_command
from landforge.pipeline.registry import get_stage

__all__ = ["register"]


def _generate_callback() -> Any:
    """The group callback: the generated ``parcels generate`` when no subcommand is given."""
    generate = stage_command(get_stage("parcels"))

    def callback(ctx: typer.Context, **kwargs: Any) -> None:
        if ctx.invoked_subcommand is not None:
            return
        if all(v is None or v == [] for v in kwargs.values()):
            typer.echo(ctx.get_help())
            raise typer.Exit(0)
        generate(**kwargs)

    signature = inspect.signature(generate)
    context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    callback.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[context, *signature.parameters.values()]
    )
    callback.__doc__ = (
        "Parcels from road networks, their labels and samples.\n\n"
        "Without a command: `parcels generate` (same options)."
    )
    return callback


def register(app: typer.Typer) -> None:
    """Add the ``parcels`` command group to the root app (its commands come later)."""
    group = typer.Typer(
        help="Parcels from road networks, their labels and samples.",
        invoke_without_command=True,
        no_args_is_help=False,
    )
    group.callback(invoke_without_command=True)(_generate_callback())

    app.add_typer(group, name="parcels")
