"""Words about groups and types, rendered from facts by the Jinja2 templates."""
from __future__ import annotations

import pytest

from analysis.present import segments as seg

ENTRY = {
    "id": 3, "code": "B2", "level": "type", "name": "Affluent Prudent Seniors", "set_aside": False,
    "group": 1, "group_code": "B", "population_share": 0.05, "customer_share": 0.12, "index": 240.0,
    "index_ci": [220.0, 262.0], "verdict": "over-represented", "game_plan": "core",
    "key_facts": {"age_band": {"column": "ALTERSKATEGORIE_GROB", "code": 4},
                  "income": {"column": "HH_EINKOMMEN_SCORE", "code": 2},
                  "density": {"column": "EWDICHTE", "code": None}, "online_affinity": {}},
    "portrait_traits": [
        {"column": "FINANZ_SPARER", "phrase": "keen savers", "kind": "scale", "effect": -0.9, "difference": -0.9},
        {"column": "SEMIO_TRADV", "phrase": "strongly traditional-minded", "kind": "scale", "effect": -0.6,
         "difference": -0.6},
        {"column": "ONLINE_AFFINITAET", "phrase": "offline-oriented", "kind": "scale", "effect": -0.7,
         "difference": -0.7}],
    "top_traits": [],
}


@pytest.mark.parametrize("effect, word", [(0.9, "a marked"), (-0.8, "a marked"), (0.6, "a clear"), (-0.3, "a small")])
def test_strength_words(effect, word):
    assert seg.strength(effect) == word


def test_portrait_is_plain_sentences_from_the_facts():
    text = seg.portrait(ENTRY)
    assert text == "Mostly older than 60, keen savers, strongly traditional-minded. Offline-oriented."


def test_summary_line_states_shares_index_and_verdict():
    assert seg.summary_line(ENTRY) == ("5.0% of the population and 12.0% of current customers "
                                       "(index 240, over-represented).")


def test_key_facts_row_reads_codes_as_their_labels():
    row = seg.key_facts_row(ENTRY)
    assert row["Typical age"] == "older than 60" and row["Income"] == "income: very high"
    assert row["Density"] == "–" and row["Online affinity"] == "–" and row["Index"] == "240"


def test_trait_chart_rows_are_sizes_with_flag_differences_in_points():
    entry = {"top_traits": [{"phrase": "in a rural area", "kind": "flag", "effect": 0.7, "difference": 0.12},
                            {"phrase": "keen savers", "kind": "scale", "effect": -0.5, "difference": -0.5}]}
    values, labels = seg.effect_rows(entry)
    assert list(values) == [0.7, 0.5] and labels == ["in a rural area (+12 pp)", "keen savers"]
