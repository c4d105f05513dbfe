"""gains_table and headline on comparisons whose answers are worked out by hand."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.compare.shares import IN_LINE, OVER, UNDER, compare_segments
from analysis.compare.targeting import GAINS_COLUMNS, gains_table, headline


def labels(counts: dict[int, int]) -> np.ndarray:
    return np.repeat(list(counts), list(counts.values()))


# Population 1000 (-1/0/1/2: 100/400/300/200), customers 200 (50/40/60/50).
# Index: -1 -> 250 (over), 0 -> 50 (under), 1 -> 100, 2 -> 125 (in line: p = .105).
@pytest.fixture
def comparison() -> pd.DataFrame:
    return compare_segments(labels({-1: 100, 0: 400, 1: 300, 2: 200}),
                            labels({-1: 50, 0: 40, 1: 60, 2: 50}))


@pytest.fixture
def gains(comparison: pd.DataFrame) -> pd.DataFrame:
    return gains_table(comparison)


def test_gains_order_and_columns(gains: pd.DataFrame) -> None:
    assert list(gains.columns) == list(GAINS_COLUMNS)
    assert gains.index.name == "rank" and gains.index.tolist() == [1, 2, 3, 4]
    # By index: 250 (-1), 125 (2), 100 (1), 50 (0). The set-aside group ranks first.
    assert gains["segment"].tolist() == [-1, 2, 1, 0]
    assert gains["verdict"].tolist() == [OVER, IN_LINE, IN_LINE, UNDER]


def test_gains_cumulative_and_lift(gains: pd.DataFrame) -> None:
    # population .1, .2, .3, .4 -> .1, .3, .6, 1.0; customers .25, .25, .3, .2 -> .25, .5, .8, 1.0
    assert gains["cumulative_population_share"].tolist() == pytest.approx([0.1, 0.3, 0.6, 1.0])
    assert gains["cumulative_customer_share"].tolist() == pytest.approx([0.25, 0.5, 0.8, 1.0])
    # lift = 100 * .25/.1, .5/.3, .8/.6, 1/1 = 250, 166.67, 133.33, 100
    assert gains["lift"].tolist() == pytest.approx([250.0, 500 / 3, 400 / 3, 100.0])


def test_ties_go_to_larger_customer_share_and_empty_rows_last() -> None:
    # Every segment has index 100; customer shares .1 / .2 / .7; nobody set aside (NaN index).
    comparison = compare_segments(labels({0: 100, 1: 200, 2: 700}), labels({0: 10, 1: 20, 2: 70}))
    assert gains_table(comparison)["segment"].tolist() == [2, 1, 0, -1]


def test_dropping_set_aside_is_the_callers_choice(comparison: pd.DataFrame) -> None:
    gains = gains_table(comparison.drop(index=-1))
    assert gains["segment"].tolist() == [2, 1, 0]
    # Shares stay shares of everyone, so the cumulative columns end at 1 - .1 and 1 - .25.
    assert gains["cumulative_population_share"].iloc[-1] == pytest.approx(0.9)
    assert gains["cumulative_customer_share"].iloc[-1] == pytest.approx(0.75)


def test_accepts_segment_as_column(comparison: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(gains_table(comparison.reset_index()), gains_table(comparison))


def test_missing_columns_raise(comparison: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="verdict"):
        gains_table(comparison.drop(columns="verdict"))
    with pytest.raises(ValueError, match="segment"):
        gains_table(comparison.reset_index(drop=True))


def test_headline_default_mails_over_represented(gains: pd.DataFrame) -> None:
    result = headline(gains)
    assert result.segments == [-1]
    assert (result.population_share, result.customer_share) == pytest.approx((0.1, 0.25))


def test_headline_explicit_count(gains: pd.DataFrame) -> None:
    result = headline(gains, segments_to_mail=2)
    assert result.segments == [-1, 2]
    assert (result.population_share, result.customer_share) == pytest.approx((0.3, 0.5))


def test_headline_falls_back_to_top_segment_when_none_over() -> None:
    comparison = compare_segments(labels({0: 100, 1: 200, 2: 700}), labels({0: 10, 1: 20, 2: 70}))
    result = headline(gains_table(comparison))
    assert result.segments == [2]
    assert (result.population_share, result.customer_share) == pytest.approx((0.7, 0.7))


def test_headline_lists_segments_when_not_a_prefix() -> None:
    # Segment 5 has the largest index but is uncertain ('in line'); 3 and 1 are over-represented.
    comparison = pd.DataFrame(
        {
            "index": [300.0, 150.0, 120.0, 80.0],
            "population_share": [0.01, 0.2, 0.3, 0.49],
            "customer_share": [0.03, 0.3, 0.36, 0.31],
            "verdict": [IN_LINE, OVER, OVER, UNDER],
        },
        index=pd.Index([5, 3, 1, 0], name="segment"),
    )
    result = headline(gains_table(comparison))
    assert result.segments == [3, 1]
    assert not result.top
    assert (result.population_share, result.customer_share) == pytest.approx((0.5, 0.66))


@pytest.mark.parametrize("count", [0, 5, -1, True])
def test_headline_bad_count_raises(gains: pd.DataFrame, count: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 4"):
        headline(gains, segments_to_mail=count)


def test_headline_empty_gains_raises(gains: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="empty"):
        headline(gains.iloc[:0])


label_lists = st.lists(st.integers(min_value=-1, max_value=5), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(population=label_lists, customers=label_lists)
def test_gains_properties(population: list[int], customers: list[int]) -> None:
    comparison = compare_segments(np.array(population), np.array(customers))
    gains = gains_table(comparison)
    assert sorted(gains["segment"]) == sorted(comparison.index)
    for column in ("cumulative_population_share", "cumulative_customer_share"):
        assert gains[column].is_monotonic_increasing
        assert gains[column].iloc[-1] == pytest.approx(1.0)
    ranked = gains["index"].dropna()
    assert ranked.is_monotonic_decreasing and gains["index"].iloc[: len(ranked)].notna().all()
    assert gains["lift"].iloc[-1] == pytest.approx(100.0)
    top = headline(gains, segments_to_mail=1)
    assert top.customer_share == pytest.approx(gains["customer_share"].iloc[0])
