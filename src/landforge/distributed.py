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
does not answer within ``timeout`` seconds. :func:`block_client` maps a windowed
stage's ``workers`` / ``scheduler`` options onto it and :func:`map_blocks` runs the
unit of work over its tasks (here in order, or on Dask as they finish).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from landforge.errors import InputError, OptionError

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["CONNECT_TIMEOUT_S", "block_client", "dask_client", "is_inprocess", "map_blocks"]

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


def block_client(
    stack: contextlib.ExitStack, workers: int, scheduler: str | None, client: Any = None
) -> Any:
    """The Dask client blocks run on, or None for this process.

    Args:
        stack: closes a cluster or client started here.
        workers: > 0: a local cluster of that many single-threaded processes.
        scheduler: the address of a running scheduler.
        client: a running ``distributed.Client`` (the caller owns it); wins.

    Raises:
        OptionError: (``scheduler`` / ``workers``) a scheduler that does not answer.
    """
    if client is not None:
        return client
    if scheduler is None and not workers:
        return None
    try:
        return stack.enter_context(dask_client(scheduler or "local", max(workers, 1)))
    except InputError as exc:
        if exc.source in ("scheduler", "workers"):  # a bad option, not a bad file
            raise OptionError(exc.source, exc.problem) from None
        raise


def map_blocks(
    fn: Callable[..., R], tasks: Sequence[T] | Iterable[T], client: Any = None, **local: Any
) -> Iterator[R]:
    """``fn(task)`` for every task: in order here (with ``**local``), or on Dask.

    On Dask the results come as the tasks finish (in any order); ``local`` keyword
    arguments (e.g. datasets opened once) are only passed in this process.
    """
    if client is None:
        for task in tasks:
            yield fn(task, **local)
        return
    from dask.distributed import as_completed  # only with a cluster

    futures = client.map(fn, list(tasks), pure=False)
    try:
        for future in as_completed(futures):
            result = future.result()
            future.release()
            yield result
    finally:
        client.cancel([f for f in futures if not f.done()])
