"""Fixtures of the curation tests."""

from __future__ import annotations

import pytest
from curate_helpers import write_frame


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    return write_frame(tmp_path_factory.mktemp("frame"))
