"""One exception type for user mistakes.

The CLI turns :class:`InputError` into one line on stderr,
``error: <source>: <problem>``, and exit status 2. Library code raises it for anything
the user can fix (a missing file, a raster on the wrong grid, an unknown class name);
genuine bugs stay ordinary exceptions and keep their traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["InputError", "OptionError", "require_file"]


class InputError(Exception):
    """A problem with the user's input: a file, an option or a config field.

    Args:
        source: what is wrong (a file path, ``--option`` or ``config.field``).
        problem: a short sentence saying what is wrong and, where possible, what to do.
    """

    def __init__(self, source: str | os.PathLike[str] | None, problem: str) -> None:
        self.source = str(source) if source is not None else None
        self.problem = problem
        super().__init__(self.line())

    def __reduce__(self) -> tuple[type[InputError], tuple[str | None, str]]:
        # survives pickling (e.g. raised on a Dask worker, re-raised by the client)
        return (type(self), (self.source, self.problem))

    def line(self) -> str:
        """The one-line message the CLI prints (without the ``error:`` prefix)."""
        if self.source:
            return f"{self.source}: {self.problem}"
        return self.problem


class OptionError(InputError):
    """A bad value of an options-model field, found by library code after validation.

    Library code does not know how the user spelt the option: the CLI names it by its
    flag (``--batch``), a pipeline by ``stages.NAME.with.batch``, Python by the field.

    Args:
        field: the field name, dotted for nested models (``optimizer.lr``).
        problem: what is wrong with its value.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(field, problem)

    def __reduce__(self) -> tuple[type[OptionError], tuple[str, str]]:  # type: ignore[override]
        return (type(self), (self.field, self.problem))


def require_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise InputError if it is not an existing file."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, f"{what} does not exist")
    if p.is_dir():
        raise InputError(p, f"expected a {what}, found a directory")
    return p
