"""Impute/scale/PCA and the interpretation of components in words."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.prepare.cleaning import CleanColumn
from analysis.prepare.reduce import fit_reducer, interpret, scree

COLUMNS = {
    "AGE": CleanColumn("AGE", "AGE", "scale", "Age band", "younger", "older"),
    "SAVER": CleanColumn("SAVER", "SAVER", "scale", "Money saver", "keen savers", "not savers"),
    "NOISE": CleanColumn("NOISE", "NOISE", "scale", "Noise", "low noise", "high noise"),
}


def data(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Older people save more: AGE up means SAVER code DOWN (low code = keen saver)."""
    rng = np.random.default_rng(seed)
    age = rng.normal(size=n)
    return pd.DataFrame({"AGE": age, "SAVER": -age + 0.1 * rng.normal(size=n),
                         "NOISE": 0.3 * rng.normal(size=n)}, dtype=np.float32)


def fit(frame: pd.DataFrame, target: float):
    return fit_reducer(frame, np.ones(len(frame), bool), target, seed=0)


def test_components_kept_reach_the_variance_target():
    # standardised, AGE and SAVER share one component (2 of 3 units of variance), NOISE another
    reducer, scores = fit(data(), 0.6)
    table = scree(reducer)
    assert table["variance_ratio"].iloc[0] == pytest.approx(2 / 3, abs=0.01)
    assert table["kept"].tolist() == [True, False, False]
    assert scores.shape == (2000, 1) and scores.dtype == np.float32
    assert scree(fit(data(), 0.8)[0])["kept"].tolist() == [True, True, False]


def test_only_the_given_rows_are_fitted_and_the_input_is_untouched():
    frame = data()
    frame.loc[:999, "AGE"] += 100  # rows left out of the fit
    before = frame.copy()
    rows = np.arange(len(frame)) >= 1000
    reducer, _ = fit_reducer(frame, rows, 0.6, seed=0)
    assert reducer.scaler.mean_[0] == pytest.approx(frame["AGE"][rows].mean(), abs=1e-4)
    pd.testing.assert_frame_equal(frame, before)


def test_missing_values_are_imputed_by_population_mean():
    frame = data()
    frame.loc[:9, "AGE"] = np.nan
    reducer, scores = fit(frame, 0.99)
    assert reducer.scaler.mean_[0] == pytest.approx(np.nanmean(frame["AGE"]), abs=1e-5)
    assert reducer.scaler.scale_[0] == pytest.approx(np.nanstd(frame["AGE"]), rel=1e-4)  # known values only
    assert np.isfinite(scores).all()
    # an unknown value is the mean, i.e. 0 after scaling: the row sits at the centre on AGE
    assert reducer.pipeline[:2].transform(frame.iloc[:1].to_numpy())[0, 0] == 0


def test_poles_read_each_scale_in_its_own_direction():
    reducer, _ = fit(data(), 0.6)
    first = interpret(reducer, COLUMNS, n_components=1)[0]
    poles = {tuple(sorted(first["positive_pole"][:2])), tuple(sorted(first["negative_pole"][:2]))}
    assert poles == {("keen savers", "older"), ("not savers", "younger")}


def test_back_to_features_inverts_the_transform():
    frame = data()
    reducer, _ = fit(frame, 1.0)
    scores = reducer.transform(frame.to_numpy(), np.arange(5))
    np.testing.assert_allclose(reducer.back_to_features(scores).to_numpy(), frame.iloc[:5].to_numpy(),
                               atol=1e-4)
