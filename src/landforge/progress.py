"""Progress reporting for long work: one rich progress bar on stderr.

Silenced with ``LANDFORGE_QUIET=1`` (tests, batch jobs) or ``quiet=True``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

__all__ = ["track", "is_quiet", "console"]

console = Console(stderr=True)


def is_quiet() -> bool:
    """True when LANDFORGE_QUIET is set (no progress bars or stage lines)."""
    return os.environ.get("LANDFORGE_QUIET", "") not in ("", "0")


def track(
    items: Iterable[T], description: str, total: int | None = None, quiet: bool = False
) -> Iterator[T]:
    """Iterate over ``items`` while showing a progress bar with ETA on stderr."""
    if quiet or is_quiet():
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
