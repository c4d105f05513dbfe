"""Pieces of a step on two threads: every item's result, in item order, errors raised."""
from __future__ import annotations

import threading

import pytest

from analysis.prepare.parallel import WORKERS, side_by_side


def test_results_come_back_in_item_order():
    seen = set()

    def job(item: int) -> int:
        seen.add(threading.get_ident())
        return item * item

    assert side_by_side(job, range(50)) == [i * i for i in range(50)]
    assert 1 <= len(seen) <= WORKERS


def test_an_error_in_one_item_is_raised():
    def job(item: int) -> int:
        if item == 3:
            raise ValueError("bad item 3")
        return item

    with pytest.raises(ValueError, match="bad item 3"):
        side_by_side(job, range(6))
