"""The CLI shell: --version, --help on every command, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from landforge import __version__
from landforge.cli import app, main


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd, prefix: list[str]) -> None:  # noqa: ANN001 - typer's vendored click type
        for name, sub in getattr(cmd, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"landforge {__version__}"


def test_required_commands_exist():
    names = {p[0] for p in _command_paths()}
    assert {"run", "demo", "stages"} <= names


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p))
def test_every_command_has_help(path, capsys):
    assert main([*path, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_console_script_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "landforge.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and __version__ in out.stdout


def test_unknown_option_is_a_usage_error(capsys):
    assert main(["run", "--no-such-flag"]) == 2


def test_mapping_commands_exist():
    paths = {" ".join(p) for p in _command_paths()}
    assert {"predict", "builtup", "parcels assign"} <= paths


def test_input_error_survives_pickling():
    """A worker's InputError reaches the client whole (Dask pickles exceptions through
    ``__reduce__``; copy.deepcopy takes the same path without a pickle round trip)."""
    import copy

    from landforge.errors import InputError

    err = copy.deepcopy(InputError("a.tif", "raster does not exist"))
    assert isinstance(err, InputError)
    assert (err.source, err.problem, err.line()) == ("a.tif", "raster does not exist",
                                                    "a.tif: raster does not exist")
