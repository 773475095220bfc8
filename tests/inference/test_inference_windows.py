"""Sliding windows: the kept centres tile the raster exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from landforge.errors import InputError
from landforge.inference.windows import axis_layout, sliding_windows


@settings(max_examples=120, deadline=None)
@given(
    height=st.integers(1, 400),
    width=st.integers(1, 400),
    window=st.integers(4, 160),
    data=st.data(),
)
def test_kept_regions_partition_the_raster(height: int, width: int, window: int, data) -> None:
    overlap = data.draw(st.integers(0, (window - 1) // 2))
    tiles = sliding_windows(height, width, window, overlap)
    cover = np.zeros((height, width), dtype=np.int32)
    for t in tiles:
        # windows lie inside the raster and are all the same size
        assert t.row >= 0 and t.row + t.height <= height
        assert t.col >= 0 and t.col + t.width <= width
        assert (t.height, t.width) == (min(window, height), min(window, width))
        # the kept region lies inside its window
        assert t.row <= t.keep_row and t.keep_row + t.keep_height <= t.row + t.height
        assert t.col <= t.keep_col and t.keep_col + t.keep_width <= t.col + t.width
        rs, cs = t.keep_slices
        cover[t.keep_row : t.keep_row + t.keep_height, t.keep_col : t.keep_col + t.keep_width] += 1
        assert rs.stop - rs.start == t.keep_height and cs.stop - cs.start == t.keep_width
    assert (cover == 1).all()


@settings(max_examples=120, deadline=None)
@given(length=st.integers(1, 3000), window=st.integers(4, 600), data=st.data())
def test_every_pixel_has_overlap_context_and_comes_from_most_central_window(
    length: int, window: int, data
) -> None:
    overlap = data.draw(st.integers(0, (window - 1) // 2))
    layout = axis_layout(length, window, overlap)
    w = min(window, length)
    centres = np.array([s + w / 2 for s, _, _ in layout])
    for start, lo, hi in layout:
        px = np.arange(lo, hi)
        # at least `overlap` pixels of context on each side, except at the raster edge
        assert ((px - start >= overlap) | (px < overlap)).all()
        assert ((start + w - 1 - px >= overlap) | (px >= length - overlap)).all()
        # no other window's centre is closer (ties allowed)
        own = np.abs(px + 0.5 - (start + w / 2))
        best = np.abs(px[:, None] + 0.5 - centres[None]).min(axis=1)
        assert (own <= best + 0.5).all()


def test_paper_layout_keeps_the_central_768_pixels() -> None:
    layout = axis_layout(5000, 1024, 128)
    starts = [s for s, _, _ in layout]
    assert starts[:4] == [0, 768, 1536, 2304]
    assert starts[-1] == 5000 - 1024
    interior = layout[1:-2]
    assert all(hi - lo == 768 and lo - s == 128 for s, lo, hi in interior)


def test_overlap_must_leave_a_centre() -> None:
    with pytest.raises(InputError, match="less than half the window"):
        axis_layout(1000, 256, 128)
