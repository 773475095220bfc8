"""``landforge synth city`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from landforge.cli import main


def test_synth_city_runs_and_writes_the_city(tmp_path: Path) -> None:
    out = tmp_path / "city"
    rc = main(
        [
            "synth",
            "city",
            "--out",
            str(out),
            "--seed",
            "1",
            "--size-m",
            "400",
            "--gsd",
            "1.0",
            "--no-s2",
            "--no-s1",
            "--no-t2",
            "--no-population",
            "--quiet",
        ]
    )
    assert rc == 0
    assert (out / "image.tif").exists() and (out / "city.json").exists()


def test_bad_size_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["synth", "city", "--out", str(tmp_path / "c"), "--size-m", "0"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --size-m")
    assert not (tmp_path / "c").exists()
