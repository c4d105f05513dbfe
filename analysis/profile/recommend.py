"""Turn a segment's verdict and traits into a recommendation, by rules kept in data.

The rules live in ``data/recommendations.toml`` so that marketing can read and change them;
this module only applies them. A rule fires when the segment's standardised difference on the
rule's column points to the rule's side and is at least ``min_effect``.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from analysis.present.wording import join_words

RULES = Path(__file__).parents[1] / "data" / "recommendations.toml"
DEFAULT_CHANNEL = "the company's usual mix of catalogue and email"


@dataclass(frozen=True)
class Recommendation:
    action: str
    text: str
    channels: tuple[str, ...]
    messages: tuple[str, ...]

    @property
    def sentence(self) -> str:
        """One paragraph: the action, why, and how to talk to the segment."""
        channel = join_words(self.channels) if self.channels else DEFAULT_CHANNEL
        how = f" Reach them through {channel}"
        how += f" with messages about {join_words(self.messages)}." if self.messages else "."
        return f"{self.action}. {self.text}{how}"

    def to_dict(self) -> dict:
        return {"action": self.action, "text": self.text, "channels": list(self.channels),
                "messages": list(self.messages), "sentence": self.sentence}


@cache
def load_rules(path: Path = RULES) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def recommend(verdict: str, effects: pd.Series, rules: dict | None = None) -> Recommendation:
    """``verdict`` from the comparison ('set-aside' for the set-aside group); ``effects`` maps column -> d."""
    rules = load_rules() if rules is None else rules
    base = rules["verdict"][verdict]
    return Recommendation(base["action"], base["text"],
                          _fired(rules.get("channel", []), effects, "channel"),
                          _fired(rules.get("message", []), effects, "message"))


def _fired(rules: list[dict], effects: pd.Series, key: str) -> tuple[str, ...]:
    out: list[str] = []
    for rule in rules:
        effect = float(effects.get(rule["column"], 0.0))
        signed = effect if rule["side"] == "high" else -effect
        if signed >= rule["min_effect"] and rule[key] not in out:
            out.append(rule[key])
    return tuple(out)
