"""Shared fixtures. Imports the torchvision compat shim before any test module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import landforge._compat  # noqa: F401  (first: makes torchvision importable on CPU torch)

os.environ.setdefault("LANDFORGE_QUIET", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip the test when it is absent (a user's clone has none)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA}")
    return SHARED_DATA
