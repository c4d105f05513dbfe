"""Connecting to a Dask cluster, or starting a local one, and always letting it go.

With a scheduler address the run uses that cluster (its workers must see the input files and,
for ``segments assign``, the output folder at the same paths). Without one it starts a
``LocalCluster`` of worker processes, one per core (or ``workers``), one thread each, each
limited to ``worker_memory`` GB (default: an equal part of ``MEMORY_SHARE`` of the machine's
memory), and shuts it down when the run ends, whether it succeeded or failed. The dask engine
keeps its partitions in a scratch folder, not in the workers' memory, so a worker needs about one
partition's worth at a time (~0.7 GB) and the limit is a guard (Dask restarts a worker past 95%
of it), not what keeps a large run's memory bounded.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from analysis.errors import InputError
from analysis.settings import Settings
from analysis.shell.progress import Stages
from analysis.threads import cores

MEMORY_SHARE = 0.8  # of the machine's memory, split between the local workers
CONNECT_TIMEOUT = "20s"


def _dask():
    """The distributed module, or a clear error when the dask extra is not installed."""
    try:
        import distributed
    except ImportError:
        raise InputError("the dask engine needs the packages dask and distributed", column="engine",
                         hint="Install them with: pip install -e '.[dask]' (or use --engine local)") from None
    return distributed


def local_workers(settings: Settings) -> int:
    return settings.workers or cores()


@contextmanager
def connect(settings: Settings, stages: Stages) -> Iterator["distributed.Client"]:  # noqa: F821
    """A client of the configured cluster; a local cluster started here is closed on the way out."""
    distributed = _dask()
    if settings.scheduler:
        try:
            client = distributed.Client(settings.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as err:
            raise InputError(f"no Dask scheduler answers at {settings.scheduler} ({err})", column="scheduler",
                             hint="Check the address (tcp://host:8786) and that the scheduler runs, "
                                  "or leave scheduler unset to start a local cluster") from None
        try:
            yield client
        finally:
            client.close()
        return
    import psutil
    workers = local_workers(settings)
    memory = (int(settings.worker_memory * 2**30) if settings.worker_memory else
              int(psutil.virtual_memory().total * MEMORY_SHARE / workers))
    stages.say(f"starting a local Dask cluster: {workers} worker processes, {memory / 2**30:.1f} GB each")
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       memory_limit=memory, dashboard_address=":0")
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()
