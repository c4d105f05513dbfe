"""How many cores this process may use, and independent pieces of one step run on them.

Cleaning, row hashing, file hashing and the k-selection's sample fits each split their work
into pieces (columns, row blocks, files, fits) that numpy, hashlib or scikit-learn's compiled
loops work on with the GIL released. Each piece is computed exactly as it would be alone and
results come back in item order, so the numbers never depend on how many threads ran.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

T, R = TypeVar("T"), TypeVar("R")


def cores() -> int:
    """The cores this process may run on (its CPU affinity): how many threads a parallel step uses."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def each(work: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``[work(item) for item in items]``, on ``workers`` threads when more than one; results in
    item order, the first error raised."""
    if workers <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(work, items))
