"""Matching a level's new segments to the previous ones by the people they share."""
from __future__ import annotations

import numpy as np

from analysis.segment.matching import carry_codes, match_by_membership


def test_a_renumbered_labelling_is_matched_back():
    rng = np.random.default_rng(0)
    before = rng.integers(0, 5, 2_000)
    after = np.array([3, 0, 4, 1, 2])[before]  # same people, other numbers
    m = match_by_membership(before, after, list(range(5)), list(range(5)))
    assert m.previous_of == {3: 0, 0: 1, 4: 2, 1: 3, 2: 4}
    assert m.vanished == [] and m.kept_share == 1.0


def test_a_split_segment_is_new_and_its_parent_vanished():
    before = np.repeat([0, 1, 2], 90)
    after = np.repeat([0, 1, 2, 3, 4], [90, 90, 30, 30, 30])  # 2 splits in three: no part is the same
    m = match_by_membership(before, after, [0, 1, 2], [0, 1, 2, 3, 4])
    assert m.previous_of == {0: 0, 1: 1, 2: None, 3: None, 4: None}
    assert m.vanished == [2]
    assert abs(m.overlap[2] - 1 / 3) < 1e-9  # how close it came


def test_a_segment_that_mostly_stayed_keeps_its_id():
    before = np.repeat([0, 1, 2], 100)
    after = np.repeat([0, 1, 2, 3], [100, 100, 70, 30])  # 2 loses 30% to a new segment
    m = match_by_membership(before, after, [0, 1, 2], [0, 1, 2, 3])
    assert m.previous_of == {0: 0, 1: 1, 2: 2, 3: None} and m.vanished == []
    assert abs(m.kept_share - 0.75) < 1e-12


def test_set_aside_rows_are_left_out_of_the_match():
    before = np.array([-1] * 50 + [0] * 50 + [1] * 50)
    after = np.array([1] * 50 + [1] * 50 + [0] * 50)  # set-aside rows labelled 1 by the new model
    m = match_by_membership(before, after, [0, 1], [0, 1])
    assert m.previous_of == {0: 1, 1: 0}


def test_codes_carry_over_and_new_codes_do_not_reuse_old_ones():
    before = np.repeat([0, 1, 2], 90)
    after = np.repeat([1, 0, 2, 3], [90, 90, 30, 60])  # B1 loses a third: the larger part is still B1
    m = match_by_membership(before, after, [0, 1, 2], [0, 1, 2, 3])
    codes = carry_codes(m, {0: "A1", 1: "A2", 2: "B1"}, {0: "A1", 1: "A2", 2: "B1", 3: "B2"})
    assert codes[1] == "A1" and codes[0] == "A2"  # kept by membership, whatever the new fit called them
    assert codes[3] == "B1"
    assert codes[2] == "B2"  # new; its proposed code B1 is taken, so the next free one
    groups = carry_codes(match_by_membership(np.repeat([0, 1], 10), np.repeat([0, 1], 10), [0, 1], [0, 1]),
                         {0: "A", 1: "B"}, {0: "B", 1: "A"})
    assert groups == {0: "A", 1: "B"}


def test_a_merge_keeps_the_larger_part_and_matches_the_rest():
    before = np.repeat([0, 1, 2], 100)
    after = np.repeat([0, 1], [200, 100])  # previous 0 and 1 merged; previous 2 is now segment 1
    m = match_by_membership(before, after, [0, 1, 2], [0, 1])
    assert m.previous_of[1] == 2
