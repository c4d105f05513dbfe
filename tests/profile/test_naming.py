"""Names from headline dimensions: unique, 2-4 words, in each scale's direction, never contradictory."""
from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest

from analysis.profile.naming import (ADJECTIVES, AGE, AGE_NOUNS, FAMILY, KEY_FACTS, concept, key_facts, name_candidates,
                                    name_segments, portrait_traits, scores, unique_names)
from analysis.profile.traits import top_traits

WORDS = {w for d in ADJECTIVES for w in (d.high, d.low)}


def effects(**values: float) -> pd.Series:
    return pd.Series(values, dtype=float)


def test_low_income_score_reads_as_affluent_and_low_sparer_as_prudent():
    # LOW HH_EINKOMMEN_SCORE = HIGH income; LOW FINANZ_SPARER = keen saver; high age band = older
    score = scores(effects(HH_EINKOMMEN_SCORE=-0.9, FINANZ_SPARER=-0.7, ALTERSKATEGORIE_GROB=1.0))
    name = name_candidates(score)[0]
    assert name == "Affluent Prudent Seniors"


@pytest.mark.parametrize("band", [1, 2, 3, 4])
def test_age_noun_follows_the_age_band_not_the_relative_effect(band):
    """A segment older than the population but mostly aged 46-60 is "Midlifers", not "Seniors"."""
    score = scores(effects(HH_EINKOMMEN_SCORE=-0.9, ALTERSKATEGORIE_GROB=1.0))
    assert name_candidates(score, age_band=band)[0].endswith(AGE_NOUNS[band])


def test_names_from_a_trait_table_agree_with_its_age_key_fact():
    rows = []
    for segment, age_mean in enumerate([3.3, 3.8, 1.4]):
        rows += [{"segment": segment, "column": "ALTERSKATEGORIE_GROB", "effect": age_mean - 2.8,
                  "segment_mean": age_mean, "population_mean": 2.8},
                 {"segment": segment, "column": "HH_EINKOMMEN_SCORE", "effect": -0.9 + segment,
                  "segment_mean": 3.0, "population_mean": 4.0}]
    traits = pd.DataFrame(rows)
    names = name_segments(traits, range(3), set())
    for segment, name in names.items():
        band = key_facts(traits, segment)["age_band"]["code"]
        assert name.endswith(AGE_NOUNS[band]), (name, band)
    assert names[0].endswith("Midlifers") and names[1].endswith("Seniors")


def test_low_family_code_is_families_and_dense_area_is_city():
    score = scores(effects(SEMIO_FAM=-0.9, W_KEIT_KIND_HH=-0.8, EWDICHTE=0.6, ALTERSKATEGORIE_GROB=-0.2))
    assert name_candidates(score)[0] == "City Families"


def test_contradicting_columns_give_one_word_per_dimension():
    """Upper class by CAMEO, working-class by income: one affluence word (or none), never both."""
    score = scores(effects(CAMEO_DEUG_2015=-0.5, HH_EINKOMMEN_SCORE=0.45, EWDICHTE=0.4))
    for name in name_candidates(score):
        words = set(name.split()) & WORDS
        for dim in ADJECTIVES:
            assert not {dim.high, dim.low} <= words, name


@pytest.mark.parametrize("seed", range(5))
def test_names_are_unique_two_to_four_words_and_free_of_prefixes(seed):
    """Weakly separated segments (effects near 0) still get unique, clean names."""
    rng = np.random.default_rng(seed)
    columns = [c for d in ADJECTIVES for c in d.columns] + ["ALTERSKATEGORIE_GROB", "SEMIO_FAM", "W_KEIT_KIND_HH"]
    segments = {i: pd.Series(rng.normal(0, 0.3, len(columns)), index=columns) for i in range(30)}
    names = unique_names(segments)
    assert len(set(names.values())) == len(names) == 30
    for name in names.values():
        assert 2 <= len(name.split()) <= 5  # 2-4 words, plus a numeral only when every combination is taken
        assert not re.search(r"\b(more|less) often\b", name, re.I)
        words = name.split()
        assert len(set(words)) == len(words), name  # no word twice


def test_uniqueness_is_shared_between_groups_and_types():
    taken: set[str] = set()
    same = effects(ALTERSKATEGORIE_GROB=1.0, HH_EINKOMMEN_SCORE=-1.0)
    groups = unique_names({0: same}, taken)
    types = unique_names({0: same, 1: same}, taken)
    assert len({*groups.values(), *types.values()}) == 3


def test_portrait_keeps_one_trait_per_idea():
    traits = pd.DataFrame({
        "segment": 0, "column": ["W_KEIT_KIND_HH", "LP_FAMILIE_GROB_3", "FINANZ_SPARER"],
        "effect": [-0.9, 0.8, -0.5], "phrase": ["likely to have children at home", "family with children", "keen savers"],
        "kind": ["scale", "flag", "scale"], "difference": [-0.9, 0.3, -0.5], "description": "",
        "segment_mean": [1.5, 0.6, 2.0], "population_mean": [3.0, 0.3, 3.0]})
    assert concept("W_KEIT_KIND_HH") == concept("LP_FAMILIE_GROB_3") == "family"
    assert list(portrait_traits(traits, 0)["column"]) == ["W_KEIT_KIND_HH", "FINANZ_SPARER"]


def test_key_facts_are_rounded_mean_codes_of_ordered_scales():
    traits = pd.DataFrame({"segment": 0, "column": ["ALTERSKATEGORIE_GROB", "EWDICHTE"], "effect": [0.8, -0.3],
                           "segment_mean": [3.6, 2.2], "population_mean": [2.8, 3.0]})
    facts = key_facts(traits, 0)
    assert facts["age_band"]["code"] == 4 and facts["density"]["code"] == 2
    assert facts["income"]["code"] is None and facts["income"]["reason"]


def random_traits(seed: int, segments: int = 4) -> pd.DataFrame:
    """A trait table on the naming columns and a few more, with tied effects and NaN."""
    rng = np.random.default_rng(seed)
    names = sorted({c for d in (*ADJECTIVES, AGE, FAMILY) for c in d.columns} | {"LP_FAMILIE_GROB_3", "KBA05_X"})
    names.remove("INNENSTADT")  # a naming column the analysis may have dropped
    effect = rng.normal(scale=0.6, size=(segments, len(names))).round(1)
    effect[rng.random(effect.shape) < 0.05] = np.nan
    kind = np.where([n.endswith("_3") for n in names], "flag", "scale")
    table = pd.DataFrame({
        "segment": np.repeat(np.arange(segments), len(names)), "column": np.tile(names, segments),
        "effect": effect.ravel(), "segment_mean": rng.uniform(1, 5, size=effect.size),
        "population_mean": rng.uniform(1, 5, size=effect.size), "kind": np.tile(kind, segments),
        "phrase": np.tile(rng.choice(["a", "b", "c", "d", "e", "f", "g"], size=len(names)), segments)})
    return table.sample(frac=1, random_state=seed)


def key_facts_by_definition(traits: pd.DataFrame, segment: int) -> dict[str, dict]:
    """``key_facts`` as first written: ``.loc`` on the segment's rows indexed by column."""
    rows = traits[traits["segment"] == segment].set_index("column")
    out = {}
    for key, column in KEY_FACTS.items():
        if column not in rows.index:
            out[key] = {"column": column, "mean": None, "code": None, "effect": None,
                        "reason": "column not used in this analysis"}
            continue
        row = rows.loc[column]
        out[key] = {"column": column, "mean": round(float(row["segment_mean"]), 3),
                    "code": int(round(float(row["segment_mean"]))),
                    "population_mean": round(float(row["population_mean"]), 3),
                    "effect": round(float(row["effect"]), 3)}
    return out


@pytest.mark.parametrize("seed", range(4))
def test_portrait_key_facts_and_names_from_arrays_equal_the_dataframe_definitions(seed):
    traits = random_traits(seed)
    for segment in range(4):
        top = top_traits(traits, segment, n=len(traits))
        expected = top.assign(concept=[concept(c) for c in top["column"]]).drop_duplicates("concept").head(4)
        pd.testing.assert_frame_equal(portrait_traits(traits, segment, 4), expected)
        # as text, so that a NaN effect compares equal to a NaN effect
        assert repr(key_facts(traits, segment)) == repr(key_facts_by_definition(traits, segment))
    series = {i: traits[traits["segment"] == i].set_index("column")["effect"] for i in range(4)}
    bands = {i: key_facts_by_definition(traits, i)["age_band"]["code"] for i in range(4)}
    assert name_segments(traits, range(4), set()) == unique_names(series, set(), bands)
