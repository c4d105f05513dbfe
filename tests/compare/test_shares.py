"""compare_segments and holm against answers worked out by hand.

z below is the 97.5% normal quantile, 1.959964.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.compare.shares import COLUMNS, IN_LINE, OVER, UNDER, compare_segments, holm


def labels(counts: dict[int, int]) -> np.ndarray:
    """People labelled by segment, e.g. {0: 2, 1: 1} -> [0, 0, 1]."""
    return np.repeat(list(counts), list(counts.values()))


# Population of 1000: 100 set aside, 400 / 300 / 200 in segments 0 / 1 / 2.
# Customers, 200:      50 set aside,  40 /  60 /  50.
POPULATION = labels({-1: 100, 0: 400, 1: 300, 2: 200})
CUSTOMERS = labels({-1: 50, 0: 40, 1: 60, 2: 50})


@pytest.fixture
def basic() -> pd.DataFrame:
    return compare_segments(POPULATION, CUSTOMERS)


def test_columns_and_rows(basic: pd.DataFrame) -> None:
    assert list(basic.columns) == list(COLUMNS)
    assert basic.index.name == "segment"
    assert basic.index.tolist() == [-1, 0, 1, 2]


def test_counts_shares_and_index_exact(basic: pd.DataFrame) -> None:
    assert basic["population_count"].tolist() == [100, 400, 300, 200]
    assert basic["customer_count"].tolist() == [50, 40, 60, 50]
    # population shares 100/1000 ...; customer shares 50/200 = .25, 40/200 = .2, ...
    assert basic["population_share"].tolist() == pytest.approx([0.1, 0.4, 0.3, 0.2])
    assert basic["customer_share"].tolist() == pytest.approx([0.25, 0.2, 0.3, 0.25])
    # index = 100 * .25/.1 = 250, 100 * .2/.4 = 50, 100 * .3/.3 = 100, 100 * .25/.2 = 125
    assert basic["index"].tolist() == pytest.approx([250.0, 50.0, 100.0, 125.0])


def test_katz_interval_by_hand(basic: pd.DataFrame) -> None:
    # Segment 0: p1 = 40/200 = .2, p2 = 400/1000 = .4, RR = .5.
    # se^2 = (1 - .2)/40 + (1 - .4)/400 = .02 + .0015 = .0215, se = 0.146629
    # z * se = 1.959964 * 0.146629 = 0.287387; exp(-0.287387) = 0.750221, exp(0.287387) = 1.332940
    # interval = 50 * (0.750221, 1.332940) = (37.5111, 66.6470)
    row = basic.loc[0]
    assert row["index_low"] == pytest.approx(37.5111, rel=1e-5)
    assert row["index_high"] == pytest.approx(66.6470, rel=1e-5)
    # z = ln(.5) / 0.146629 = -4.72722 -> two-sided p = 2 * Phi(-4.72722) = 2.27610e-6
    assert row["p_value"] == pytest.approx(2.27610e-6, rel=1e-4)


def test_interval_is_symmetric_on_log_scale(basic: pd.DataFrame) -> None:
    # Katz is index * exp(-/+ z se), so low * high == index^2 for every segment.
    product = basic["index_low"] * basic["index_high"]
    assert product.tolist() == pytest.approx((basic["index"] ** 2).tolist())


def test_zero_customer_segment_uses_continuity_correction() -> None:
    # Population 1000: 500 / 400 / 100 in segments 0 / 1 / 2; customers 100: 60 / 40 / 0.
    result = compare_segments(labels({0: 500, 1: 400, 2: 100}), labels({0: 60, 1: 40}))
    row = result.loc[2]
    assert row["customer_count"] == 0
    assert row["index"] == 0.0 and row["index_low"] == 0.0
    # +0.5 per cell: customers 0.5 of 101 (p1 = .0049505), population 100.5 of 1001 (p2 = .1003996)
    # RR = .0049505 / .1003996 = .0493079
    # se^2 = (1 - .0049505)/.5 + (1 - .1003996)/100.5 = 1.9900990 + .0089512 = 1.9990502,
    # se = 1.413878; high = 100 * .0493079 * exp(1.959964 * 1.413878) = 4.93079 * exp(2.771149)
    #                     = 4.93079 * 15.97699 = 78.7792
    assert row["index_high"] == pytest.approx(78.7792, rel=1e-5)
    # z = ln(.0493079) / 1.413878 = -3.009676 / 1.413878 = -2.12866 -> p = .033282
    assert row["p_value"] == pytest.approx(0.033282, rel=1e-4)
    # Segment 0 (index 120): se^2 = .4/60 + .5/500 = .0076667, se = .0875595,
    # z = ln 1.2 / se = 2.08226, p = .037319. Holm over the 3 testable segments:
    # 3 * .033282 = .099846, then max(2 * .037319, .099846) = .099846.
    assert result.loc[0, "p_adjusted"] == pytest.approx(0.099846, rel=1e-4)
    assert result.loc[2, "p_adjusted"] == pytest.approx(0.099846, rel=1e-4)
    assert result.loc[2, "verdict"] == IN_LINE  # adjusted p .0998 >= .05
    loose = compare_segments(labels({0: 500, 1: 400, 2: 100}), labels({0: 60, 1: 40}), alpha=0.10)
    # .0998 < .10 for both, but only segment 2's interval (upper end 0) clears the 90-110 band;
    # segment 0's index of 120 has an interval reaching below 110, so it stays in line.
    assert loose.loc[2, "verdict"] == UNDER and loose.loc[0, "verdict"] == IN_LINE
    assert loose.loc[0, "index_low"] < 110


def test_verdict_needs_the_interval_to_clear_the_band() -> None:
    """Index 111 with an interval reaching below 110 is 'in line', however small p is."""
    result = compare_segments(labels({0: 50_000, 1: 50_000}), labels({0: 5_275, 1: 4_725}))
    assert result.loc[0, "index"] == pytest.approx(105.5)
    assert result.loc[0, "p_adjusted"] < 0.05 and result.loc[0, "verdict"] == IN_LINE
    clear = compare_segments(labels({0: 50_000, 1: 50_000}), labels({0: 6_000, 1: 4_000}))
    assert clear.loc[0, "index_low"] > 110 and clear.loc[0, "verdict"] == OVER


def test_tiny_population_count_gives_wide_finite_interval() -> None:
    # Population 10000: 9998 / 2; customers 1000: 990 / 10.
    # Segment 1: p1 = .01, p2 = .0002, index 5000.
    result = compare_segments(labels({0: 9998, 1: 2}), labels({0: 990, 1: 10}))
    row = result.loc[1]
    assert row["index"] == pytest.approx(5000.0)
    # se^2 = .99/10 + .9998/2 = .099 + .4999 = .5989, se = .773886; z se = 1.516789
    # interval = 5000 * (exp(-1.516789), exp(1.516789)) = 5000 * (.2194152, 4.557569)
    #          = (1097.08, 22787.8)
    assert row["index_low"] == pytest.approx(1097.08, rel=1e-5)
    assert row["index_high"] == pytest.approx(22787.8, rel=1e-5)
    assert row["verdict"] == OVER  # 10 customers: strong evidence against a share of .0002


def test_customers_in_a_segment_with_no_population() -> None:
    result = compare_segments(labels({0: 100}), labels({0: 5, 1: 5}))
    row = result.loc[1]
    assert row["population_count"] == 0
    assert row["index"] == math.inf and row["index_high"] == math.inf
    assert 0 < row["index_low"] < math.inf


def test_holm_known_values() -> None:
    # Sorted: .005, .01, .03, .04 times 4, 3, 2, 1 = .02, .03, .06, .04;
    # running max .02, .03, .06, .06, put back in input order.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # 2 * .5 = 1.0 caps the second at 1 by the running max; never above 1.
    assert holm([0.5, 0.6]).tolist() == [1.0, 1.0]
    # NaN is no test: the family is the two others, so 2 * .01 = .02, max(.02, .02) = .02.
    adjusted = holm([np.nan, 0.01, 0.02])
    assert np.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.02, 0.02])
    assert holm([]).size == 0


def test_compare_adjusts_with_holm(basic: pd.DataFrame) -> None:
    np.testing.assert_allclose(basic["p_adjusted"], holm(basic["p_value"]))
    # Segment 2 (index 125) has the 3rd smallest of 4 p-values: max(2 * p, earlier) = 2 * p.
    assert basic.loc[2, "p_adjusted"] == pytest.approx(2 * basic.loc[2, "p_value"])


def test_clear_over_and_under(basic: pd.DataFrame) -> None:
    assert basic["verdict"].tolist() == [OVER, UNDER, IN_LINE, IN_LINE]
    # Segment 2 (index 125) is a material effect, but p = .105 (adjusted .211): not significant.
    assert basic.loc[2, "p_adjusted"] > 0.05


def test_small_effect_on_huge_samples_is_in_line() -> None:
    # Population 1,000,000: 40% in segment 0; customers 200,000: 42% -> index 105.
    # se^2 = .58/84000 + .6/400000 = 8.4048e-6, se = .0028991;
    # z = ln 1.05 / se = 16.83 -> p ~ 1.5e-63.
    population = labels({0: 400_000, 1: 600_000})
    customers = labels({0: 84_000, 1: 116_000})
    result = compare_segments(population, customers)
    assert result.loc[0, "index"] == pytest.approx(105.0)
    assert result.loc[0, "p_adjusted"] < 1e-50
    assert result.loc[0, "verdict"] == IN_LINE  # significant, but inside 90..110
    # A smaller minimum effect (index outside 96..104) makes the same evidence count.
    assert compare_segments(population, customers, min_effect=0.04).loc[0, "verdict"] == OVER


def test_large_effect_on_tiny_counts_is_in_line() -> None:
    # Population 1000: 10 in segment 1 (1%); customers 100: 3 (3%) -> index 300.
    # se^2 = .97/3 + .99/10 = .422333, se = .649872; z = ln 3 / se = 1.69051 -> p = .090931.
    result = compare_segments(labels({0: 990, 1: 10}), labels({0: 97, 1: 3}))
    row = result.loc[1]
    assert row["index"] == pytest.approx(300.0)
    assert row["p_value"] == pytest.approx(0.090931, rel=1e-4)
    assert row["verdict"] == IN_LINE  # huge effect, but could be chance


def test_set_aside_group_kept_and_shares_sum_to_one() -> None:
    # Realistic mix: 10% of the population but 26% of customers set aside.
    result = compare_segments(labels({-1: 100, 0: 500, 1: 400}), labels({-1: 260, 0: 420, 1: 320}))
    assert -1 in result.index
    assert result.loc[-1, "index"] == pytest.approx(260.0)
    assert result.loc[-1, "verdict"] == OVER
    assert result["population_share"].sum() == pytest.approx(1.0)
    assert result["customer_share"].sum() == pytest.approx(1.0)


def test_set_aside_row_present_even_when_nobody_was_set_aside() -> None:
    result = compare_segments(labels({0: 3, 1: 1}), labels({0: 1, 1: 1}), segments=[0, 1])
    assert result.index.tolist() == [-1, 0, 1]
    row = result.loc[-1]
    assert (row["population_count"], row["customer_count"]) == (0, 0)
    assert np.isnan(row["index"]) and np.isnan(row["p_value"]) and row["verdict"] == IN_LINE


def test_segments_fix_rows_and_order() -> None:
    result = compare_segments(labels({0: 5, 2: 5}), labels({2: 4}), segments=[2, 1, 0, -1])
    assert result.index.tolist() == [2, 1, 0, -1]
    assert result["population_count"].tolist() == [5, 0, 5, 0]
    assert result["customer_count"].tolist() == [4, 0, 0, 0]


def test_label_outside_segments_is_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match=r"labels \[3\] that are not in segments"):
        compare_segments(np.array([0, 1, 3]), np.array([0, 1]), segments=[0, 1])


def test_accepts_series_and_whole_number_floats() -> None:
    expected = compare_segments(np.array([0, 1, 1, -1]), np.array([1, -1]))
    from_series = compare_segments(pd.Series([0, 1, 1, -1], dtype="Int64"), np.array([1.0, -1.0]))
    pd.testing.assert_frame_equal(from_series, expected)


@pytest.mark.parametrize(
    ("population", "customers", "message"),
    [
        (np.array([], dtype=int), np.array([0]), "empty"),
        (np.array([0]), [], "empty"),
        (np.array([0, 1.5]), np.array([0]), "whole numbers"),
        (np.array([0, np.nan]), np.array([0]), "missing"),
        (np.array(["a", "b"]), np.array([0]), "integers"),
        (np.array([True, False]), np.array([0]), "integers"),
        (np.array([[0, 1]]), np.array([0]), "one-dimensional"),
        (np.array([0, -2]), np.array([0]), "-1 \\(set aside\\)"),
    ],
)
def test_bad_labels_raise(population: object, customers: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare_segments(population, np.asarray(customers))  # type: ignore[arg-type]


def test_bad_settings_raise() -> None:
    with pytest.raises(ValueError, match="alpha"):
        compare_segments(POPULATION, CUSTOMERS, alpha=1.5)
    with pytest.raises(ValueError, match="min_effect"):
        compare_segments(POPULATION, CUSTOMERS, min_effect=-0.1)
    with pytest.raises(ValueError, match="repeat"):
        compare_segments(POPULATION, CUSTOMERS, segments=[0, 1, 1, 2])


label_lists = st.lists(st.integers(min_value=-1, max_value=5), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(population=label_lists, customers=label_lists)
def test_properties(population: list[int], customers: list[int]) -> None:
    result = compare_segments(np.array(population), np.array(customers))
    assert -1 in result.index
    assert result["population_share"].sum() == pytest.approx(1.0)
    assert result["customer_share"].sum() == pytest.approx(1.0)
    present = result[(result["population_count"] > 0) | (result["customer_count"] > 0)]
    assert (present["index_low"] <= present["index"] * (1 + 1e-12)).all()
    assert (present["index"] <= present["index_high"] * (1 + 1e-12)).all()
    assert present["p_value"].between(0, 1).all()
    assert (present["p_adjusted"] >= present["p_value"]).all()
    assert (present["p_adjusted"] <= 1).all()
    # Test and interval agree: unadjusted p < .05 exactly when the interval excludes 100.
    clear = present[(present["p_value"] - 0.05).abs() > 1e-9]
    excludes = (clear["index_low"] > 100) | (clear["index_high"] < 100)
    assert (excludes == (clear["p_value"] < 0.05)).all()
    flagged = result[result["verdict"] != IN_LINE]
    assert (flagged["p_adjusted"] < 0.05).all()
    assert ((flagged["index"] - 100).abs() >= 10 - 1e-9).all()
