"""Sliding windows with centre cropping for large-area prediction.

A model sees a ``window`` x ``window`` tile but only the centre of its prediction is
kept: ``overlap`` pixels of context are dropped on every side, where a convolutional
network lacks context and predicts worst. With the building-use paper's settings
(1024-pixel windows, ``overlap=128``) each window keeps its central 768 x 768 pixels and
the windows advance by 768.

``overlap`` is therefore the *margin per side*, not the width shared by two windows
(neighbouring windows share ``2 * overlap`` pixels).

At the raster edges windows are shifted inside the raster instead of being padded, so
every window is full size. The kept region of each window is chosen so that the kept
regions tile the raster exactly (no gaps, no overlaps) and every pixel comes from the
most central window: the boundary between two neighbouring windows lies halfway
between their centres. Every interior pixel thus has at least ``overlap`` pixels of
context on each side; only pixels within ``overlap`` of the raster edge have less.

A raster smaller than the window along an axis gets a single window spanning the whole
axis. The predictor pads such windows by reflection to a multiple of 32 (what U-Net-like
encoders need) and crops back, which works for any fully convolutional model; a model
that needs a fixed input size fails there with an :class:`~landforge.errors.InputError`
saying the raster is smaller than the window.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rasterio.windows import Window

from landforge.errors import OptionError

__all__ = ["Tile", "axis_layout", "sliding_windows", "pad_to_multiple"]


@dataclass(frozen=True)
class Tile:
    """One window of a sliding-window layout.

    Attributes:
        row, col: top-left pixel of the window in the raster.
        height, width: size of the window (what the model sees).
        keep_row, keep_col: top-left pixel of the kept region in the raster.
        keep_height, keep_width: size of the kept region.
        index: position of the window in row-major order.
        grid_row: index of the window's row of windows (windows in one grid row keep
            the same raster rows).
    """

    row: int
    col: int
    height: int
    width: int
    keep_row: int
    keep_col: int
    keep_height: int
    keep_width: int
    index: int
    grid_row: int

    @property
    def window(self) -> Window:
        """The read window in raster pixel coordinates."""
        return Window(self.col, self.row, self.width, self.height)

    @property
    def keep_window(self) -> Window:
        """The kept region in raster pixel coordinates."""
        return Window(self.keep_col, self.keep_row, self.keep_width, self.keep_height)

    @property
    def keep_slices(self) -> tuple[slice, slice]:
        """(rows, cols) slices of the kept region inside the window's own array."""
        r0 = self.keep_row - self.row
        c0 = self.keep_col - self.col
        return slice(r0, r0 + self.keep_height), slice(c0, c0 + self.keep_width)


def axis_layout(length: int, window: int, overlap: int) -> list[tuple[int, int, int]]:
    """Windows along one axis: ``(start, keep_start, keep_stop)`` per window.

    Windows advance by ``window - 2 * overlap``; the last one is shifted back so it ends
    at the raster edge. Kept ranges are bounded by the midpoints between window centres,
    so they partition ``[0, length)``.

    Raises:
        OptionError: if the window is not larger than twice the overlap.
    """
    _check(window, overlap)
    if length <= 0:
        return []
    if length <= window:
        return [(0, 0, length)]
    stride = window - 2 * overlap
    starts = list(range(0, length - window, stride))
    starts.append(length - window)
    layout = []
    for i, start in enumerate(starts):
        # boundary between window i-1 and i: halfway between their centres
        lo = 0 if i == 0 else (starts[i - 1] + start + window) // 2
        hi = length if i == len(starts) - 1 else (start + starts[i + 1] + window) // 2
        layout.append((start, lo, hi))
    return layout


def sliding_windows(height: int, width: int, window: int, overlap: int) -> list[Tile]:
    """The sliding-window layout of a ``height`` x ``width`` raster, row-major.

    Windows are ``min(window, height)`` x ``min(window, width)`` pixels, all the same
    size (so they batch together); their kept regions partition the raster.
    """
    rows = axis_layout(height, window, overlap)
    cols = axis_layout(width, window, overlap)
    wh, ww = min(window, height), min(window, width)
    return list(_tiles(rows, cols, wh, ww))


def _tiles(
    rows: list[tuple[int, int, int]], cols: list[tuple[int, int, int]], wh: int, ww: int
) -> Iterator[Tile]:
    index = 0
    for gr, (r, r0, r1) in enumerate(rows):
        for c, c0, c1 in cols:
            yield Tile(r, c, wh, ww, r0, c0, r1 - r0, c1 - c0, index, gr)
            index += 1


def pad_to_multiple(height: int, width: int, multiple: int = 32) -> tuple[int, int]:
    """Padding (bottom, right) that brings a window up to a multiple of ``multiple``."""
    return (-height) % multiple, (-width) % multiple


def _check(window: int, overlap: int) -> None:
    if window <= 0:
        raise OptionError("window", f"window must be positive, got {window}")
    if overlap < 0:
        raise OptionError("overlap", f"overlap must be >= 0, got {overlap}")
    if window - 2 * overlap <= 0:
        raise OptionError(
            "overlap",
            f"overlap {overlap} is the margin dropped on each side of a window; "
            f"it must be less than half the window ({window})",
        )
