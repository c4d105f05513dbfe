"""Recommendation rules are data; these check how they are applied."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.profile.recommend import MAX_CHANNELS, MAX_THEMES, load_rules, recommend

RULES = {
    "verdict": {"over-represented": {"action": "Target", "text": "Mail them."},
                "under-represented": {"action": "Decide", "text": "Test first."}},
    "channel": [{"column": "ONLINE", "side": "high", "min_effect": 0.3, "channel": "email", "axis": "medium", "pole": "digital"},
                {"column": "ONLINE", "side": "low", "min_effect": 0.3, "channel": "catalogue", "axis": "medium", "pole": "print"}],
    "message": [{"column": "INCOME_SCORE", "side": "low", "min_effect": 0.3, "message": "premium"}],
}


def test_action_follows_the_verdict():
    rec = recommend("over-represented", pd.Series(dtype=float), RULES)
    assert (rec.action, rec.text) == ("Target", "Mail them.")
    assert rec.channels == () and rec.messages == ()


def test_rules_fire_on_side_and_effect_size_and_keep_their_reason():
    effects = pd.Series({"ONLINE": -0.5, "INCOME_SCORE": -0.31})  # low income score = high income
    rec = recommend("under-represented", effects, RULES)
    assert [c.what for c in rec.channels] == ["catalogue"]
    (premium,) = rec.messages
    assert (premium.what, premium.column, premium.side, premium.effect) == ("premium", "INCOME_SCORE", "low", pytest.approx(0.31))
    assert rec.to_dict()["messages"][0]["effect"] == 0.31


def test_small_effects_do_not_fire():
    rec = recommend("over-represented", pd.Series({"ONLINE": 0.29, "INCOME_SCORE": 0.9}), RULES)
    assert rec.channels == () and rec.messages == ()


def test_at_most_three_themes_ranked_by_effect_and_never_opposite_poles():
    """A segment that is young AND traditional fires both 'novelty' and 'tradition': only the stronger stays."""
    rules = load_rules()
    effects = pd.Series({"ALTERSKATEGORIE_GROB": -0.9, "SEMIO_TRADV": -0.6, "HH_EINKOMMEN_SCORE": -0.8,
                         "HH_EINKOMMEN_SCORE_X": 0.0, "FINANZ_SPARER": -0.7, "SEMIO_ERL": -0.5, "SEMIO_FAM": -0.4,
                         "FINANZ_MINIMALIST": -0.65, "ONLINE_AFFINITAET": 0.9, "WOHNLAGE_RURAL": 0.45})
    rec = recommend("over-represented", effects, rules)
    assert len(rec.messages) <= MAX_THEMES and len(rec.channels) <= MAX_CHANNELS
    assert [m.effect for m in rec.messages] == sorted((m.effect for m in rec.messages), reverse=True)
    for items in (rec.messages, rec.channels):
        for a in items:
            for b in items:
                assert not (a.axis == b.axis and a.pole != b.pole), (a.what, b.what)
    themes = [m.what for m in rec.messages]
    assert themes[0] == "novelty, speed and convenience"  # the strongest (0.9)
    assert "tradition, craftsmanship and trusted brands" not in themes  # opposite pole, weaker


def test_shipped_rules_cover_every_verdict_and_name_real_columns():
    from analysis.inputs.schema import load_schema
    rules = load_rules()
    assert set(rules["verdict"]) == {"over-represented", "under-represented", "in line", "set-aside"}
    known = set(load_schema()) | {"CAMEO_INTL_2015_WEALTH", "WOHNLAGE_RURAL"}
    for rule in rules["channel"] + rules["message"]:
        assert rule["column"] in known
        assert rule["side"] in ("high", "low")
        assert rule["axis"] and rule["pole"]
