"""Each cleaning step on small hand-made frames with exact expected outputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.prepare import cleaning
from analysis.prepare.cleaning import apply_cleaning, decode, fit_cleaning, log_table
from analysis.settings import AnalysisSettings
from analysis.inputs.schema import load_schema

NAN = np.nan
NAMES = ["ALTERSKATEGORIE_GROB", "ANREDE_KZ", "CJT_GESAMTTYP", "GREEN_AVANTGARDE",
         "PRAEGENDE_JUGENDJAHRE", "TITEL_KZ", "KBA13_ANZAHL_PKW", "OST_WEST_KZ", "WOHNLAGE",
         "CAMEO_DEU_2015", "CAMEO_DEUG_2015", "CAMEO_INTL_2015", "PLZ8_BAUMAX"]


@pytest.fixture
def features():
    schema = load_schema()
    return [schema[name] for name in NAMES]


def population() -> pd.DataFrame:
    """Six people. Row 5 misses almost everything; TITEL_KZ is mostly coded missing (0)."""
    f = np.float32
    return pd.DataFrame({
        "ALTERSKATEGORIE_GROB": np.array([1, 2, 9, 4, 3, NAN], f),    # 9 is a missing code
        "ANREDE_KZ": np.array([1, 2, 2, 1, 2, NAN], f),
        "CJT_GESAMTTYP": np.array([1, 3, 3, 0, 6, NAN], f),            # 0 is a missing code
        "GREEN_AVANTGARDE": np.array([0, 1, 0, 0, 1, 0], f),
        "PRAEGENDE_JUGENDJAHRE": np.array([14, 15, 3, 0, 7, NAN], f),  # 0 missing; 15, 7 avant-garde
        "TITEL_KZ": np.array([0, 0, 0, 1, 0, 0], f),
        "KBA13_ANZAHL_PKW": np.array([500, 2400, 10, 0, 700, NAN], f),  # 2400 above the range
        "OST_WEST_KZ": pd.Categorical(["W", "O", "W", "O", "W", "-1"]),
        "WOHNLAGE": np.array([1, 7, 0, 8, 5, NAN], f),
        "CAMEO_DEU_2015": pd.Categorical(["8A", "1B", "XX", "4C", "2D", None]),
        "CAMEO_DEUG_2015": pd.Categorical(["8", "1", "X", "4", "2", None]),
        "CAMEO_INTL_2015": pd.Categorical(["51", "14", "24", "33", "XX", None]),
        "PLZ8_BAUMAX": np.array([1, 5, 4, 2, -1, NAN], f),             # -1 missing; 5 business
    })


def fit(features, **settings):
    """Fit with a 40% column limit: in six rows one blank is already 17%."""
    return fit_cleaning(population(), features, AnalysisSettings(**{"column_missing_threshold": 0.4, **settings}))


def column(table, name):
    return table.matrix[name].to_numpy().tolist()


def assert_same(actual, expected):
    np.testing.assert_array_equal(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float))


def test_decode_turns_codes_and_blanks_to_nan_and_counts_them(features):
    decoded, quality = decode(population(), features)
    assert_same(decoded["ALTERSKATEGORIE_GROB"], [1, 2, NAN, 4, 3, NAN])
    assert quality.loc["ALTERSKATEGORIE_GROB"].tolist()[:3] == [1, 1, 0]
    assert_same(decoded["KBA13_ANZAHL_PKW"], [500, NAN, 10, 0, 700, NAN])
    assert quality.loc["KBA13_ANZAHL_PKW", "out_of_range"] == 1
    assert_same(decoded["CAMEO_DEUG_2015"], [8, 1, NAN, 4, 2, NAN])
    assert_same(decoded["CAMEO_INTL_2015"], [51, 14, 24, 33, NAN, NAN])
    region = decoded["OST_WEST_KZ"].astype(object)
    assert region.isna().tolist() == [False, False, False, False, False, True]
    assert region[:5].tolist() == ["W", "O", "W", "O", "W"]
    assert quality.loc["OST_WEST_KZ"].tolist()[:3] == [0, 1, 0]
    assert quality.loc["TITEL_KZ", "missing_share"] == pytest.approx(5 / 6)


def test_unknown_codes_become_missing_and_are_counted(features):
    raw = population()
    raw["ANREDE_KZ"] = np.array([1, 2, 7, 1, 2, NAN], np.float32)
    raw["CAMEO_DEU_2015"] = pd.Categorical(["8A", "ZZ", "XX", "4C", "2D", None])
    decoded, quality = decode(raw, features)
    assert_same(decoded["ANREDE_KZ"], [1, 2, NAN, 1, 2, NAN])
    assert quality.loc["ANREDE_KZ", "out_of_range"] == 1
    assert quality.loc["CAMEO_DEU_2015", "out_of_range"] == 1


def entry(plan, column, decision):
    """The one log entry about this column with this decision."""
    found = [e for e in plan.log if e["column"] == column and e["decision"] == decision]
    assert len(found) == 1, (column, decision, plan.log)
    return found[0]


def test_columns_above_the_missing_threshold_are_dropped_with_reason(features):
    plan, _ = fit(features)
    assert plan.dropped["TITEL_KZ"] == cleaning.TOO_MUCH_MISSING
    assert not any(c.source == "TITEL_KZ" for c in plan.columns)
    assert entry(plan, "TITEL_KZ", cleaning.DROPPED) == {
        "step": cleaning.COLUMN_MISSINGNESS, "column": "TITEL_KZ", "decision": cleaning.DROPPED,
        "reason": cleaning.TOO_MUCH_MISSING, "missing_share": pytest.approx(5 / 6), "limit": 0.4}


def test_redundant_columns_are_dropped_naming_what_carries_them(features):
    plan, _ = fit(features)
    assert plan.dropped["CAMEO_DEU_2015"] == cleaning.NESTED_DETAIL
    logged = entry(plan, "CAMEO_DEU_2015", cleaning.DROPPED)
    assert logged["duplicate_of"].split(",") == ["CAMEO_DEUG_2015", "CAMEO_INTL_2015"]
    assert logged["n_levels"] == 44  # the lifestyle types in the schema


def test_set_aside_rows_are_logged_with_share_and_limit(features):
    plan, _ = fit(features, row_missing_threshold=0.3)
    logged = entry(plan, "", cleaning.SET_ASIDE_ROWS)
    assert logged["reason"] == cleaning.ROWS_MISSING_TOO_MUCH
    assert logged["set_aside_share"] == pytest.approx(1 / 6) and logged["limit"] == 0.3


def test_log_entries_use_the_vocabulary_and_make_a_flat_table(features):
    plan, _ = fit(features)
    assert {e["step"] for e in plan.log} <= set(cleaning.STEPS)
    assert {e["decision"] for e in plan.log} <= set(cleaning.DECISIONS)
    assert {e["reason"] for e in plan.log} <= set(cleaning.REASONS)
    assert entry(plan, "ANREDE_KZ", cleaning.FLAG)["levels"] == "2"  # code 2 (woman) becomes 1
    assert entry(plan, "OST_WEST_KZ", cleaning.FLAG)["levels"] == "W"
    assert entry(plan, "CJT_GESAMTTYP", cleaning.ONE_HOT)["n_columns"] == 3
    assert entry(plan, "CAMEO_DEUG_2015", cleaning.SCALE)["n_levels"] == 9
    table = log_table(plan.log)
    assert list(table.columns) == ["step", "column", "decision", "reason", *cleaning.LOG_FACTS]
    assert len(table) == len(plan.log)
    assert all(table[c].dtype == np.float64 for c in cleaning.LOG_NUMBERS)
    row = table[(table["column"] == "TITEL_KZ")].iloc[0]
    assert row["missing_share"] == pytest.approx(5 / 6) and np.isnan(row["agreement"])
    assert row["duplicate_of"] == "" and row["levels"] == ""


def test_rows_missing_too_much_are_set_aside_not_dropped(features):
    plan, table = fit(features)
    assert table.set_aside.tolist() == [False, False, False, False, False, True]
    assert len(table.matrix) == 6
    kept_sources = len(plan.kept_sources)
    assert table.row_missing_share[5] == pytest.approx(10 / kept_sources)
    assert table.row_missing_share[0] == 0


def test_binary_categoricals_become_flags(features):
    _, table = fit(features)
    assert_same(column(table, "ANREDE_KZ"), [0, 1, 1, 0, 1, NAN])
    assert_same(column(table, "OST_WEST_KZ"), [1, 0, 1, 0, 1, NAN])


def test_multi_level_categoricals_are_one_hot_with_population_levels(features):
    plan, table = fit(features)
    assert plan.levels["CJT_GESAMTTYP"] == (1.0, 3.0, 6.0)
    assert_same(column(table, "CJT_GESAMTTYP_1"), [1, 0, 0, NAN, 0, NAN])
    assert_same(column(table, "CJT_GESAMTTYP_3"), [0, 1, 1, NAN, 0, NAN])
    assert_same(column(table, "CJT_GESAMTTYP_6"), [0, 0, 0, NAN, 1, NAN])


def test_customers_get_exactly_the_population_columns(features):
    plan, table = fit(features)
    customers = population().iloc[[0, 1]].reset_index(drop=True)  # CJT level 6 absent here
    customers.loc[0, "CJT_GESAMTTYP"] = 2  # a level the population never had
    cleaned = apply_cleaning(plan, customers)
    assert list(cleaned.matrix.columns) == list(table.matrix.columns)
    assert_same(column(cleaned, "CJT_GESAMTTYP_6"), [0, 0])
    assert_same([column(cleaned, f"CJT_GESAMTTYP_{x}")[0] for x in (1, 3, 6)], [0, 0, 0])


def test_mixed_features_are_engineered(features):
    plan, table = fit(features)
    assert_same(column(table, "PRAEGENDE_JUGENDJAHRE_DECADE"), [90, 90, 50, NAN, 60, NAN])
    assert_same(column(table, "CAMEO_INTL_2015_WEALTH"), [5, 1, 2, 3, NAN, NAN])
    assert_same(column(table, "CAMEO_INTL_2015_LIFE_STAGE"), [1, 4, 4, 3, NAN, NAN])
    assert_same(column(table, "WOHNLAGE_QUALITY"), [1, NAN, NAN, NAN, 5, NAN])
    assert_same(column(table, "WOHNLAGE_RURAL"), [0, 1, 0, 1, 0, NAN])
    assert_same(column(table, "PLZ8_BAUMAX_HOMES"), [1, NAN, 4, 2, NAN, NAN])
    assert_same(column(table, "PLZ8_BAUMAX_BUSINESS"), [0, 1, 0, 0, NAN, NAN])
    assert_same(column(table, "CAMEO_DEUG_2015"), [8, 1, NAN, 4, 2, NAN])


def test_movement_flag_is_not_duplicated_when_green_avantgarde_is_kept(features):
    plan, table = fit(features)
    assert "PRAEGENDE_JUGENDJAHRE_AVANTGARDE" not in table.matrix
    logged = entry(plan, "PRAEGENDE_JUGENDJAHRE", cleaning.PART_NOT_KEPT)
    assert logged["reason"] == cleaning.DUPLICATE and logged["duplicate_of"] == "GREEN_AVANTGARDE"
    assert logged["agreement"] == 1.0  # rows 0-2 and 4 know both, and agree
    assert entry(plan, "PRAEGENDE_JUGENDJAHRE", cleaning.SPLIT)["n_columns"] == 1


def test_movement_flag_is_kept_when_green_avantgarde_is_dropped(features):
    raw = population()
    raw["GREEN_AVANTGARDE"] = np.array([NAN, NAN, NAN, NAN, 1, 0], np.float32)
    plan, table = fit_cleaning(raw, features, AnalysisSettings(column_missing_threshold=0.4))
    assert "GREEN_AVANTGARDE" in plan.dropped
    assert_same(column(table, "PRAEGENDE_JUGENDJAHRE_AVANTGARDE"), [0, 1, 0, NAN, 1, NAN])
    assert entry(plan, "PRAEGENDE_JUGENDJAHRE", cleaning.SPLIT)["n_columns"] == 2


def test_lebensphase_is_dropped_with_reason():
    schema = load_schema()
    feats = [schema["LP_LEBENSPHASE_FEIN"], schema["ANREDE_KZ"]]
    raw = pd.DataFrame({"LP_LEBENSPHASE_FEIN": np.array([1, 2, 3], np.float32),
                        "ANREDE_KZ": np.array([1, 2, 1], np.float32)})
    plan, table = fit_cleaning(raw, feats, AnalysisSettings())
    assert plan.dropped["LP_LEBENSPHASE_FEIN"] == cleaning.MIXED_CODE
    assert "LP_FAMILIE_GROB" in entry(plan, "LP_LEBENSPHASE_FEIN", cleaning.DROPPED)["duplicate_of"].split(",")
    assert list(table.matrix.columns) == ["ANREDE_KZ"]


def test_words_follow_each_scale_direction(features):
    plan, _ = fit(features)
    wealth = plan.column("CAMEO_INTL_2015_WEALTH")
    assert wealth.words(-1) == "wealthier households"  # low tens digit = wealthy
    assert plan.column("WOHNLAGE_RURAL").words(+1) == "more often in a rural area"


def test_thresholds_are_settings(features):
    plan, table = fit(features, column_missing_threshold=0.9, row_missing_threshold=0.95)
    assert "TITEL_KZ" not in plan.dropped
    assert not table.set_aside.any()


def test_rare_levels_get_no_column():
    schema = load_schema()
    values = np.array([1.0] * 300 + [3.0] * 100 + [6.0], np.float32)  # level 6: 1 of 401 < 0.5%
    raw = pd.DataFrame({"CJT_GESAMTTYP": values})
    plan, table = fit_cleaning(raw, [schema["CJT_GESAMTTYP"]], AnalysisSettings())
    assert list(table.matrix.columns) == ["CJT_GESAMTTYP_1", "CJT_GESAMTTYP_3"]
    assert table.matrix.iloc[-1].tolist() == [0.0, 0.0]
    logged = entry(plan, "CJT_GESAMTTYP", cleaning.RARE_LEVELS_NO_COLUMN)
    assert (logged["reason"], logged["levels"], logged["limit"]) == (cleaning.RARE_LEVELS, "6", 0.005)


def test_long_tailed_counts_are_log_transformed(features):
    _, table = fit(features)
    assert column(table, "KBA13_ANZAHL_PKW")[:3] == pytest.approx([np.log1p(500), NAN, np.log1p(10)], nan_ok=True)


def test_code_masks_match_isin_per_set_with_the_first_set_winning():
    """Whole numbers in range hit the table; fractions, NaN, inf and numbers outside never do."""
    numbers = np.array([-1, 0, 1, 2, 3, 9, 2.5, np.nan, np.inf, -np.inf, -2, 10, 0.0, 1e9], dtype=np.float32)
    missing, valid = cleaning._code_masks(numbers, ("-1", "0", "9"), ("1", "2", "3", "9"))
    np.testing.assert_array_equal(missing, np.isin(numbers, [-1, 0, 9]))
    np.testing.assert_array_equal(valid, np.isin(numbers, [1, 2, 3]))  # 9 counts as missing only
    np.testing.assert_array_equal(cleaning._is_code(numbers, ("2", "10")), np.isin(numbers, [2, 10]))
    assert not cleaning._is_code(numbers, ()).any()
    assert [m.any() for m in cleaning._code_masks(numbers, (), ("3",))] == [False, True]
