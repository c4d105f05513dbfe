"""Types nested in groups: Ward on weighted centres, codes, small types dissolved, the niche kept."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.constants import SET_ASIDE
from analysis.segment.levels import (GROUPS_MAX, GROUPS_MIN, MIN_TYPE_SHARE, TYPES_MAX, TYPES_MIN, fit_levels,
                                     group_count, type_count, ward_groups)


def test_ward_merges_the_nearest_centres_and_weights_by_size():
    centres = np.array([[0.0], [1.0], [10.0], [11.0]])
    assert ward_groups(centres, np.array([100, 100, 100, 100]), 2).tolist() == [0, 0, 1, 1]
    # Same distances, but merging the heavy pair costs more than merging a light one into its neighbour.
    centres = np.array([[0.0], [1.0], [2.2]])
    groups = ward_groups(centres, np.array([1000, 1000, 1]), 2)
    assert groups[2] == groups[1] and groups[0] != groups[1]


def test_counts_follow_the_rule_unless_forced():
    assert group_count(2, None) == GROUPS_MIN and group_count(15, None) == GROUPS_MAX and group_count(7, None) == 7
    assert group_count(3, 3) == 3
    assert type_count(4, None) == TYPES_MIN and type_count(9, None) == 27 and type_count(20, None) == TYPES_MAX
    assert type_count(7, 50) == 50


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 6, size=(5, 4))
    labels = rng.choice(5, size=6000, p=[0.3, 0.25, 0.2, 0.2, 0.05])
    return (centres[labels] + rng.normal(0, 1, size=(6000, 4))).astype(np.float32)


def test_types_nest_in_groups_with_vendor_codes(blobs):
    levels, labels = fit_levels(blobs, groups=4, types=12, seed=0)
    assert levels.n_groups == 4 and levels.n_types <= 12 and labels.max() == levels.n_types - 1
    codes = [levels.codes[t] for t in range(levels.n_types)]
    assert len(set(codes)) == len(codes)
    for t, code in enumerate(codes):
        assert code[0] == levels.group_codes[int(levels.type_group[t])] and code[1:].isdigit()
    assert levels.codes[SET_ASIDE] == levels.group_codes[SET_ASIDE] == "X"
    sizes = np.bincount(labels)
    assert sizes.min() >= MIN_TYPE_SHARE * len(labels)  # small types dissolved
    group_sizes = np.bincount(levels.type_group, weights=sizes)
    assert list(group_sizes) == sorted(group_sizes, reverse=True)  # A is the largest group
    assert (levels.kmeans.predict(blobs) == labels).mean() > 0.99  # the model assigns as fitted
    groups = levels.groups_of(np.array([SET_ASIDE, 0, levels.n_types - 1]))
    assert groups[0] == SET_ASIDE and groups[1] == levels.type_group[0]


def test_same_seed_same_types(blobs):
    a = fit_levels(blobs, groups=4, types=12, seed=3)[1]
    b = fit_levels(blobs, groups=4, types=12, seed=3)[1]
    assert np.array_equal(a, b)


def test_forced_type_count_is_kept_exactly(blobs):
    levels, _ = fit_levels(blobs, groups=4, types=TYPES_MIN + 3, seed=0, forced_types=True)
    assert levels.n_types == TYPES_MIN + 3 and levels.forced_types


@pytest.mark.slow
def test_the_planted_niche_comes_out_as_a_type_with_its_index(small_data, small_results):
    """The generator plants a niche (4% of the population, index 350, weakly separated). The run
    keeps it as a type: the type holding most of the niche's people has an index within 25% of
    the planted one, and it is mailed (over-represented), whatever its group's verdict."""
    from analysis.results import load_results
    truth = json.loads(small_data.truth.read_text(encoding="utf-8"))
    (niche,) = [s for s in truth["segments"] if s["niche"]]
    assert 0.03 <= niche["population_share"] <= 0.05 and 300 <= niche["expected_index"] <= 400
    labels = pd.read_parquet(small_data.labels)
    planted = labels[labels["table"] == "population"].sort_values("row")["segment"].to_numpy()
    results = load_results(small_results)
    found = results.table("labels_population")["segment"].to_numpy()
    members = found[(planted == niche["id"]) & (found != SET_ASIDE)]
    dominant = int(np.bincount(members).argmax())
    entry = next(t for t in results.summary["types"] if t["id"] == dominant)
    assert entry["index"] == pytest.approx(niche["expected_index"], rel=0.25), entry
    assert entry["verdict"] == "over-represented"
    assert dominant in results.summary["targeting"]["segments"]
