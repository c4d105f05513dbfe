"""The cleaning log in words: every code the analysis can log has words, and the words state the
entry's own numbers."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from analysis.constants import RESULTS_FILE
from analysis.prepare import cleaning
from analysis.prepare.cleaning import fit_cleaning, log_table
from analysis.inputs.schema import load_schema
from analysis.present import cleaning_words
from analysis.present.cleaning_words import decision_words, dropped_reasons, log_rows, reason_words, step_words
from analysis.present.words import cleaning_log_table, dropped_table
from analysis.results import Results
from analysis.settings import AnalysisSettings

# One entry per reason code, with the facts the analysis logs for it (and the numbers the words must show).
EXAMPLES = {
    cleaning.TOO_MUCH_MISSING: ({"column": "KK_KUNDENTYP", "decision": "dropped", "missing_share": 0.6612,
                                 "limit": 0.3}, ["66.1%", "30%"]),
    cleaning.ROWS_MISSING_TOO_MUCH: ({"column": "", "decision": "set_aside", "set_aside_share": 0.0969,
                                      "limit": 0.25}, ["9.7%", "25%"]),
    cleaning.FINER_VERSION: ({"column": "LP_FAMILIE_FEIN", "decision": "dropped",
                              "duplicate_of": "LP_FAMILIE_GROB"}, ["LP_FAMILIE_GROB"]),
    cleaning.NESTED_DETAIL: ({"column": "CAMEO_DEU_2015", "decision": "dropped", "n_levels": 44,
                              "duplicate_of": "CAMEO_DEUG_2015,CAMEO_INTL_2015"},
                             ["44", "CAMEO_DEUG_2015", "CAMEO_INTL_2015"]),
    cleaning.MIXED_CODE: ({"column": "LP_LEBENSPHASE_FEIN", "decision": "dropped",
                           "duplicate_of": "LP_FAMILIE_GROB,LP_STATUS_GROB"}, ["LP_FAMILIE_GROB", "LP_STATUS_GROB"]),
    cleaning.NO_SPLIT_DEFINED: ({"column": "LP_LEBENSPHASE_GROB", "decision": "dropped"}, []),
    cleaning.DUPLICATE: ({"column": "PRAEGENDE_JUGENDJAHRE", "decision": "part_not_kept",
                          "duplicate_of": "GREEN_AVANTGARDE", "agreement": 0.987}, ["98.7%", "GREEN_AVANTGARDE"]),
    cleaning.RARE_LEVELS: ({"column": "CJT_GESAMTTYP", "decision": "rare_levels_no_column", "levels": "5,6",
                            "limit": 0.005}, ["0.5%", "5", "6"]),
    cleaning.UNORDERED_LEVELS: ({"column": "CJT_GESAMTTYP", "decision": "one_hot", "n_columns": 7}, ["7"]),
    cleaning.TWO_LEVELS: ({"column": "ANREDE_KZ", "decision": "flag", "levels": "2"}, ["1"]),
    cleaning.ORDERED_LEVELS: ({"column": "CAMEO_DEUG_2015", "decision": "scale", "n_levels": 9}, ["9"]),
    cleaning.LONG_TAIL: ({"column": "ANZ_PERSONEN", "decision": "log_transform"}, []),
    cleaning.DECADE_OF_YOUTH: ({"column": "PRAEGENDE_JUGENDJAHRE", "decision": "split", "n_columns": 1}, []),
    cleaning.WEALTH_AND_LIFE_STAGE: ({"column": "CAMEO_INTL_2015", "decision": "split", "n_columns": 2}, []),
    cleaning.QUALITY_AND_RURAL: ({"column": "WOHNLAGE", "decision": "split", "n_columns": 2}, []),
    cleaning.HOME_SIZE_AND_BUSINESS: ({"column": "PLZ8_BAUMAX", "decision": "split", "n_columns": 2}, []),
}


def example(reason: str) -> dict:
    return {"step": "re_encoding", "reason": reason, **EXAMPLES[reason][0]}


def numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?%?", text)


def test_every_code_the_analysis_can_log_has_words_and_no_words_are_stale():
    assert set(cleaning_words.STEP_WORDS) == set(cleaning.STEPS)
    assert set(cleaning_words.DECISION_WORDS) == set(cleaning.DECISIONS)
    assert set(cleaning_words.REASON_WORDS) == set(cleaning.REASONS)
    assert set(EXAMPLES) == set(cleaning.REASONS)  # a new reason code needs an example here


@pytest.mark.parametrize("reason", cleaning.REASONS)
def test_each_reason_renders_with_its_facts_and_states_its_numbers(reason):
    entry = example(reason)
    said = reason_words(entry)
    assert "{" not in said and reason not in said
    for wanted in EXAMPLES[reason][1]:
        assert wanted in said, (wanted, said)
    assert decision_words(entry) and step_words(entry["step"])


def test_shares_and_limits_are_the_entry_numbers():
    said = numbers(reason_words({"reason": cleaning.TOO_MUCH_MISSING, "column": "AGER_TYP",
                                 "missing_share": 0.4417, "limit": 0.35}))
    assert said == ["44.2%", "35%"]
    aside = numbers(reason_words({"reason": cleaning.ROWS_MISSING_TOO_MUCH, "column": "",
                                  "set_aside_share": 0.26, "limit": 0.2}))
    assert aside == ["26.0%", "20%"]
    assert numbers(reason_words({"reason": cleaning.UNORDERED_LEVELS, "column": "FINANZTYP", "n_columns": 6.0})) == ["6"]
    assert decision_words({"decision": cleaning.SPLIT, "n_columns": 2.0}).endswith("2 columns")
    assert decision_words({"decision": cleaning.SPLIT, "n_columns": 1}).endswith("1 column")


def test_labels_come_from_the_schema():
    schema = load_schema()
    flag = reason_words(example(cleaning.TWO_LEVELS))
    assert f"“{schema['ANREDE_KZ'].label('2')}”" in flag
    scale = reason_words(example(cleaning.ORDERED_LEVELS))
    codes = schema["CAMEO_DEUG_2015"].codes
    assert scale.index(codes["1"]) < scale.index(codes["9"])  # from the first code to the last
    rare = reason_words(example(cleaning.RARE_LEVELS))
    assert schema["CJT_GESAMTTYP"].label("5") in rare and schema["CJT_GESAMTTYP"].label("6") in rare


def test_unknown_codes_and_missing_facts_are_refused():
    with pytest.raises(ValueError, match="no-such-reason"):
        reason_words({"reason": "no-such-reason", "column": "X"})
    with pytest.raises(ValueError, match="missing_share"):
        reason_words({"reason": cleaning.TOO_MUCH_MISSING, "column": "AGER_TYP", "limit": 0.3})


def population(rows: int = 400) -> tuple[pd.DataFrame, list]:
    """A small seeded population over a few features that produces most kinds of log entry."""
    rng = np.random.default_rng(0)
    schema = load_schema()
    names = ["ANREDE_KZ", "GREEN_AVANTGARDE", "PRAEGENDE_JUGENDJAHRE", "TITEL_KZ", "CJT_GESAMTTYP",
             "ANZ_PERSONEN", "CAMEO_DEUG_2015", "CAMEO_DEU_2015", "LP_FAMILIE_FEIN", "WOHNLAGE"]
    raw = pd.DataFrame({
        "ANREDE_KZ": rng.integers(1, 3, rows).astype(np.float32),
        "GREEN_AVANTGARDE": rng.integers(0, 2, rows).astype(np.float32),
        "PRAEGENDE_JUGENDJAHRE": rng.integers(1, 16, rows).astype(np.float32),
        "TITEL_KZ": np.where(rng.random(rows) < 0.9, 0, 1).astype(np.float32),
        "CJT_GESAMTTYP": np.r_[rng.integers(1, 6, rows - 1), 6].astype(np.float32),  # 6 is rare
        "ANZ_PERSONEN": rng.integers(0, 6, rows).astype(np.float32),
        "CAMEO_DEUG_2015": pd.Categorical(rng.integers(1, 10, rows).astype(str)),
        "CAMEO_DEU_2015": pd.Categorical(rng.choice(["1A", "2B", "8A"], rows)),
        "LP_FAMILIE_FEIN": rng.integers(1, 12, rows).astype(np.float32),
        "WOHNLAGE": rng.choice([1, 3, 5, 7], rows).astype(np.float32),
    })
    return raw, [schema[name] for name in names]


@pytest.fixture
def plan():
    raw, features = population()
    fitted, _ = fit_cleaning(raw, features, AnalysisSettings())
    return fitted


def test_the_table_and_the_json_log_read_the_same(plan):
    """The parquet table (NaN and "" fillers) and results.json (only the facts) give the same words."""
    table_rows = log_table(plan.log).to_dict("records")
    assert log_rows(table_rows) == log_rows(plan.log)
    assert len(log_rows(plan.log)) == len(plan.log)
    kinds = {e["reason"] for e in plan.log}
    assert {cleaning.TOO_MUCH_MISSING, cleaning.RARE_LEVELS, cleaning.DUPLICATE, cleaning.TWO_LEVELS,
            cleaning.ORDERED_LEVELS, cleaning.NESTED_DETAIL, cleaning.FINER_VERSION} <= kinds


def test_dropped_reasons_follow_the_plan(plan):
    words = dropped_reasons(plan.log)
    assert list(words) == list(plan.dropped)
    titel = next(e for e in plan.log if e["column"] == "TITEL_KZ")
    assert f"{titel['missing_share']:.1%}" in words["TITEL_KZ"] and "30%" in words["TITEL_KZ"]


def test_the_report_tables_show_words_with_the_numbers(plan, tmp_path):
    (tmp_path / "tables").mkdir()
    log_table(plan.log).to_parquet(tmp_path / "tables" / "cleaning_log.parquet", index=False)
    summary = {"cleaning": {"dropped": plan.dropped, "log": plan.log}}
    (tmp_path / RESULTS_FILE).write_text(json.dumps(summary), encoding="utf-8")
    results = Results(tmp_path)
    dropped = dropped_table(results)
    assert [c.strip() for c in dropped.splitlines()[0].strip("|").split("|")] == ["Feature", "Meaning",
                                                                                  "Why it was dropped"]
    assert len(dropped.splitlines()) == 2 + len(plan.dropped)
    every = cleaning_log_table(results)
    assert len(every.splitlines()) == 2 + len(plan.log)
    codes = [c for c in (*cleaning.STEPS, *cleaning.DECISIONS, *cleaning.REASONS) if "_" in c]
    assert not [code for code in codes if code in every]  # words, not codes
    aside = next(e for e in plan.log if e["decision"] == cleaning.SET_ASIDE_ROWS)
    assert f"{aside['set_aside_share']:.1%}" in every


def test_the_log_table_lists_each_step_and_each_feature_together(plan):
    assert set(cleaning_words.STEP_ORDER) == set(cleaning.STEPS)
    rows = log_rows(plan.log)
    steps = [r["Step"] for r in rows]
    blocks = [s for i, s in enumerate(steps) if i == 0 or steps[i - 1] != s]
    assert blocks == [step_words(s) for s in cleaning_words.STEP_ORDER if step_words(s) in steps]
    features = [(r["Step"], r["Feature"]) for r in rows]
    runs = [f for i, f in enumerate(features) if i == 0 or features[i - 1] != f]
    assert len(runs) == len(set(runs))  # a feature's decisions sit side by side
    cjt = [r["Decision"] for r in rows if r["Feature"] == "CJT_GESAMTTYP"]
    assert len(cjt) == 2  # its rare levels and its 0/1 columns, logged apart, shown together
