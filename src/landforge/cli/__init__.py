"""The ``landforge`` command line: one subcommand per stage.

Each area registers its commands from its own module (``cli/<area>.py`` exposes
``register(app)``) so the CLI grows with the package without one giant file. Every
command raises :class:`~landforge.errors.InputError` for user mistakes; :func:`main`
turns it into ``error: <source>: <problem>`` on stderr and exit status 2, with the full
traceback only under ``--debug``.
"""

from __future__ import annotations

import importlib
import sys
import traceback
import warnings

import typer

from landforge import __version__
from landforge.cli.stagecmd import add_stage_commands
from landforge.errors import InputError

app = typer.Typer(
    name="landforge",
    help="Multi-source geodata to land-use sample datasets, trained models and maps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}

# Modules under landforge.cli that register commands; each has register(app).
_COMMAND_MODULES = (
    "pipeline",
    "taxonomy",
    "synth",
    "parcels",
    "change",
    "prep",
    "curate",
    "dataset",
    "label",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"landforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """landforge: land-use samples, models and maps from multi-source geodata."""
    _state["debug"] = debug


for _name in _COMMAND_MODULES:
    importlib.import_module(f"landforge.cli.{_name}").register(app)

add_stage_commands(app)


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    typer.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map user errors to one line and exit 2.

    An :class:`InputError` raised by a command, and a usage error found by Click (an
    unknown option, a value of the wrong type), are printed here as one line each.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        with warnings.catch_warnings():
            # every command reports its warnings the same way: one line each on stderr
            warnings.simplefilter("always", UserWarning)
            if not debug:  # libraries' deprecations are for developers, not map makers
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", PendingDeprecationWarning)
            warnings.showwarning = _show_warning
            code = app(args=args, prog_name="landforge", standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C (KeyboardInterrupt) into exit status 130
            typer.echo("error: interrupted", err=True)
        return code if isinstance(code, int) else 0
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except typer.TyperException as exc:  # Click's (vendored by typer) usage errors
        code = getattr(exc, "exit_code", 2)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help was shown
            return code
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {_usage_line(exc)}", err=True)
        return code
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        return 130
    except InputError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {exc.line()}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        return 130


def _usage_line(exc: typer.TyperException) -> str:
    """A usage error as ``--flag: problem (see 'landforge CMD -h')``, one line."""
    format_message = getattr(exc, "format_message", None)
    message = " ".join((format_message() if format_message else str(exc)).split())
    param = getattr(exc, "param", None)
    opts = getattr(param, "opts", None)
    if type(exc) is typer.BadParameter and getattr(param, "param_type_name", "") == "option":
        # "Invalid value for '--window': ..." as the tool's other errors: "--window: ..."
        flag = opts[0] if opts else ""
        message = f"{flag}: {' '.join(str(exc.message).split())}" if flag else message
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} -h')"
    return message


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
