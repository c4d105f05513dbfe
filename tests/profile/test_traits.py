"""Traits, names and pen portraits on hand-made data with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.prepare.cleaning import CleanColumn
from analysis.profile.traits import regroup_sums, top_traits, trait_sums, trait_table

COLUMNS = {
    "AGE": CleanColumn("AGE", "AGE", "scale", "Age band", "younger", "older"),
    "SAVER": CleanColumn("SAVER", "SAVER", "scale", "Money saver", "keen savers", "not savers"),
    "RURAL": CleanColumn("RURAL", "RURAL", "flag", "Rural", label="in a rural area"),
}


def frame() -> tuple[pd.DataFrame, np.ndarray]:
    """Segment 0: old keen savers; segment 1: young non-savers, more rural."""
    matrix = pd.DataFrame({
        "AGE": [4, 4, 4, 1, 1, 1],
        "SAVER": [1, 1, 2, 5, 5, 4],
        "RURAL": [0, 0, 0, 1, 1, np.nan],  # NaN ignored, not imputed
    }, dtype=np.float32)
    return matrix, np.array([0, 0, 0, 1, 1, 1])


def test_effect_is_standardised_difference_from_population():
    """Standardised by the population's spread; flags also get their share difference."""
    matrix, labels = frame()
    traits = trait_table(matrix, labels, COLUMNS).set_index(["segment", "column"])
    # AGE: mean 2.5, population sd 1.5; segment 0 mean 4 -> d = 1.0
    assert traits.loc[(0, "AGE"), "effect"] == pytest.approx(1.0)
    assert traits.loc[(1, "AGE"), "effect"] == pytest.approx(-1.0)
    # RURAL: known values 0,0,0,1,1 -> mean 0.4, sd 0.4899; segment 1 mean 1 -> d = 1.2247
    assert traits.loc[(1, "RURAL"), "effect"] == pytest.approx(0.6 / np.sqrt(0.24))
    assert traits.loc[(0, "AGE"), "phrase"] == "older"
    assert traits.loc[(0, "SAVER"), "phrase"] == "keen savers"  # low code = strong saver
    assert traits.loc[(1, "RURAL"), "phrase"] == "in a rural area"  # no "more often" prefix
    assert traits.loc[(1, "RURAL"), "kind"] == "flag"
    assert traits.loc[(1, "RURAL"), "difference"] == pytest.approx(0.6)  # 100% vs 40%: 60 points
    assert traits.loc[(0, "AGE"), "difference"] == pytest.approx(1.0)  # scales: the standardised one


def test_top_traits_rank_by_absolute_effect():
    matrix, labels = frame()
    traits = trait_table(matrix, labels, COLUMNS)
    # segment 1: RURAL d = 1.22, AGE d = -1.0, SAVER d = (4.667 - 3) / sqrt(3) = 0.96
    top = top_traits(traits, 1, n=2)
    assert list(top["column"]) == ["RURAL", "AGE"]
    assert list(top_traits(traits, 1)["column"]) == ["RURAL", "AGE", "SAVER"]


def test_traits_below_the_minimum_effect_are_not_listed():
    # segment means 1/51 and 2/51 around 3/102 with sd 0.169: d = -0.058 and +0.058
    matrix = pd.DataFrame({"AGE": np.r_[np.zeros(50), 1, np.zeros(49), 1, 1]}, dtype=np.float32)
    traits = trait_table(matrix, np.r_[np.zeros(51), np.ones(51)].astype(int), COLUMNS)
    assert traits["effect"].abs().max() == pytest.approx(0.058, abs=0.001)
    assert top_traits(traits, 0).empty and top_traits(traits, 1).empty


def test_a_flag_counts_as_a_trait_only_where_the_segment_has_it_more_often():
    matrix, labels = frame()
    traits = trait_table(matrix, labels, COLUMNS)
    assert "RURAL" not in set(top_traits(traits, 0)["column"])  # segment 0 has it less often
    assert "RURAL" in set(top_traits(traits, 1)["column"])


def test_set_aside_rows_count_in_the_reference_not_in_a_segment():
    matrix = pd.DataFrame({"AGE": [1, 3, 2, 2, 4, 4]}, dtype=np.float32)
    labels = np.array([0, 0, 1, 1, -1, -1])
    traits = trait_table(matrix, labels, COLUMNS).set_index(["segment", "column"])
    assert sorted(traits.index.get_level_values("segment").unique()) == [0, 1]
    # population mean 16/6, sd sqrt(50/6 - (16/6)^2) = 1.1055; segment 1 mean 2 -> d = -0.603
    assert traits.loc[(1, "AGE"), "population_mean"] == pytest.approx(16 / 6)
    assert traits.loc[(1, "AGE"), "effect"] == pytest.approx((2 - 16 / 6) / np.sqrt(50 / 6 - (16 / 6) ** 2))


def test_group_sums_added_up_from_types_equal_sums_of_the_group_labels():
    """Types 0, 2 -> group 0, types 1, 3 -> group 1; the set-aside rows (-1) stay their own group."""
    rng = np.random.default_rng(2)
    values = rng.normal(size=(3_000, 4)).astype(np.float32)
    values[::5, 1] = np.nan
    types = rng.integers(-1, 4, size=3_000)
    type_group = np.array([0, 1, 0, 1])
    groups = np.where(types >= 0, type_group[np.maximum(types, 0)], -1)
    direct = trait_sums(values, groups, 2)
    added = regroup_sums(trait_sums(values, types, 4), type_group, 2)
    np.testing.assert_array_equal(added[0], direct[0])  # counts: exactly
    np.testing.assert_allclose(added, direct, rtol=1e-12)
    np.testing.assert_array_equal(added[:, 2], direct[:, 2])  # the set-aside group: the same rows, the same sums


def test_regroup_sums_leaves_out_an_empty_type_of_a_group_past_k():
    """With a kept model a type can be empty; its group may then be past the groups counted."""
    values = np.array([[1.0], [2.0], [4.0]], dtype=np.float32)
    types = np.array([0, 1, -1])
    sums = trait_sums(values, types, 3)  # type 2 has no rows
    added = regroup_sums(sums, np.array([0, 0, 1]), 1)
    np.testing.assert_array_equal(added[:, 0, 0], [2, 3, 5])
    np.testing.assert_array_equal(added[:, 1, 0], [1, 4, 16])  # set aside
