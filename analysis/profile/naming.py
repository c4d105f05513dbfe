"""Names a marketer would say aloud, and the facts behind a segment's portrait.

A name is built from a few headline *dimensions* (life stage or age, affluence, place, outlook),
each a composite of cleaned columns read in its scale's direction (``analysis/data/features.csv``:
a LOW HH_EINKOMMEN_SCORE is a HIGH income, so it enters affluence with a minus sign). Each
dimension gives at most one word, chosen by the sign of the segment's composite score, so a name
can neither repeat an idea nor contradict itself (one affluence word, never "upper class" and
"working class" together), even when segments are only weakly separated. Names are facts of the
analysis (identifiers, unique across groups and types); sentences about segments are written at
render time (``analysis/present/segments.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from analysis.profile.traits import Effects, SegmentRows, arrays, first_per_key, split_segments, strongest


@dataclass(frozen=True)
class Dimension:
    key: str
    columns: dict[str, float]  # cleaned column -> +1 (high code = more of it) or -1 (low code = more)
    high: str  # the word when the composite is high
    low: str  # ... when it is low


#: Adjective dimensions, in the order their words are spoken ("Affluent Traditional City ...").
ADJECTIVES = (
    Dimension("affluence", {"HH_EINKOMMEN_SCORE": -1, "CAMEO_INTL_2015_WEALTH": -1, "CAMEO_DEUG_2015": -1,
                            "KKK": -1}, "Affluent", "Modest-income"),
    # "Prudent", not "Thrifty": keen savers who provide for the future are often well off, and
    # "Affluent Thrifty" read as a contradiction to marketers.
    Dimension("thrift", {"FINANZ_SPARER": -1, "FINANZ_VORSORGER": -1}, "Prudent", "Free-spending"),
    Dimension("outlook", {"SEMIO_TRADV": -1, "SEMIO_PFLICHT": -1}, "Traditional", "Modern"),
    Dimension("online", {"ONLINE_AFFINITAET": 1}, "Online", "Offline"),
    Dimension("place", {"EWDICHTE": 1, "ORTSGR_KLS9": 1, "BALLRAUM": -1, "INNENSTADT": -1},
              "City", "Rural"),
)
AGE = Dimension("age", {"ALTERSKATEGORIE_GROB": 1, "PRAEGENDE_JUGENDJAHRE_DECADE": -1}, "older", "younger")
FAMILY = Dimension("family", {"W_KEIT_KIND_HH": -1, "SEMIO_FAM": -1}, "family", "single")
#: A dimension's word is used when its composite is at least this far from 0 (standardised).
WORD_EFFECT = 0.25
STRONG = 0.6

#: Cleaned-column prefixes that say the same idea; a portrait keeps one trait per concept.
CONCEPTS = {
    "age": ("ALTERSKATEGORIE", "GEBURTSJAHR", "PRAEGENDE", "LP_LEBENSPHASE", "ALTER_HH"),
    "family": ("W_KEIT_KIND", "LP_FAMILIE", "ANZ_PERSONEN", "SEMIO_FAM"),
    "affluence": ("HH_EINKOMMEN", "CAMEO", "KKK", "LP_STATUS", "REGIOTYP"),
    "density": ("EWDICHTE", "ORTSGR", "BALLRAUM", "INNENSTADT", "KBA05", "PLZ8", "GEBAEUDETYP",
                "MOBI_REGIO", "KONSUMNAEHE", "ANZ_HAUSHALTE", "KBA13", "WOHNLAGE", "MIN_GEBAEUDE"),
    "unemployment": ("ARBEIT", "RELAT_AB"),
    "online": ("ONLINE",),
    "saving": ("FINANZ_SPARER", "FINANZ_VORSORGER", "FINANZ_ANLEGER"),
    "tradition": ("SEMIO_TRADV", "SEMIO_PFLICHT", "SEMIO_REL"),
}
PORTRAIT_TRAITS = 6

#: Key facts: the segment's mean code on these ordered scales, rounded to a code a reader can look
#: up in analysis/data/levels.csv (ordinal codes; nominal codes are never averaged).
KEY_FACTS = {"age_band": "ALTERSKATEGORIE_GROB", "income": "HH_EINKOMMEN_SCORE", "density": "EWDICHTE",
             "online_affinity": "ONLINE_AFFINITAET"}


def concept(column: str) -> str:
    """The idea a cleaned column expresses (columns on one idea share it), else the column."""
    return next((key for key, prefixes in CONCEPTS.items() if column.startswith(prefixes)), column)


def scores(effects: Effects) -> dict[str, float]:
    """Composite score of every dimension: the mean of its columns' signed effects present."""
    out = {}
    for dim in (*ADJECTIVES, AGE, FAMILY):
        values = [sign * float(effects[c]) for c, sign in dim.columns.items() if c in effects]
        out[dim.key] = sum(values) / len(values) if values else 0.0
    return out


#: The age noun by the segment's age band (rounded mean ALTERSKATEGORIE_GROB code, the key fact a
#: profile shows), so a name never calls people "Seniors" whose key fact says "aged 46 to 60".
AGE_NOUNS = {1: "Young Adults", 2: "Adults", 3: "Midlifers", 4: "Seniors"}
#: Per age band, the noun for a family-minded and for a childless-leaning segment (None: the age noun).
FAMILY_NOUNS = {1: ("Young Families", "Young Singles"), 2: ("Families", "Singles"), 3: ("Families", None),
                4: (None, None)}


def noun(score: dict[str, float], age_band: int | None = None) -> str:
    """Life stage or age as the name's noun.

    With the age band known, the noun follows it (families and singles only in the bands where
    they are plausible); without it (the column was dropped), the age composite's effect
    decides, which is relative to the population and so only says "older" or "younger".
    """
    age, family = score["age"], score["family"]
    if age_band is not None:
        band = min(max(age_band, 1), 4)
        family_noun, single_noun = FAMILY_NOUNS[band]
        if family >= WORD_EFFECT and family_noun:
            return family_noun
        if family <= -WORD_EFFECT and single_noun:
            return single_noun
        return AGE_NOUNS[band]
    if family >= STRONG and age < STRONG:
        return "Families"
    if age >= STRONG:
        return "Retirees" if age >= 1.2 else "Seniors"
    if age <= -STRONG:
        return "Starters" if age <= -1.2 else "Young Adults"
    if family >= WORD_EFFECT:
        return "Families"
    if family <= -WORD_EFFECT:
        return "Singles and Couples"
    return "Midlifers" if age >= 0 else "Adults"


def adjectives(score: dict[str, float]) -> list[tuple[float, str]]:
    """(strength, word) for each dimension far enough from the average, strongest first."""
    words = [(abs(score[d.key]), d.high if score[d.key] > 0 else d.low, i) for i, d in enumerate(ADJECTIVES)
             if abs(score[d.key]) >= WORD_EFFECT / 2]
    return [(s, w) for s, w, _ in sorted(words, key=lambda x: -x[0])]


def _spoken(words: list[str]) -> list[str]:
    order = {w: i for i, d in enumerate(ADJECTIVES) for w in (d.high, d.low)}
    return sorted(words, key=order.get)


def name_candidates(score: dict[str, float], age_band: int | None = None) -> list[str]:
    """Names from best to worst: 2 adjectives + noun, then other pairs, then 1 or 3 adjectives."""
    tail = noun(score, age_band)
    adj = [w for _, w in adjectives(score)]
    room = 4 - len(tail.split())
    options: list[tuple[str, ...]] = []
    strong = [w for s, w in adjectives(score) if s >= WORD_EFFECT]
    if strong:
        options.append(tuple(strong[: min(2, room)]))
    options += [c for size in (2, 1, 3) if size <= room for c in combinations(adj, size)]
    names = []
    for option in options:
        name = " ".join([*_spoken(list(option)), tail])
        if name not in names and len(name.split()) >= 2:
            names.append(name)
    return names or [tail if len(tail.split()) >= 2 else f"Average {tail}"]


def name_segments(traits: pd.DataFrame, segments: range, taken: set[str]) -> dict[int, str]:
    """Unique names for ``segments`` from their trait table (effects and age bands)."""
    parts = split_segments(traits, segments)
    return unique_names({i: effects_of(rows) for i, rows in parts.items()}, taken,
                        {i: facts_of(rows)["age_band"]["code"] for i, rows in parts.items()})


def effects_of(rows: SegmentRows) -> dict[str, float]:
    """A segment's effect per cleaned column (what ``scores`` and ``recommend`` read).

    A dict, not a Series: each lookup in a Series with a text index costs microseconds, and
    naming and recommending look up every segment's columns dozens of times.
    """
    return dict(zip(rows["column"].tolist(), rows["effect"].tolist()))


def unique_names(effects: dict[int, Effects], taken: set[str] | None = None,
                 age_bands: dict[int, int | None] | None = None) -> dict[int, str]:
    """A unique name per segment, strongest-distinguished segments choosing first."""
    taken = set() if taken is None else taken
    age_bands = age_bands or {}
    score = {s: scores(e) for s, e in effects.items()}
    order = sorted(effects, key=lambda s: -max(map(abs, score[s].values()), default=0.0))
    names: dict[int, str] = {}
    for segment in order:
        candidates = name_candidates(score[segment], age_bands.get(segment))
        name = next((c for c in candidates if c not in taken), None)
        number = 2
        while name is None:
            name = next((f"{c} {_roman(number)}" for c in candidates if f"{c} {_roman(number)}" not in taken), None)
            number += 1
        taken.add(name)
        names[segment] = name
    return dict(sorted(names.items()))


def _roman(n: int) -> str:
    return {2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII", 9: "IX"}.get(n, str(n))


def portrait_traits(traits: pd.DataFrame, segment: int, n: int = PORTRAIT_TRAITS) -> pd.DataFrame:
    """The strongest trait per concept (no idea twice), up to ``n``, strongest first."""
    rows = traits[traits["segment"] == segment]
    top = rows.iloc[portrait(arrays(rows), n)]
    return top.assign(concept=[concept(c) for c in top["column"]])


def portrait(rows: SegmentRows, n: int = PORTRAIT_TRAITS) -> np.ndarray:
    """Positions in one segment's ``rows`` of ``portrait_traits``."""
    ranked = strongest(rows, len(rows["effect"]))
    return ranked[first_per_key(np.arange(len(ranked)), [concept(c) for c in rows["column"][ranked]], n)]


def key_facts(traits: pd.DataFrame, segment: int) -> dict[str, dict]:
    """Per key fact: the column, the segment's mean code, the rounded code and the effect."""
    return facts_of(arrays(traits[traits["segment"] == segment]))


def facts_of(rows: SegmentRows) -> dict[str, dict]:
    """``key_facts`` from one segment's ``rows``."""
    where = {column: i for i, column in enumerate(rows["column"])}
    out = {}
    for key, column in KEY_FACTS.items():
        if column not in where:
            out[key] = {"column": column, "mean": None, "code": None, "effect": None,
                        "reason": "column not used in this analysis"}
            continue
        mean = float(rows["segment_mean"][where[column]])
        out[key] = {"column": column, "mean": round(mean, 3), "code": int(round(mean)),
                    "population_mean": round(float(rows["population_mean"][where[column]]), 3),
                    "effect": round(float(rows["effect"][where[column]]), 3)}
    return out


def dimension_facts(score: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 3) for key, value in score.items()}

