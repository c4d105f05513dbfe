"""The lookalike score: gains against the segment selection, held-out rows kept out of the fit."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from analysis.constants import RESULTS_FILE
from analysis.pipeline import prepare
from analysis.prepare.reduce import fit_reducer
from analysis.settings import AnalysisSettings
from analysis.shell.progress import Stages
from analysis.shell.sources import resolve_inputs
from analysis.target import lookalike as la


def test_gains_curve_ties_are_split_in_proportion():
    depths = np.array([0.0, 0.25, 0.5, 1.0])
    # Equal scores for everyone: mailing a share of them reaches the same share of customers.
    same = la.gains_curve(np.ones(100), np.ones(40), depths)
    np.testing.assert_allclose(same, depths)
    # Every customer scores 1, half the population 0 and half 1: the top half of the population
    # is one block of ties holding all customers, so mailing a quarter reaches half of them.
    split = la.gains_curve(np.r_[np.zeros(50), np.ones(50)], np.ones(40), depths)
    np.testing.assert_allclose(split, [0.0, 0.5, 1.0, 1.0])


def test_split_parts_are_disjoint_and_sized():
    split = la._split(np.random.default_rng(0), 1000, 300, sample=400)
    assert not np.intersect1d(split.pop_train, split.pop_held).size
    assert not np.intersect1d(split.cust_train, split.cust_held).size
    assert len(split.pop_train) + len(split.pop_held) == 400
    assert len(split.cust_train) + len(split.cust_held) == 300  # fewer customers than the sample
    assert len(split.pop_held) == 100 and len(split.cust_held) == 75


def test_decile_follows_the_population_cut_points():
    model = la.LookalikeModel(design=None, classifier=None, population_odds=1.0,
                              decile_edges=np.arange(1, 10) / 10.0)
    assert model.decile(np.array([0.05, 0.1, 0.55, 0.95, 3.0])).tolist() == [10, 9, 5, 1, 1]


def test_indicators_flag_the_missing_values():
    """The indicator columns say where a value was missing, although the fill replaces it in place."""
    rng = np.random.default_rng(0)
    matrix = pd.DataFrame(rng.normal(size=(400, 4)).astype(np.float32), columns=list("abcd"))
    matrix.iloc[rng.choice(400, 60, replace=False), 1] = np.nan
    reducer, _ = fit_reducer(matrix, np.ones(400, bool), 0.9, seed=0)
    rows = matrix.to_numpy()[:50]
    inputs = la.Design(reducer, components=False, indicators=(1,)).transform(rows)
    assert inputs.shape == (50, 5)
    np.testing.assert_array_equal(inputs[:, 4], np.isnan(rows[:, 1]).astype(np.float32))
    assert inputs[:, 4].any() and not np.isnan(inputs).any()
    assert np.isnan(rows[:, 1]).any()  # the caller's rows are left as they were


def test_importance_by_column_equals_shuffling_the_rows():
    """For a column-wise design, shuffling the model inputs gives what transforming shuffled rows gives."""
    rng = np.random.default_rng(1)
    matrix = pd.DataFrame(rng.normal(size=(600, 3)).astype(np.float32), columns=list("abc"))
    matrix.iloc[rng.choice(600, 90, replace=False), 0] = np.nan
    reducer, _ = fit_reducer(matrix, np.ones(600, bool), 0.9, seed=0)
    design = la.Design(reducer, components=False, indicators=(0,))
    x = matrix.to_numpy()
    order = rng.permutation(600)
    shuffled_rows = x.copy()
    shuffled_rows[:, 0] = x[order, 0]
    inputs = design.transform(x)
    shuffled_inputs = inputs.copy()
    shuffled_inputs[:, [0, 3]] = inputs[order][:, [0, 3]]
    np.testing.assert_array_equal(design.transform(shuffled_rows), shuffled_inputs)


@pytest.mark.slow
def test_lookalike_beats_segments_at_the_headline_depth(small_results):
    """On generated data with the within-segment gradient the held-out lookalike ranking reaches
    clearly more customers than mailing whole segments at the same depth.

    Margin: about 2,000 held-out customers and 7,500 held-out population rows; the share reached
    at ~23% depth has a standard error of about 0.011 from the customers plus ~0.01 from the
    population cut, so ~0.015 together. 0.05 is more than three of those; the generator's
    gradient (customers of one in-line segment lean to its saver end) plus fuzzy segment borders
    give about 0.1 at seed 0. Among rows with enough data to be segmented (no help from missing
    data at all) the lookalike still has to beat the segments, by two standard errors.
    """
    facts = json.loads((small_results / RESULTS_FILE).read_text())["lookalike"]
    head = next(a for a in facts["at_depth"] if a["depth"] == round(facts["headline_depth"], 4))
    assert head["lookalike"] >= head["segments"] + 0.05
    assert head["lookalike_kept_rows"] >= head["segments"] + 0.03
    low, high = facts["auc_ci"]
    assert 0.5 < low <= facts["auc"] <= high < 1.0
    assert facts["chosen_model"] in la.MODELS


@pytest.fixture(scope="module")
def prepared(small_settings):
    stages = Stages(stream=None)
    analysis = AnalysisSettings(k_max=10)
    data = prepare(resolve_inputs(small_settings, stages), analysis, stages)
    reducer, _ = fit_reducer(data.pop.matrix, data.pop.kept, analysis.variance_target, analysis.seed)
    return data, reducer


def _fit(data, reducer, pop, cust, sample=1_200):
    mailing = pd.DataFrame({"cumulative_population_share": [0.2], "cumulative_customer_share": [0.4]})
    labels = np.where(pop.set_aside, -1, 0)
    return la.fit_lookalike(data.plan, reducer, pop, cust, labels, mailing, 0.2, sample=sample,
                            indicators=False, seed=3)


@pytest.mark.slow
def test_the_model_never_sees_held_out_rows(prepared):
    """Structural: scrambling every held-out row (population and customers) leaves the fitted
    classifier and the model choice unchanged, so nothing about those rows reached the fit."""
    import dataclasses
    data, reducer = prepared
    first = _fit(data, reducer, data.pop, data.cust)
    split = first.split
    pop_matrix, cust_matrix = data.pop.matrix.copy(), data.cust.matrix.copy()
    rng = np.random.default_rng(1)
    pop_matrix.iloc[split.pop_held] = rng.normal(size=(len(split.pop_held), pop_matrix.shape[1])).astype(np.float32)
    cust_matrix.iloc[split.cust_held] = rng.normal(size=(len(split.cust_held), cust_matrix.shape[1])).astype(np.float32)
    second = _fit(data, reducer, dataclasses.replace(data.pop, matrix=pop_matrix),
                  dataclasses.replace(data.cust, matrix=cust_matrix))
    assert second.facts["cv"] == first.facts["cv"] and second.facts["chosen_model"] == first.facts["chosen_model"]
    probe = data.pop.matrix.to_numpy()[:500]
    inputs = first.model.design.transform(probe)
    np.testing.assert_array_equal(first.model.classifier.predict_proba(inputs),
                                  second.model.classifier.predict_proba(second.model.design.transform(probe)))
    # ...while the held-out measurement did change: the scrambled rows were really used to measure.
    assert second.facts["held_out_auc"] != first.facts["held_out_auc"]


@pytest.mark.slow
@pytest.mark.parametrize("likely, weak_boosting", [("boosting", False), ("logistic", False), ("boosting", True)])
def test_packed_jobs_give_what_one_job_at_a_time_gives(prepared, monkeypatch, likely, weak_boosting):
    """Two workers, the final fits of ``LIKELY`` started before the choice and the importance in
    chunks give the same facts, tables and model to the bit as one worker running every job in
    turn. The cases: the guess is right; the guess is wrong (its fits are thrown away); and the
    logistic model really is chosen (boosting replaced by a constant, AUC 0.5), so the guessed
    boosting fits are discarded and the logistic ones fitted after the choice."""
    if weak_boosting:
        real = la._classifier
        monkeypatch.setattr(la, "_classifier", lambda name, seed, balanced=False: (
            DummyClassifier(strategy="prior") if name == "boosting" else real(name, seed, balanced)))
    data, reducer = prepared

    def fit(workers: int, guess: str) -> la.Lookalike:
        monkeypatch.setattr(la, "FIT_WORKERS", workers)
        monkeypatch.setattr(la, "LIKELY", guess)
        return _fit(data, reducer, data.pop, data.cust, sample=300)

    alone, packed = fit(1, "boosting"), fit(2, likely)
    assert packed.facts["chosen_model"] == ("logistic" if weak_boosting else "boosting")
    assert json.dumps(packed.facts) == json.dumps(alone.facts)
    assert packed.tables.keys() == alone.tables.keys()
    for name, table in alone.tables.items():
        pd.testing.assert_frame_equal(packed.tables[name], table, check_exact=True)
    assert packed.model.population_odds == alone.model.population_odds
    np.testing.assert_array_equal(packed.model.decile_edges, alone.model.decile_edges)
    probe = data.pop.matrix.to_numpy()[:500]
    np.testing.assert_array_equal(packed.model.score(probe), alone.model.score(probe))


def test_tree_flags_keep_the_first_of_columns_missing_together():
    """Only exact copies on the training rows go, and the first of each set stays."""
    nan = np.nan
    x = np.array([[nan, nan, 1.0, nan, 2.0],
                  [nan, nan, nan, 1.0, 2.0],
                  [1.0, 1.0, nan, 1.0, nan],
                  [1.0, 1.0, 1.0, nan, 2.0]], dtype=np.float32)
    # Columns 0 and 1 are missing on rows 0-1; 3 on rows 0 and 3 (a different set); 4 on row 2.
    assert la._distinct_flags(x, (0, 1, 2, 3, 4)) == (0, 2, 3, 4)
    assert la._distinct_flags(x, (1, 0, 4)) == (1, 4)  # the earlier column of the pair stays
    assert la._distinct_flags(x[[0, 2]], (0, 1, 2, 3)) == (0, 2)  # 1 and 3 copy 0 on these rows
    assert la._distinct_flags(x, ()) == ()


def _flag_data(seed: int = 0):
    """Rows whose features 1-3 go missing together on the training rows (one source block) while
    feature 3 does not follow them on the held-out rows; feature 4 has its own gaps. Customers
    (y = 1) miss more often, so the flags carry signal."""
    rng = np.random.default_rng(seed)
    n, n_train = 3_000, 2_000
    y = (rng.random(n) < 0.5).astype(float)
    x = rng.normal(size=(n, 5)).astype(np.float32) + y[:, None].astype(np.float32) * 0.3
    block = rng.random(n) < np.where(y == 1, 0.3, 0.1)
    x[block, 1:4] = np.nan
    x[n_train:, 3] = np.where(rng.random(n - n_train) < 0.2, np.nan, rng.normal(size=n - n_train))
    x[rng.random(n) < np.where(y == 1, 0.2, 0.05), 4] = np.nan
    reducer, _ = fit_reducer(pd.DataFrame(x[:n_train], columns=list("abcde")), np.ones(n_train, bool), 0.9, seed=0)
    return reducer, x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def test_dropping_copied_flags_leaves_the_trees_their_scores_and_importance_unchanged():
    """The boosting model fitted without the flags that copy an earlier one (on the training rows)
    scores held-out rows, where the copies differ, exactly as the one fitted with every flag, and
    every source's permutation importance is the same to the bit."""
    reducer, x_train, y_train, x_held, y_held = _flag_data()
    columns = (1, 2, 3, 4)
    assert la._distinct_flags(x_train, columns) == (1, 4)
    assert not np.array_equal(np.isnan(x_held[:, 1]), np.isnan(x_held[:, 3]))  # not copies on held-out rows
    every, distinct = (la.Design(reducer, components=False, indicators=c) for c in (columns, (1, 4)))
    fits = [la._fit_classifier("boosting", 0, d.transform(x_train), y_train) for d in (every, distinct)]
    held = [la._odds(f, d.transform(x_held)) for f, d in zip(fits, (every, distinct))]
    np.testing.assert_array_equal(held[0], held[1])
    without = la._fit_classifier("boosting", 0, la.Design(reducer, components=False).transform(x_train), y_train)
    assert not np.array_equal(la._odds(without, la.Design(reducer, components=False).transform(x_held)), held[0])

    plan = type("Plan", (), {"columns": list("abcde")})()
    rng = np.random.default_rng(2)
    sources = {"a": [0], "block": [1, 2, 3], "e": [4]}
    draws = la.ImportanceDraws(np.arange(len(y_held)), sources,
                               {s: rng.permutation(len(y_held)) for s in sources})
    aucs = [[la._shuffled_auc(plan, f, d, draws, x_held, d.transform(x_held), y_held, s) for s in sources]
            for f, d in zip(fits, (every, distinct))]
    assert aucs[0] == aucs[1]
    assert aucs[0][1] < la._auc(y_held, held[0])  # the block (and its flag) matters


@pytest.mark.slow
def test_tree_model_reads_distinct_flags_with_the_same_results(prepared, monkeypatch):
    """With ``indicators``: the boosting model reads one flag per set of features missing together
    on its training rows and gives the facts, tables and scores of the model that reads every
    flag; the logistic model (L2 penalty: copies change its fit) reads every flag."""
    data, reducer = prepared

    def fit() -> la.Lookalike:
        mailing = pd.DataFrame({"cumulative_population_share": [0.2], "cumulative_customer_share": [0.4]})
        return la.fit_lookalike(data.plan, reducer, data.pop, data.cust, np.where(data.pop.set_aside, -1, 0),
                                mailing, 0.2, sample=1_200, indicators=True, seed=3)

    distinct = fit()
    assert distinct.facts["chosen_model"] == "boosting"
    flags = distinct.model.design.indicators
    assert 0 < len(flags) < distinct.facts["indicator_columns"]
    monkeypatch.setattr(la, "_distinct_flags", lambda x, columns: columns)
    every = fit()
    assert len(every.model.design.indicators) == distinct.facts["indicator_columns"]
    assert set(flags) < set(every.model.design.indicators)
    assert json.dumps(distinct.facts) == json.dumps(every.facts)
    for name, table in every.tables.items():
        pd.testing.assert_frame_equal(distinct.tables[name], table, check_exact=True)
    probe = data.pop.matrix.to_numpy()[:2_000]
    np.testing.assert_array_equal(distinct.model.score(probe), every.model.score(probe))
    monkeypatch.undo()

    real = la._classifier
    monkeypatch.setattr(la, "_classifier", lambda name, seed, balanced=False: (
        DummyClassifier(strategy="prior") if name == "boosting" else real(name, seed, balanced)))
    logistic = fit()
    assert logistic.facts["chosen_model"] == "logistic"
    assert len(logistic.model.design.indicators) == logistic.facts["indicator_columns"]


def test_tree_sums_give_predict_probas_odds_with_columns_shuffled():
    """Recomputing only the trees that read the shuffled columns gives the odds of a full
    prediction to the bit, for each source; not built for a model that is not boosting."""
    reducer, x_train, y_train, x_held, y_held = _flag_data(1)
    design = la.Design(reducer, components=False, indicators=(1, 4))
    classifier = la._fit_classifier("boosting", 0, design.transform(x_train), y_train)
    inputs = design.transform(x_held)
    sums = la.TreeSums.of(classifier, inputs, la._odds(classifier, inputs))
    assert sums is not None  # None: scikit-learn's internals changed, the importance predicts in full
    rng = np.random.default_rng(4)
    for moved in ([0], [1, 2, 3, 5], [4, 6], []):
        shuffled = inputs.copy()
        shuffled[:, moved] = inputs[np.ix_(rng.permutation(len(inputs)), moved)]
        np.testing.assert_array_equal(sums.odds(shuffled, frozenset(moved)), la._odds(classifier, shuffled))
    assert any(0 in r for r in sums.reads) and any(0 not in r for r in sums.reads)  # trees skipped and not
    assert la.TreeSums.of(classifier, inputs, la._odds(classifier, inputs) * 2) is None  # a sum that differs
    logistic = la._fit_classifier("logistic", 0, design.transform(x_train), y_train)
    assert la.TreeSums.of(logistic, inputs, la._odds(logistic, inputs)) is None
