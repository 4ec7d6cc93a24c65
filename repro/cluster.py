"""Dask clusters for the jobs that spread work over processes or machines (the experiments' grid, ``predict``).

``--workers N`` starts a local cluster of N single-thread processes; ``--scheduler ADDRESS`` uses a running
``dask.distributed`` scheduler, which must answer, and have a worker, within :data:`SCHEDULER_TIMEOUT` seconds
(dask's own client would wait without end). :func:`dask_client` gives a client of either.
"""
import contextlib
import logging
import os

__all__ = ["SCHEDULER_TIMEOUT", "BLAS_THREADS", "check_scheduler", "wait_for_workers", "same_blas_threads",
           "oversubscription", "dask_client"]

#: Seconds a dask scheduler (``--scheduler``) has to answer, and then to have a worker; and a local cluster's
#: workers to start.
SCHEDULER_TIMEOUT = 30.0

#: The environment variables that set the number of BLAS threads.
BLAS_THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

log = logging.getLogger(__name__)


def oversubscription(workers, environ=None, cores=None):
    """A warning (str) when ``workers`` local processes, each with the BLAS threads of ``environ`` (default: this
    process's; unset means one per core), would run more threads than the machine's ``cores``; else None."""
    environ = os.environ if environ is None else environ
    cores = (os.cpu_count() or 1) if cores is None else cores
    threads = min((int(environ[k]) for k in BLAS_THREADS if environ.get(k, "").isdigit()), default=cores)
    if workers * threads <= cores:
        return None
    fitting = max(1, cores // workers)
    return (f"{workers} workers with {threads} BLAS thread(s) each on {cores} cores: the threads wait for each "
            f"other (Figure 3 on OSIE took 18.8 min instead of 12.5 with 2 workers on 2 cores); set "
            f"OPENBLAS_NUM_THREADS={fitting} OMP_NUM_THREADS={fitting} for speed (a serial run then gives the same "
            f"results only with the same setting)")


def check_scheduler(address, timeout=None):
    """Raise ConnectionError unless a dask scheduler at ``address`` answers within ``timeout`` seconds (default
    :data:`SCHEDULER_TIMEOUT`; dask's own client waits without end for one that accepts connections and never
    answers)."""
    import asyncio

    from distributed.core import rpc

    timeout = SCHEDULER_TIMEOUT if timeout is None else timeout

    async def identity():
        remote = rpc(address, timeout=timeout)
        try:
            return await remote.identity()
        finally:
            await remote.close_rpc()

    try:
        found = asyncio.run(asyncio.wait_for(identity(), timeout))
    except (OSError, asyncio.TimeoutError, ValueError) as err:     # refused, silent, unreachable, bad address
        raise ConnectionError(f"no dask scheduler answered at {address} within {timeout:g} s ({type(err).__name__}"
                              f"{': ' + str(err) if str(err) else ''}); is it running, and is the address "
                              f"(tcp://host:port) right?") from None
    if not isinstance(found, dict) or found.get("type") != "Scheduler":
        raise ConnectionError(f"{address} answers, but is not a dask scheduler ({found!r:.200})")


def wait_for_workers(client, where, timeout=None):
    """Raise TimeoutError unless the scheduler of ``client`` has a worker within ``timeout`` seconds (default
    :data:`SCHEDULER_TIMEOUT`)."""
    timeout = SCHEDULER_TIMEOUT if timeout is None else timeout
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError) as err:
        raise TimeoutError(f"{where}: no dask worker within {timeout:g} s ({err}); start one "
                           f"(dask worker ADDRESS) or run with --workers N") from None


def same_blas_threads():
    """Dask's worker environment, but with this process's BLAS thread settings.

    Dask limits workers to one BLAS thread by default. SFO fits are sensitive to the last bits of
    float64 sums, which depend on the number of BLAS threads, so local workers inherit this process's
    settings instead: a distributed run then gives exactly the serial results.
    """
    import dask

    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items() if k not in BLAS_THREADS}
    environ.update({k: os.environ[k] for k in BLAS_THREADS if k in os.environ})
    return environ


@contextlib.contextmanager
def dask_client(workers=0, scheduler=None, config=None):
    """A client of the scheduler at ``scheduler``, else of a local cluster of ``workers`` processes.

    Parameters
    ----------
    workers : int
        Local worker processes, one thread each, with this process's BLAS threads (:func:`same_blas_threads`).
    scheduler : str, optional
        Address of a running scheduler (wins over ``workers``); check it first with :func:`check_scheduler`.
    config : dict, optional
        Dask settings for the local cluster (e.g. ``{"distributed.worker.memory.pause": False}``).

    Yields
    ------
    distributed.Client
        Once the scheduler has a worker (else TimeoutError after :data:`SCHEDULER_TIMEOUT` seconds).
    """
    import dask
    from dask.distributed import Client, LocalCluster

    cluster = None
    if not scheduler:
        warning = oversubscription(workers)
        if warning:
            log.warning(warning)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": same_blas_threads(), **(config or {})}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with Client(scheduler or cluster, timeout=SCHEDULER_TIMEOUT) as client:
            wait_for_workers(client, scheduler or "the local dask cluster")
            yield client
    finally:
        if cluster is not None:
            cluster.close()
