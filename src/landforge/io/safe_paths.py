"""Paths named by data files: archive members, annotation exports, manifests.

A zip or tar archive, or an annotation export (e.g. Label Studio JSON naming its image
files), names paths that landforge then writes or reads. Such a name must stay inside
the directory it is meant for: :func:`safe_member_path` refuses absolute paths (POSIX,
Windows drive or UNC), any ``..`` component, NUL bytes and names that leave the root
through a symbolic link already there. Every importer of archives or annotations goes
through it (landforge has none yet that extracts archives; this is the one place to use
when one is added).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from landforge.errors import InputError

__all__ = ["safe_member_path"]

_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_member_path(
    root: str | os.PathLike[str],
    name: str,
    source: str | os.PathLike[str] | None = None,
) -> Path:
    """Where the member ``name`` goes under ``root``; InputError if it would leave it.

    Backslashes count as separators (archives made on Windows), empty components and
    ``.`` are dropped (``a//./b`` is ``a/b``).

    Args:
        root: the directory members are extracted to (or resolved against).
        name: the member name as the archive or annotation file gives it.
        source: the file that names ``name`` (the archive), for the error message;
            default: ``name`` itself.

    Returns:
        ``root / name`` (``root`` as given, not resolved).

    Raises:
        InputError: an empty name, an absolute name, a ``..`` component, a NUL byte, or
            a path that resolves outside ``root`` (through a symbolic link).
    """

    def refuse(problem: str) -> InputError:
        if source is None:
            return InputError(repr(name), problem)
        return InputError(source, f"member {name!r}: {problem}")

    if "\x00" in name:
        raise refuse("not a usable path name")
    text = name.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        raise refuse("absolute path refused (members must be relative to the archive)")
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if not parts:
        raise refuse("empty path refused")
    if ".." in parts:
        raise refuse("path with '..' refused (it would leave the target directory)")
    base = Path(root)
    target = base.joinpath(*parts)
    resolved_root = base.resolve()
    resolved = target.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise refuse("path leaves the target directory through a symbolic link")
    return target
