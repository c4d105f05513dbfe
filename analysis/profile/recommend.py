"""Turn a segment's verdict and traits into a recommendation, by rules kept in data.

The rules live in ``data/recommendations.toml`` so that marketing can read and change them;
this module only applies them. A rule fires when the segment's standardised difference from the
population on the rule's column points to the rule's side and is at least ``min_effect``. Fired
themes and channels are ranked by that difference; at most ``MAX_THEMES`` themes and
``MAX_CHANNELS`` channels are kept, one per wording, and never two from opposite poles of one
axis (the stronger wins). What is stored are facts (which rule fired, on which column, how
strongly); the sentences are written at render time (``analysis/present/segments.py``).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from analysis.profile.traits import Effects

RULES = Path(__file__).parents[1] / "data" / "recommendations.toml"
MAX_THEMES = 3
MAX_CHANNELS = 2


@dataclass(frozen=True)
class Fired:
    """One rule that fired: what it says, why (column, side, effect) and where it sits."""

    what: str
    column: str
    side: str
    effect: float  # the segment's standardised difference, signed towards the rule's side (>= 0)
    axis: str
    pole: str

    def to_dict(self) -> dict:
        return {"what": self.what, "column": self.column, "side": self.side,
                "effect": round(self.effect, 3), "axis": self.axis, "pole": self.pole}


@dataclass(frozen=True)
class Recommendation:
    verdict: str
    action: str
    text: str
    channels: tuple[Fired, ...]
    messages: tuple[Fired, ...]

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "action": self.action, "text": self.text,
                "channels": [c.to_dict() for c in self.channels],
                "messages": [m.to_dict() for m in self.messages]}


@cache
def load_rules(path: Path = RULES) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def recommend(verdict: str, effects: Effects, rules: dict | None = None) -> Recommendation:
    """``verdict`` from the comparison ('set-aside' for the set-aside group); ``effects`` maps column -> d."""
    rules = load_rules() if rules is None else rules
    base = rules["verdict"][verdict]
    return Recommendation(verdict, base["action"], base["text"],
                          _fired(rules.get("channel", []), effects, "channel", MAX_CHANNELS),
                          _fired(rules.get("message", []), effects, "message", MAX_THEMES))


def _fired(rules: list[dict], effects: Effects, key: str, limit: int) -> tuple[Fired, ...]:
    fired = []
    for rule in rules:
        effect = float(effects.get(rule["column"], 0.0))
        signed = effect if rule["side"] == "high" else -effect
        if signed >= rule["min_effect"]:
            fired.append(Fired(rule[key], rule["column"], rule["side"], signed,
                               rule.get("axis", rule[key]), rule.get("pole", rule["side"])))
    kept: list[Fired] = []
    for item in sorted(fired, key=lambda f: -f.effect):
        clash = any(k.what == item.what or (k.axis == item.axis and k.pole != item.pole) for k in kept)
        if not clash and len(kept) < limit:
            kept.append(item)
    return tuple(kept)
