"""The cleaning log in words: each decision and its reason, written at render time.

The analysis logs codes and facts (``analysis/prepare/cleaning.py`` lists the vocabulary in its
docstring); this module is the one place that says them in words. To reword a reason, edit the
text below: each is a ``str.format`` template whose fields are the entry's facts, shares
already written as percentages. Fields: ``missing_share``, ``set_aside_share``, ``agreement``,
``limit`` (percentages), ``n_columns``, ``n_levels`` (whole numbers), ``columns`` ("2 columns"),
``duplicates`` (the features named in ``duplicate_of``, with their meaning),
``duplicate_names``, ``duplicate_meanings`` (names or meanings alone), ``first_duplicate``, ``levels_words`` (rare levels with their labels), ``one_means`` (the label
of the level that becomes 1), ``first_label`` / ``last_label`` (the two ends of an ordered code).
Editing this file re-renders the report without re-running the analysis.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

from analysis.inputs.schema import load_schema
from analysis.present.wording import join_words, percent

# Short: the table gives each column a width in proportion to its longest cell.
STEP_WORDS = {
    "column_missingness": "Missing data: features",
    "row_missingness": "Missing data: people",
    "re_encoding": "Categories",
    "engineering": "Splits and counts",
}
DECISION_WORDS = {
    "dropped": "dropped",
    "set_aside": "set aside",
    "one_hot": "a 0/1 column per level",
    "flag": "one 0/1 column",
    "scale": "kept as a scale",
    "log_transform": "log scale",
    "split": "split: {columns}",
    "rare_levels_no_column": "rare levels: no column",
    "part_not_kept": "one part left out",
}
REASON_WORDS = {
    "too_much_missing": "missing for {missing_share} of the population, more than the limit of {limit}",
    "rows_missing_too_much": "{set_aside_share} of the population miss more than {limit} of the features "
                             "kept; they cannot be placed in a segment reliably, so they form their own "
                             "group, counted in every comparison",
    "finer_version": "a more detailed version of {duplicates}, which is used instead",
    "nested_detail": "its {n_levels} detailed types each sit inside one group of {first_duplicate}; "
                     "{duplicate_names} carry the same information in a few columns instead of "
                     "{n_levels} small ones",
    "mixed_code": "mixes {duplicate_meanings} in one code; {duplicate_names} carry them one by one",
    "no_split_defined": "mixes several facts in one code, and the package has no rule to split it",
    "duplicate": "that part (mainstream or avant-garde movement) says the same as {duplicates} for "
                 "{agreement} of the people who have both",
    "rare_levels": "{levels_words} each held by under {limit} of the people with a known value; "
                   "those people get 0 in every column of this feature",
    "unordered_levels": "its levels have no order: {n_columns} columns, one per level seen in the "
                        "population; customers get exactly the same columns",
    "two_levels": "two levels; 1 means “{one_means}”",
    "ordered_levels": "its {n_levels} levels are in order, from “{first_label}” to “{last_label}”",
    "long_tail": "a count with a few very large values; on a log scale they cannot dominate the analysis",
    "decade_of_youth": "mixes the decade of a person's youth with their youth movement; the decade "
                       "(1940s to 1990s) becomes a scale; the movement gets a 0/1 column only when "
                       "GREEN_AVANTGARDE, which says the same, is not in the data",
    "wealth_and_life_stage": "the first digit is household wealth (1 wealthy to 5 poorer), the second the "
                             "life stage (1 pre-family to 5 retired elders): two scales",
    "quality_and_rural": "codes 1 to 5 rate the neighbourhood (very good to very poor), 7 and 8 mark a "
                         "rural area: a quality scale (unknown in rural areas) and a rural 0/1 column",
    "home_size_and_business": "codes 1 to 4 give the typical building size (1-2 family homes to large "
                              "blocks of flats), 5 a mainly business area: a size scale and a business "
                              "0/1 column",
}
NO_COLUMN = "(people)"  # the feature cell of an entry about people (rows) rather than one feature
STEP_ORDER = ("column_missingness", "re_encoding", "engineering", "row_missingness")  # as the table lists them


def step_words(step: str) -> str:
    return _lookup(STEP_WORDS, step, "step")


def decision_words(entry: Mapping[str, object]) -> str:
    return _fill(_lookup(DECISION_WORDS, str(entry["decision"]), "decision"), entry)


def reason_words(entry: Mapping[str, object]) -> str:
    """Why, in words, with the entry's numbers: e.g. "missing for 66.1% of the population, ..."."""
    return _fill(_lookup(REASON_WORDS, str(entry["reason"]), "reason"), entry)


def dropped_reasons(log: Iterable[Mapping[str, object]]) -> dict[str, str]:
    """Feature -> why it was dropped, in words, in the order of the log."""
    return {str(e["column"]): reason_words(e) for e in log if e["decision"] == "dropped"}


def log_rows(log: Iterable[Mapping[str, object]]) -> list[dict[str, str]]:
    """The log as table rows in words (Step, Feature, Decision, Reason), by step in STEP_ORDER,
    a feature's decisions together, otherwise in the order they were made."""
    entries = list(log)
    first = {}
    for position, entry in enumerate(entries):
        first.setdefault((entry["step"], entry["column"]), position)
    entries.sort(key=lambda e: (STEP_ORDER.index(e["step"]) if e["step"] in STEP_ORDER else len(STEP_ORDER),
                                first[(e["step"], e["column"])]))
    return [{"Step": step_words(str(e["step"])), "Feature": str(e["column"]) or NO_COLUMN,
             "Decision": decision_words(e), "Reason": reason_words(e)} for e in entries]


def _lookup(words: dict[str, str], code: str, kind: str) -> str:
    if code not in words:
        raise ValueError(f"cleaning log: no words for the {kind} code {code!r}; add them to "
                         f"{kind.upper()}_WORDS in analysis/present/cleaning_words.py")
    return words[code]


def _fill(template: str, entry: Mapping[str, object]) -> str:
    try:
        return template.format(**_facts(entry))
    except KeyError as missing:
        raise ValueError(f"cleaning log entry for {entry.get('column')!r} ({entry.get('reason')}) lacks "
                         f"the fact {missing}") from None


def _given(value: object) -> bool:
    """False for the table's fillers: NaN for numbers, "" for texts."""
    return value is not None and value != "" and not (isinstance(value, float) and math.isnan(value))


def _facts(entry: Mapping[str, object]) -> dict[str, object]:
    """The entry's facts ready for a template: percentages, whole numbers, names with meanings."""
    given = {key: value for key, value in entry.items() if _given(value)}
    facts: dict[str, object] = {}
    for key in ("missing_share", "set_aside_share", "agreement"):
        if key in given:
            facts[key] = percent(float(given[key]))
    if "limit" in given:
        limit = float(given["limit"])
        facts["limit"] = percent(limit, 0 if round(limit * 100, 6).is_integer() else 1)
    for key in ("n_columns", "n_levels"):
        if key in given:
            facts[key] = int(given[key])
    if "n_columns" in facts:
        facts["columns"] = f"{facts['n_columns']} column{'s' if facts['n_columns'] != 1 else ''}"
    duplicates = [name for name in str(given.get("duplicate_of", "")).split(",") if name]
    if duplicates:
        facts["duplicates"] = join_words([_named(name) for name in duplicates])
        facts["duplicate_names"] = join_words(duplicates)
        facts["duplicate_meanings"] = join_words([_meaning(name) for name in duplicates])
        facts["first_duplicate"] = _named(duplicates[0])
    feature = load_schema().get(str(entry.get("column", "")))
    levels = [level for level in str(given.get("levels", "")).split(",") if level]
    if levels and feature is not None:
        facts["one_means"] = feature.label(levels[0])
        labelled = join_words([f"{level} (“{feature.label(level)}”)" for level in levels])
        facts["levels_words"] = f"level{'s' if len(levels) > 1 else ''} {labelled}"
    if feature is not None and feature.codes:
        ordered = sorted(feature.codes, key=lambda code: (not code.lstrip("-").isdigit(), _number(code)))
        facts["first_label"], facts["last_label"] = feature.codes[ordered[0]], feature.codes[ordered[-1]]
    return facts


def _number(code: str) -> float:
    return float(code) if code.lstrip("-").isdigit() else 0.0


def _meaning(name: str) -> str:
    """'family type' for LP_FAMILIE_GROB ("Family type (rough)"): what it says, inside a sentence."""
    feature = load_schema().get(name)
    if feature is None:
        return name
    text = feature.description.split(" (")[0]
    return text[:1].lower() + text[1:]


def _named(name: str) -> str:
    """'LP_FAMILIE_GROB (Family type (rough))': the name a table shows and what it means."""
    feature = load_schema().get(name)
    return f"{name} (“{feature.description}”)" if feature is not None else name
