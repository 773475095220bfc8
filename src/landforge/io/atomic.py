"""Atomic writes: a failed run never leaves a half-written output.

Every writer in landforge writes to a temporary sibling and renames it into place
only when the write finished; on error the temporary file (or directory) is removed.

A writer killed outright (SIGKILL, power loss) cannot remove its temporary. Temporaries
are therefore named ``.NAME.PID-HOST.RANDOM.tmp...`` (:func:`temp_sibling`), and the next
write of ``NAME`` first deletes those whose process on this host no longer runs
(:func:`remove_stale_temporaries`), so re-running a killed command leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from landforge.errors import InputError

__all__ = [
    "atomic_path",
    "atomic_dir",
    "check_writable",
    "ensure_dir",
    "ensure_writable_parent",
    "remove_stale_temporaries",
    "temp_sibling",
]


def ensure_writable_parent(path: str | os.PathLike[str]) -> Path:
    """Create the parent directory of ``path`` or raise InputError naming it."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(p, f"cannot create output directory: {exc.strerror}") from None
    if not os.access(p.parent, os.W_OK):
        raise InputError(p, "output directory is not writable")
    return p


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise InputError naming ``path`` if it could not be written; creates nothing.

    A cheap check before a long computation: the nearest existing parent must be a
    writable directory (the missing ones between are created when writing).
    """
    for parent in Path(path).absolute().parents:
        if not parent.exists():
            continue
        if not parent.is_dir():
            raise InputError(path, f"cannot create output directory: {parent} is a file")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(path, f"cannot write into {parent} (permission denied)")
        return


def ensure_dir(path: str | os.PathLike[str], what: str = "output directory") -> Path:
    """Create the directory ``path`` (and its parents) or raise InputError naming it."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(p, f"cannot create the {what}: {exc.strerror}") from None
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary name keeps the suffix so format drivers (GDAL, pyogrio) that look at
    the extension behave as for the final file.
    """
    final = ensure_writable_parent(path)
    remove_stale_temporaries(final)
    tmp = temp_sibling(final, f".tmp{final.suffix}")
    tmp.unlink()  # drivers such as GPKG refuse to open an existing empty file
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], marker: str | None = None) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; move it onto ``path`` on success.

    An existing ``path`` is replaced only after the new one is complete, and only when
    it is an earlier version of the same output: a directory holding nothing the new
    one does not also hold at its top level, or holding the file ``marker`` (e.g.
    ``city.json``: written by the same kind of output). Anything else (a file, a
    directory with the user's own files) raises InputError and is left untouched.
    """
    final = ensure_writable_parent(path)
    if final.exists() and not final.is_dir():
        raise InputError(final, "exists and is not a directory; choose another output directory")
    remove_stale_temporaries(final)
    tmp = temp_sibling(final, ".tmp", directory=True)
    try:
        yield tmp
        if final.exists():
            if not (marker and (final / marker).exists()):
                _check_replaceable(final, tmp)
            old = final.with_name(f".{final.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_replaceable(final: Path, new: Path) -> None:
    """Raise InputError unless every entry of ``final`` is also one of ``new``."""
    foreign = sorted({c.name for c in final.iterdir()} - {c.name for c in new.iterdir()})
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise InputError(
            final,
            f"exists and holds files this output does not write ({shown}); refusing to "
            "replace it: choose another output directory or remove it",
        )


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def temp_sibling(final: str | os.PathLike[str], suffix: str, directory: bool = False) -> Path:
    """Create a temporary file (or directory) beside ``final``; returns its path.

    Named ``.{final name}.{pid}-{host}.{random}{suffix}``: the owner is in the name, so
    :func:`remove_stale_temporaries` can tell a killed writer's leftovers from a live
    writer's files.
    """
    f = Path(final)
    prefix = f".{f.name}.{os.getpid()}-{_host()}."
    if directory:
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=f.parent))
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=f.parent)
    os.close(fd)
    return Path(name)


def remove_stale_temporaries(final: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries of ``final`` whose writer (on this host) no longer runs.

    Only names made by :func:`temp_sibling` are considered; those of live processes and
    of other hosts are left alone. Returns the paths removed.
    """
    f = Path(final)
    pattern = re.compile(rf"^\.{re.escape(f.name)}\.(\d+)-([A-Za-z0-9_-]+)\.")
    host = _host()
    removed: list[Path] = []
    try:
        entries = list(f.parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = pattern.match(p.name)
        if m is None or m.group(2) != host or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one of another user counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True
