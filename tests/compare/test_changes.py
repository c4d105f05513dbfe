"""What changed: PSI, the test of an index change, data-quality drift."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.compare.changes import (bin_counts_on, bin_edges, bins_table, feature_bins, feature_psi, psi, psi_band,
                                      quality_drift, segment_psi, segment_shifts)


def comparison(pop: list[int], cust: list[int]) -> pd.DataFrame:
    pop_a, cust_a = np.array(pop, float), np.array(cust, float)
    return pd.DataFrame({"segment": range(-1, len(pop) - 1), "population_count": pop_a, "customer_count": cust_a,
                         "population_share": pop_a / pop_a.sum(), "customer_share": cust_a / cust_a.sum(),
                         "index": 100 * (cust_a / cust_a.sum()) / (pop_a / pop_a.sum())})


def test_psi_by_hand():
    expected, actual = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    by_hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert abs(psi(expected, actual) - by_hand) < 1e-12
    assert psi(expected, expected) == 0.0
    assert [psi_band(v) for v in (0.05, 0.10, 0.2, 0.26)] == ["stable", "moderate", "moderate", "major"]


def test_a_doubled_customer_share_is_flagged_and_nothing_else():
    before = comparison([3000, 9000, 9000, 9000], [800, 2000, 2000, 2000])
    after = comparison([3000, 9000, 9000, 9000], [800, 2000, 2000, 4000])  # segment 2 doubles
    shifts = segment_shifts(before, after, {-1: -1, 0: 0, 1: 1, 2: 2})
    assert shifts.set_index("segment")["direction"].to_dict() == {-1: "down", 0: "down", 1: "down", 2: "up"}
    same = segment_shifts(before, before, {-1: -1, 0: 0, 1: 1, 2: 2})
    assert (same["direction"] == "none").all() and (same["p_adjusted"] == 1).all()
    assert segment_psi(same) == 0.0


def test_a_small_change_is_noise():
    before = comparison([3000, 9000, 9000, 9000], [800, 2000, 2000, 2000])
    after = comparison([3000, 9000, 9000, 9000], [800, 2000, 2000, 2080])
    assert (segment_shifts(before, after, {-1: -1, 0: 0, 1: 1, 2: 2})["direction"] == "none").all()


def test_new_and_vanished_segments_get_rows():
    before = comparison([1000, 5000, 5000], [100, 500, 500])
    after = comparison([1000, 5000, 4000, 1000], [100, 500, 400, 100])
    shifts = segment_shifts(before, after, {-1: -1, 0: 0, 1: None, 2: None})
    assert shifts["status"].tolist() == ["kept", "kept", "new", "new", "vanished"]
    assert shifts["previous_segment"].iloc[-1] == 1 and pd.isna(shifts["segment"].iloc[-1])
    assert segment_psi(shifts) > 0.25  # vanished and new segments weigh in fully


def test_feature_psi_uses_the_previous_bins():
    rng = np.random.default_rng(0)
    before = pd.DataFrame({"code": rng.integers(1, 6, 20_000).astype(float), "amount": rng.normal(size=20_000)})
    bins = feature_bins(before)
    assert set(bins.loc[bins["column"] == "code", "bin"]) == {-1, 0, 1, 2, 3, 4}
    assert len(bins[bins["column"] == "amount"]) == 11  # missing + deciles
    same = pd.DataFrame({"code": rng.integers(1, 6, 20_000).astype(float), "amount": rng.normal(size=20_000)})
    assert (feature_psi(bins, same)["band"] == "stable").all()
    shifted = same.copy()
    shifted.loc[: 1999, "code"] = np.nan  # 10% missing
    shifted["amount"] += 1.0
    result = feature_psi(bins, shifted, {"code": "CODE"}).set_index("column")
    assert result.loc["amount", "band"] == "major" and result.loc["code", "band"] in ("moderate", "major")
    assert result.loc["code", "feature"] == "CODE" and abs(result.loc["code", "missing_after"] - 0.1) < 1e-9


def test_quality_drift_flags_real_changes_only():
    rows = 30_000
    before = pd.DataFrame({"feature": ["A", "B", "C"], "missing_share": [0.02, 0.05, 0.0],
                           "out_of_range": [0, 0, 0]})
    after = pd.DataFrame({"feature": ["A", "B", "C"], "missing_share": [0.021, 0.15, 0.03],
                          "out_of_range": [0, 0, 900]})  # C: 3% undocumented codes (counted as missing too)
    drift = quality_drift(before, after, rows, rows).set_index("feature")
    assert drift["missing_flag"].to_dict() == {"A": False, "B": True, "C": False}
    assert drift["out_of_range_flag"].to_dict() == {"A": False, "B": False, "C": True}


def test_feature_bins_equal_the_two_step_edges_and_counts():
    """The one-pass table (codes counted) equals what a distributed engine builds from
    ``bin_edges`` and ``bin_counts_on``, for codes, flags, few non-whole values, deciles and
    an empty column, on all rows and on a subset."""
    rng = np.random.default_rng(3)
    n = 5_000
    matrix = pd.DataFrame({
        "code": rng.integers(1, 10, n).astype(np.float32),
        "flag": rng.integers(0, 2, n).astype(np.float32),
        "halves": (rng.integers(0, 6, n) / 2).astype(np.float32),
        "many_codes": rng.integers(0, 50, n).astype(np.float32),
        "amount": rng.normal(size=n).astype(np.float32),
        "empty": np.full(n, np.nan, dtype=np.float32),
    })
    matrix.loc[::4, "code"] = np.nan
    for rows in (None, np.sort(rng.choice(n, 1_000, replace=False))):
        edges = bin_edges(matrix, rows)
        pd.testing.assert_frame_equal(feature_bins(matrix, rows), bins_table(edges, bin_counts_on(edges, matrix, rows)),
                                      check_exact=True)
