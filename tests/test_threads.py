"""Pieces of a step on threads: every item's result, in item order, the first error raised."""
from __future__ import annotations

import threading

import pytest

from analysis.threads import cores, each


@pytest.mark.parametrize("workers", [0, 1, 2, 3])
def test_results_come_back_in_item_order(workers: int) -> None:
    seen = set()

    def job(item: int) -> int:
        seen.add(threading.get_ident())
        return item * item

    assert each(job, range(50), workers) == [i * i for i in range(50)]
    assert 1 <= len(seen) <= max(workers, 1)
    if workers <= 1:
        assert seen == {threading.get_ident()}  # one worker: no thread at all


@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_in_one_item_is_raised(workers: int) -> None:
    def job(item: int) -> int:
        if item == 3:
            raise ValueError("bad item 3")
        return item

    with pytest.raises(ValueError, match="bad item 3"):
        each(job, range(6), workers)


def test_no_items_no_results() -> None:
    assert each(lambda item: item, [], 2) == []


def test_cores_is_at_least_one() -> None:
    assert isinstance(cores(), int) and cores() >= 1
