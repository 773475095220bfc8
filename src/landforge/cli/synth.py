"""The ``landforge synth`` command group; its commands are stages (``synth city``).

The group is declared here for its help text; :func:`landforge.cli.stagecmd.add_stage_commands`
adds the stage commands whose words start with ``synth``.
"""

from __future__ import annotations

import typer

__all__ = ["register"]

synth_app = typer.Typer(
    help="Generate seeded synthetic data for demos, tests and benchmarks.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command group to the landforge CLI."""
    app.add_typer(synth_app, name="synth")
