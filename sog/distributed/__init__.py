"""Chunk tasks on Dask distributed: `sog.stream`'s chunks on a ``LocalCluster`` (``--workers N``) or on a cluster
the user already runs (``--scheduler ADDRESS``).

`dask_runner` is a `sog.stream.Runner`: each `sog.stream.ChunkTask` is one Dask task (``retries`` re-runs one that
raised; a worker that dies is re-run elsewhere by the scheduler, up to its ``allowed-failures``), and the results
come back in the tasks' order, so the bytes are the serial run's whatever worker ran what. A LocalCluster's workers
are processes with one thread each (torch's thread count is per process; sog's bytes are those of one thread).
A cluster of your own needs sog (the same version) importable on every worker, and the input PLY and the output
folder on a file system every worker sees at the same path.

`compress_lod` is the command line's entry for ``OUT/lod-meta.json`` outputs: the chunked writer for a binary PLY,
on Dask when asked, else the in-memory writer of `sog.pipeline`."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from typing import Iterator

from ..errors import SogError
from ..pipeline import CompressOptions, CompressResult, compress
from ..stream import Runner, check_chunked, chunkable, compress_chunked

#: re-runs of a chunk task that raised (a worker that died is the scheduler's to re-run: allowed-failures)
RETRIES = 2
#: seconds to wait for an existing scheduler to answer
CONNECT_SECONDS = 20
#: seconds to wait, after a failed run on a cluster of the user's, for its running chunks to end
SETTLE_SECONDS = 600
#: the most LocalCluster workers (each a process holding one chunk)
MAX_WORKERS = 256


def check_workers(workers: int | None, scheduler: str | None) -> None:
    """``--workers`` a whole number 1..`MAX_WORKERS`, not with ``--scheduler``; else a `SogError`."""
    if workers is not None and scheduler is not None:
        raise SogError("--workers starts a local cluster and --scheduler names an existing one; give one")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or not 1 <= workers <= MAX_WORKERS):
        raise SogError(f"--workers must be a whole number 1..{MAX_WORKERS}, not {workers!r}")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise SogError("--scheduler must be a Dask scheduler address, e.g. tcp://10.0.0.5:8786")


@contextlib.contextmanager
def dask_runner(workers: int | None = None, scheduler: str | None = None, retries: int = RETRIES,
                quiet: bool = True) -> Iterator[Runner]:
    """A `sog.stream.Runner` on a LocalCluster of ``workers`` one-thread processes, or on the scheduler at
    ``scheduler``; the cluster it started is closed on leaving."""
    check_workers(workers, scheduler)
    try:
        from distributed import Client, LocalCluster, as_completed
        from distributed.client import FutureCancelledError
        from distributed.scheduler import KilledWorker
    except ImportError:
        raise SogError("--workers and --scheduler need Dask distributed (pip install dask distributed)") from None
    level = logging.ERROR if quiet else logging.WARNING
    cluster = None
    with contextlib.ExitStack() as stack:
        try:
            if scheduler is not None:
                client = Client(scheduler, timeout=CONNECT_SECONDS)
            else:
                cluster = LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=level)
                stack.callback(cluster.close)
                client = Client(cluster)
        except (OSError, TimeoutError) as exc:
            where = f"the Dask scheduler at {scheduler}" if scheduler else "a local Dask cluster"
            raise SogError(f"cannot reach {where} ({str(exc).strip().splitlines()[0][:120] if str(exc) else exc})"
                           ) from None
        stack.callback(client.close)
        run_id = secrets.token_hex(4)  # task keys unique to this run (a shared scheduler may hold others)

        def run(function, tasks, progress):
            futures = [client.submit(function, task, key=f"sog-chunk-{run_id}-{i}", retries=retries, pure=False)
                       for i, task in enumerate(tasks)]
            try:
                for future in as_completed(futures):
                    if future.status == "error":
                        future.result()  # raises the task's own error (a SogError stays one)
                    progress()
                return [future.result() for future in futures]
            except BaseException as exc:
                _settle(client, cluster, futures)
                if isinstance(exc, KilledWorker):
                    raise SogError(f"Dask workers died running a chunk more times than the scheduler allows "
                                   f"({str(exc)[:120]})") from None
                if isinstance(exc, FutureCancelledError):
                    raise SogError("the Dask scheduler cancelled a chunk task (was the cluster shut down?)") from None
                raise

        run.client = client  # for callers that watch the cluster (the tests kill a worker through it)
        yield run


def _settle(client, cluster, futures) -> None:
    """After a failed run, before the caller removes what it wrote: no chunk may still be writing. A cluster started
    here is closed (its workers, and the chunks they run, end with it); on a cluster of the user's the pending tasks
    are cancelled and those already running are waited for (at most `SETTLE_SECONDS`)."""
    from distributed import wait

    if cluster is not None:
        with contextlib.suppress(Exception):
            client.close()
            cluster.close()
        return
    with contextlib.suppress(Exception):
        running = {key for keys in client.processing().values() for key in keys}
        client.cancel([f for f in futures if f.key not in running])
        wait([f for f in futures if f.key in running], timeout=SETTLE_SECONDS)
        client.cancel(futures)


def compress_lod(source, output: str | os.PathLike, options: CompressOptions | None = None, *,
                 workers: int | None = None, scheduler: str | None = None, overwrite: bool = False,
                 quiet: bool = False) -> CompressResult:
    """``source`` to the streamed SOG ``output``: chunk by chunk (`sog.stream.compress_chunked`) when it is a
    binary PLY, on Dask with ``workers`` or ``scheduler``; else in memory (`sog.pipeline.compress`)."""
    options = options or CompressOptions()
    check_workers(workers, scheduler)
    if not chunkable(source, options):
        if workers is not None or scheduler is not None:
            raise SogError("--workers and --scheduler run the chunked streamed-SOG writer: a binary little-endian "
                           "PLY input, without --reduce or --max-gaussians")
        return compress(source, output, options, overwrite=overwrite, quiet=quiet)
    check_chunked(source, output, options, overwrite)  # before a cluster starts
    if workers is None and scheduler is None:
        return compress_chunked(source, output, options, overwrite=overwrite, quiet=quiet)
    with dask_runner(workers, scheduler, quiet=quiet) as run:
        return compress_chunked(source, output, options, overwrite=overwrite, quiet=quiet, run=run)
