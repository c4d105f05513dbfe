"""Traits, names and pen portraits on hand-made data with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.prepare.cleaning import CleanColumn
from analysis.profile.traits import (regroup_sums, split_segments, strongest, top_traits, trait_sums, trait_table,
                                     traits_from_sums)

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


def random_traits(seed: int, segments: int = 4, columns: int = 40) -> pd.DataFrame:
    """A trait table with what makes ranking tricky: tied effects (one decimal), NaN effects,
    flags on both sides, repeated phrases and segments in no particular row order."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(scale=0.6, size=(segments, columns)).round(1)
    effect[rng.random(effect.shape) < 0.05] = np.nan
    kind = rng.choice(["scale", "flag"], size=columns)
    phrase = rng.choice([f"phrase {i}" for i in range(columns // 3)], size=columns)
    table = pd.DataFrame({"segment": np.repeat(np.arange(segments), columns), "column": np.tile(
        [f"C{i}" for i in range(columns)], segments), "effect": effect.ravel(), "kind": np.tile(kind, segments),
        "phrase": np.tile(phrase, segments), "difference": rng.normal(size=segments * columns)})
    return table.sample(frac=1, random_state=seed)


def top_traits_by_definition(traits: pd.DataFrame, segment: int, n: int) -> pd.DataFrame:
    """``top_traits`` as first written: DataFrame filters, pandas' sort, drop_duplicates."""
    rows = traits[traits["segment"] == segment]
    rows = rows[(rows["kind"] != "flag") | (rows["effect"] > 0)]
    rows = rows.reindex(rows["effect"].abs().sort_values(ascending=False).index)
    return rows[rows["effect"].abs() >= 0.2].drop_duplicates("phrase").head(n)


@pytest.mark.parametrize("seed", range(5))
def test_top_traits_from_arrays_equal_the_dataframe_definition(seed):
    """Same rows in the same order, ties and NaN included, whether asked of the table or of a split."""
    traits = random_traits(seed)
    parts = split_segments(traits, [0, 1, 2, 3, 9])
    for segment in range(4):
        for n in (3, 6, 40):
            expected = top_traits_by_definition(traits, segment, n)
            pd.testing.assert_frame_equal(top_traits(traits, segment, n), expected)
            rows = parts[segment]
            assert list(rows["column"][strongest(rows, n)]) == list(expected["column"])
    assert all(len(values) == 0 for values in parts[9].values())  # a segment with no rows: empty arrays


def traits_from_sums_by_definition(sums: np.ndarray, names: list[str], columns: dict[str, CleanColumn]) -> pd.DataFrame:
    """The text columns of ``traits_from_sums`` as first written: one lookup per row of the table."""
    table = traits_from_sums(sums, names, columns)[["segment", "column", "effect", "segment_mean", "population_mean"]]
    table["kind"] = [columns[c].kind for c in table["column"]]
    flag = (table["kind"] == "flag").to_numpy()
    table["difference"] = np.where(flag, table["segment_mean"] - table["population_mean"], table["effect"])
    table["phrase"] = [columns[c].label if columns[c].kind == "flag" and e > 0 else columns[c].words(e)
                       for c, e in zip(table["column"], table["effect"])]
    table["description"] = [columns[c].description for c in table["column"]]
    table["source"] = [columns[c].source for c in table["column"]]
    return table


def test_trait_table_text_columns_equal_the_row_by_row_definition():
    """Phrases by the effect's side (0 and NaN read as below), descriptions and sources, row by row."""
    rng = np.random.default_rng(4)
    labels = rng.integers(-1, 5, size=500)
    values = np.column_stack([rng.integers(1, 5, size=500), np.full(500, 3),  # SAVER constant: effect 0
                              rng.random(500) > 0.6]).astype(np.float32)
    values[labels == 3, 0] = np.nan  # segment 3 unknown on AGE: NaN effect
    sums = trait_sums(values, labels, 5)
    table = traits_from_sums(sums, list(COLUMNS), COLUMNS)
    assert table["effect"].isna().any() and (table["effect"] == 0).any()
    assert (table["effect"] > 0).any() and (table["effect"] < 0).any()
    pd.testing.assert_frame_equal(table, traits_from_sums_by_definition(sums, list(COLUMNS), COLUMNS))
