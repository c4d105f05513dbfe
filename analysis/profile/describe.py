"""The facts results.json keeps about each group and each type (no sentences).

Per entry: id, code, name, counts and shares, index with interval (``null`` with a reason when it
is not a finite number), verdict, key facts, the dimension scores behind the name, the traits of
the portrait (one per concept) and the recommendation rules that fired. Types also carry their
group's id and code, groups the codes of their types.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from analysis.constants import SET_ASIDE
from analysis.profile.naming import dimension_facts, effects_of, facts_of, portrait, scores
from analysis.profile.recommend import recommend
from analysis.profile.traits import SegmentRows, arrays, split_segments, strongest


def finite(value: float) -> float | None:
    """A float for JSON, or None when it is NaN or infinite (strict JSON has neither)."""
    value = float(value)
    return value if math.isfinite(value) else None


def index_facts(row: pd.Series) -> dict:
    """Index and interval as strict-JSON values, with the reason when one is null."""
    out = {"index": finite(row["index"]), "index_ci": [finite(row["index_low"]), finite(row["index_high"])],
           "p_adjusted": finite(row["p_adjusted"])}
    if out["index"] is None or None in out["index_ci"]:
        if row["population_count"] == 0 and row["customer_count"] == 0:
            out["index_null_reason"] = "nobody in this segment in either file"
        elif row["population_count"] == 0:
            out["index_null_reason"] = "no one in the population, so the index is unbounded"
        else:
            out["index_null_reason"] = "no customers, so the interval's upper end cannot be bounded"
    return out


def describe(comparison: pd.DataFrame, traits: pd.DataFrame, names: dict[int, str],
             codes: dict[int, str], level: str, parent: dict[int, int] | None = None,
             parent_codes: dict[int, str] | None = None) -> list[dict]:
    """One entry per row of ``comparison`` (set-aside included), in the comparison's order."""
    out = []
    parts = split_segments(traits, [int(s) for s in comparison.index])
    for segment, row in comparison.iterrows():
        segment = int(segment)
        aside = segment == SET_ASIDE
        rows = parts[segment]
        effects = effects_of(rows)
        verdict = "set-aside" if aside else row["verdict"]
        entry = {
            "id": segment, "code": codes[segment], "level": level, "name": names[segment],
            "set_aside": aside,
            "population_share": float(row["population_share"]), "customer_share": float(row["customer_share"]),
            "population_count": int(row["population_count"]), "customer_count": int(row["customer_count"]),
            **index_facts(row), "verdict": row["verdict"],
            "top_traits": [] if aside else _trait_facts(rows, strongest(rows)),
            "portrait_traits": [] if aside else _trait_facts(rows, portrait(rows)),
            "key_facts": {} if aside else facts_of(rows),
            "dimensions": {} if aside else dimension_facts(scores(effects)),
            "recommendation": recommend(verdict, effects).to_dict(),
        }
        if parent is not None:
            entry["group"] = int(parent.get(segment, SET_ASIDE))
            entry["group_code"] = parent_codes[entry["group"]]
        out.append(entry)
    return out


def _traits(rows: pd.DataFrame) -> list[dict]:
    """The facts of each row of a trait table (what ``top_traits`` or ``portrait_traits`` returned)."""
    return _trait_facts(arrays(rows), range(len(rows)))


def _trait_facts(rows: SegmentRows, positions: Iterable[int]) -> list[dict]:
    return [{"column": rows["column"][i], "description": rows["description"][i], "phrase": rows["phrase"][i],
             "kind": rows["kind"][i], "effect": round(float(rows["effect"][i]), 3),
             "difference": round(float(rows["difference"][i]), 4)} for i in positions]
