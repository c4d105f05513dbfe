"""Independent pieces of one step (columns, row blocks) on the machine's two cores, in threads.

numpy's element-wise work and BLAS release the GIL, so two threads keep both cores busy where
the pieces are large (a column or a 25,000-row block of the full-size population). Every piece
is computed exactly as it would be one after another (BLAS on one thread, set by the caller),
so the numbers never depend on how many threads ran. The gain needs a free second core: on this
shared machine at load 7 (other jobs on both cores) one and two threads took the same time
(``fit_reducer`` 8.6-11.7 s, cleaning the population 4.2-5.9 s, both ways, measured).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

WORKERS = 2  # this machine has 2 cores; a third thread only queues behind them
T, R = TypeVar("T"), TypeVar("R")


def side_by_side(job: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``job`` of every item, ``WORKERS`` at a time; results in item order (the first error is raised)."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(job, items))
