"""``landforge taxonomy list`` and ``taxonomy show`` (shipped names and user files)."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from landforge.cli.taxonomy import register
from landforge.errors import InputError

runner = CliRunner()


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    register(app)
    return app


def test_list_shows_every_shipped_taxonomy() -> None:
    result = runner.invoke(make_app(), ["taxonomy", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("mslu ") and "classes" in line for line in lines)
    assert any(line.startswith("gbt35648_rci ") and "mapping" in line for line in lines)


def test_show_class_system_as_a_tree() -> None:
    result = runner.invoke(make_app(), ["taxonomy", "show", "mslu"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    a = next(i for i, line in enumerate(lines) if line.startswith("A "))
    assert "[3] Public service" in lines[a]
    assert lines[a + 8].strip().startswith("G1")  # children sit under their parent


def test_show_mapping() -> None:
    result = runner.invoke(make_app(), ["taxonomy", "show", "gaode_mslu"])
    assert result.exit_code == 0, result.output
    assert "ignored: road_furniture" in result.output


def test_show_a_broken_user_file_raises_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "taxonomy: classes\nlevels: [a]\nclasses:\n  - {code: x, name: X}\n  - {code: x, name: Y}\n"
    )
    result = runner.invoke(make_app(), ["taxonomy", "show", str(path)])
    assert isinstance(result.exception, InputError)
    assert "duplicate code 'x'" in str(result.exception)
