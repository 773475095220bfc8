"""Fixtures of the evaluation tests (tiny COGs written fresh per test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from evaluation_data import COLOURS, tiny_grid, truth_array

from landforge.io.raster import RasterGrid, write_cog


@pytest.fixture
def grid() -> RasterGrid:
    return tiny_grid()


@pytest.fixture
def class_rasters(tmp_path: Path, grid: RasterGrid) -> tuple[Path, Path]:
    """(prediction, truth): the prediction is perfect wherever the truth has data."""
    truth = truth_array(grid)
    pred = truth.copy()
    pred[:4] = 3  # under the truth's nodata strip: must not count
    t = write_cog(tmp_path / "truth.tif", truth, grid, nodata=0, colormap=COLOURS)
    p = write_cog(tmp_path / "pred.tif", pred, grid, nodata=255, colormap=COLOURS)
    return p, t
