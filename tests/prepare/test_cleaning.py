"""Each cleaning step on small hand-made frames with exact expected outputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.prepare.cleaning import apply_cleaning, decode, fit_cleaning
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


def test_columns_above_the_missing_threshold_are_dropped_with_reason(features):
    plan, _ = fit(features)
    assert plan.dropped["TITEL_KZ"] == "83.3% missing in the population (limit 40%)"
    assert "CAMEO_DEU_2015" in plan.dropped  # redundant with the CAMEO group
    assert not any(c.source == "TITEL_KZ" for c in plan.columns)
    assert {"step": "column missingness", "column": "TITEL_KZ", "decision": "dropped",
            "reason": plan.dropped["TITEL_KZ"]} in plan.log


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
    entry = next(e for e in plan.log if e["decision"] == "movement flag not kept")
    assert entry["reason"] == "it equals GREEN_AVANTGARDE in 100.0% of rows"


def test_movement_flag_is_kept_when_green_avantgarde_is_dropped(features):
    raw = population()
    raw["GREEN_AVANTGARDE"] = np.array([NAN, NAN, NAN, NAN, 1, 0], np.float32)
    plan, table = fit_cleaning(raw, features, AnalysisSettings(column_missing_threshold=0.4))
    assert "GREEN_AVANTGARDE" in plan.dropped
    assert_same(column(table, "PRAEGENDE_JUGENDJAHRE_AVANTGARDE"), [0, 1, 0, NAN, 1, NAN])


def test_lebensphase_is_dropped_with_reason():
    schema = load_schema()
    feats = [schema["LP_LEBENSPHASE_FEIN"], schema["ANREDE_KZ"]]
    raw = pd.DataFrame({"LP_LEBENSPHASE_FEIN": np.array([1, 2, 3], np.float32),
                        "ANREDE_KZ": np.array([1, 2, 1], np.float32)})
    plan, table = fit_cleaning(raw, feats, AnalysisSettings())
    assert plan.dropped["LP_LEBENSPHASE_FEIN"].startswith("mixes household type, income and age")
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
    entry = next(e for e in plan.log if e["decision"] == "rare levels without a column")
    assert entry["reason"] == "levels 6 each hold under 0.5% of people with a known value"


def test_long_tailed_counts_are_log_transformed(features):
    _, table = fit(features)
    assert column(table, "KBA13_ANZAHL_PKW")[:3] == pytest.approx([np.log1p(500), NAN, np.log1p(10)], nan_ok=True)
