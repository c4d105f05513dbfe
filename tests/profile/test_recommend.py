"""Recommendation rules are data; these check how they are applied."""
from __future__ import annotations

import pandas as pd

from analysis.profile.recommend import DEFAULT_CHANNEL, load_rules, recommend

RULES = {
    "verdict": {"over-represented": {"action": "Target", "text": "Mail them."},
                "under-represented": {"action": "Decide", "text": "Test first."}},
    "channel": [{"column": "ONLINE", "side": "high", "min_effect": 0.3, "channel": "email"},
                {"column": "ONLINE", "side": "low", "min_effect": 0.3, "channel": "catalogue"}],
    "message": [{"column": "INCOME_SCORE", "side": "low", "min_effect": 0.3, "message": "premium"}],
}


def test_action_follows_the_verdict():
    rec = recommend("over-represented", pd.Series(dtype=float), RULES)
    assert (rec.action, rec.text) == ("Target", "Mail them.")
    assert rec.sentence == f"Target. Mail them. Reach them through {DEFAULT_CHANNEL}."


def test_rules_fire_on_side_and_effect_size():
    effects = pd.Series({"ONLINE": -0.5, "INCOME_SCORE": -0.31})  # low income score = high income
    rec = recommend("under-represented", effects, RULES)
    assert rec.channels == ("catalogue",)
    assert rec.messages == ("premium",)
    assert rec.sentence == "Decide. Test first. Reach them through catalogue with messages about premium."


def test_small_effects_do_not_fire():
    rec = recommend("over-represented", pd.Series({"ONLINE": 0.29, "INCOME_SCORE": 0.9}), RULES)
    assert rec.channels == () and rec.messages == ()


def test_shipped_rules_cover_every_verdict_and_name_real_columns():
    from analysis.inputs.schema import load_schema
    rules = load_rules()
    assert set(rules["verdict"]) == {"over-represented", "under-represented", "in line", "set-aside"}
    known = set(load_schema()) | {"CAMEO_INTL_2015_WEALTH", "WOHNLAGE_RURAL"}
    for rule in rules["channel"] + rules["message"]:
        assert rule["column"] in known
        assert rule["side"] in ("high", "low")
