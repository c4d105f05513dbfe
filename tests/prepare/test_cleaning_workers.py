"""Cleaning on several threads gives the same bits as on one, on generated tables of every feature."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.inputs.schema import Feature, load_schema
from analysis.prepare import cleaning
from analysis.prepare.cleaning import CleanedTable, apply_cleaning, decode, fit_cleaning
from analysis.settings import AnalysisSettings


def raw_table(features: list[Feature], rows: int, seed: int) -> pd.DataFrame:
    """Every feature of the schema as ``load_table`` returns it, with valid codes mostly and, in
    each column, blanks, coded-missing values and values outside the codes or the range."""
    rng = np.random.default_rng(seed)
    data = {}
    for j, feature in enumerate(features):
        valid = list(feature.codes) or [str(v) for v in range(int(feature.min or 0), int(feature.max or 30) + 1)]
        odd = ["XX", "Z9"] if feature.is_text else ["99", "-7", "2.5", "100000"]
        pool = valid + list(feature.missing) + odd
        # column j leans towards blanks more or less, so some columns and rows pass the limits, others not
        weights = np.r_[np.full(len(valid), 6.0), np.full(len(feature.missing) + len(odd), 1.0)]
        picks = rng.choice(len(pool), size=rows, p=weights / weights.sum())
        values = np.array(pool, dtype=object)[picks]
        values[rng.random(rows) < 0.05 + 0.4 * (j % 9 == 0)] = None
        if feature.is_text:
            data[feature.name] = pd.Categorical(values)
        else:
            data[feature.name] = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float32)
    frame = pd.DataFrame(data)
    frame.iloc[rng.random(rows) < 0.1, : len(features) // 2] = np.nan  # people missing half their features
    return frame


def assert_identical(a: CleanedTable, b: CleanedTable) -> None:
    assert list(a.matrix.columns) == list(b.matrix.columns)
    # the bits, not the values: NaN == NaN and -0.0 != 0.0 here
    assert np.array_equal(a.matrix.to_numpy().view(np.uint32), b.matrix.to_numpy().view(np.uint32))
    assert np.array_equal(a.set_aside, b.set_aside)
    assert np.array_equal(a.row_missing_share.view(np.uint32), b.row_missing_share.view(np.uint32))
    pd.testing.assert_frame_equal(a.quality, b.quality, check_exact=True)
    pd.testing.assert_frame_equal(a.group_means, b.group_means, check_exact=True)
    assert list(a.group_sums) == list(b.group_sums)
    for name in a.group_sums:
        assert np.array_equal(a.group_sums[name].view(np.uint64), b.group_sums[name].view(np.uint64)), name


@pytest.fixture(scope="module")
def features() -> list[Feature]:
    return list(load_schema().values())


@pytest.mark.parametrize("workers", [2, 3, 8])
def test_threads_give_the_same_plan_and_tables_as_one(features, workers, monkeypatch):
    settings = AnalysisSettings()
    population, customers = raw_table(features, 5000, seed=1), raw_table(features, 1200, seed=2)
    plan, pop = fit_cleaning(population, features, settings)
    cust = apply_cleaning(plan, customers)
    # the data exercise what they should: every kind of problem, rows and columns over the limits
    quality = pop.quality
    assert (quality["blank"] > 0).all() and (quality["coded_missing"] > 0).sum() > 40
    assert (quality["out_of_range"] > 0).all()
    assert 0 < pop.set_aside.mean() < 1 and 0 < len(plan.dropped) < len(features)
    assert any(c.rule == "equals" and isinstance(c.value, str) for c in plan.columns)  # a text level one-hot
    assert {c.value for c in plan.columns if c.rule == "derive"} >= {"WEALTH", "LIFE_STAGE", "LOG", "DECADE"}

    monkeypatch.setattr(cleaning, "SUMS_PER_TASK", 3)  # many group-sum tasks among the column builds
    threaded_plan, threaded_pop = fit_cleaning(population, features, settings, workers=workers)
    threaded_cust = apply_cleaning(threaded_plan, customers, workers=workers)
    assert threaded_plan.log == plan.log and threaded_plan.columns == plan.columns
    assert threaded_plan.levels == plan.levels and threaded_plan.dropped == plan.dropped
    assert_identical(threaded_pop, pop)
    assert_identical(threaded_cust, cust)


def test_decode_on_threads_keeps_columns_text_and_counts(features):
    raw = raw_table(features, 2000, seed=3)
    one, one_quality = decode(raw, features)
    many, many_quality = decode(raw, features, workers=4)
    assert list(many.columns) == list(one.columns)
    for name in one.columns:
        if isinstance(one[name].dtype, pd.CategoricalDtype):  # CAMEO_DEU_2015, OST_WEST_KZ stay text
            assert many[name].equals(one[name]) and list(many[name].cat.categories) == list(one[name].cat.categories)
        else:
            assert np.array_equal(many[name].to_numpy().view(np.uint32), one[name].to_numpy().view(np.uint32))
    pd.testing.assert_frame_equal(many_quality, one_quality, check_exact=True)
    assert int(one_quality["blank"].sum()) == int(raw[[f.name for f in features]].isna().sum().sum())
