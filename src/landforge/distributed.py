"""Dask scale-out shared by every block-wise command (tiled parcels, prediction).

One rule everywhere (ARCHITECTURE.md, "scale-out is a scheduler choice"): the unit of
work is a pure function of a picklable argument, and where it runs is a choice of
scheduler:

- ``None`` (or ``"inprocess"``): a plain loop in this process, no Dask at all;
- ``"local"``: a :class:`distributed.LocalCluster` of ``workers`` single-threaded
  worker processes, started here and closed at the end;
- ``"tcp://host:port"``: a running Dask scheduler (``dask scheduler`` plus ``dask
  worker`` processes on other machines, which must see the same files);
- a ``distributed.Client``: used as is and left open (the caller owns it).

:func:`dask_client` turns that choice into a client (or ``None`` for in-process), and
fails with one :class:`~landforge.errors.InputError` line when a scheduler address
does not answer within ``timeout`` seconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from landforge.errors import InputError

__all__ = ["CONNECT_TIMEOUT_S", "is_inprocess", "dask_client"]

#: Seconds to wait for a remote scheduler before giving up.
CONNECT_TIMEOUT_S = 10.0

_INPROCESS = ("", "inprocess", "in-process", "sync")


def is_inprocess(scheduler: Any) -> bool:
    """True for the schedulers that mean "a plain loop here": None, "", "inprocess"."""
    return scheduler is None or (isinstance(scheduler, str) and scheduler in _INPROCESS)


@contextlib.contextmanager
def dask_client(
    scheduler: Any,
    workers: int = 2,
    timeout: float = CONNECT_TIMEOUT_S,
    source: str = "scheduler",
    workers_source: str = "workers",
) -> Iterator[Any]:
    """A Dask client for ``scheduler`` (see the module doc), or None for in-process.

    Clusters and clients made here are closed on exit; a client passed in is not.

    Args:
        scheduler: None, "inprocess", "local", an address or a Client.
        workers: worker processes (one thread each) for ``"local"``.
        timeout: seconds to wait for a scheduler address to answer.
        source: option name of ``scheduler`` in error messages.
        workers_source: option name of ``workers`` in error messages.

    Raises:
        InputError: an unknown scheduler value, ``workers < 1``, dask not installed, or
            a scheduler address that does not answer within ``timeout``.
    """
    if is_inprocess(scheduler):
        yield None
        return
    if hasattr(scheduler, "submit") and hasattr(scheduler, "gather"):
        yield scheduler  # a Client the caller manages
        return
    if not isinstance(scheduler, str):
        raise InputError(source, f"expected None, 'local' or an address, got {scheduler!r}")
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - dask is a core dependency
        raise InputError(
            source, "needs dask[distributed]: pip install 'dask[distributed]'"
        ) from err
    with contextlib.ExitStack() as stack:
        if scheduler == "local":
            if int(workers) < 1:
                raise InputError(workers_source, f"need at least 1 worker, got {workers!r}")
            cluster = LocalCluster(
                n_workers=int(workers),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=50,
            )
            stack.callback(cluster.close)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout=timeout)
            except (OSError, TimeoutError, ValueError) as err:
                raise InputError(
                    source,
                    f"no Dask scheduler answers at {scheduler!r} within {timeout:g} s "
                    f"({type(err).__name__}); start one (`dask scheduler`) or use 'local'",
                ) from None
        stack.callback(client.close)
        yield client
