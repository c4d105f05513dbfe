"""Scale/fill/PCA (blocked, against scikit-learn) and the interpretation of components in words."""
from __future__ import annotations

import operator
import warnings
from functools import reduce as reduce_blocks

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from analysis.prepare import reduce
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


# --- the blocked fit against scikit-learn -----------------------------------------------------------

def awkward(n: int = 3_000, seed: int = 1) -> pd.DataFrame:
    """Correlated columns with distinct component variances, 10% unknown values, a column whose
    mean is large against its spread, a constant that is not a whole number and a column with
    no known value."""
    rng = np.random.default_rng(seed)
    mixed = rng.normal(size=(n, 5)) @ np.tril(rng.uniform(0.3, 1.5, size=(5, 5)))
    frame = pd.DataFrame(mixed, columns=[f"c{i}" for i in range(5)])
    frame["YEAR"] = 1990 + rng.integers(0, 3, size=n) * 0.25 + 0.1 * mixed[:, 0]
    frame.iloc[:, :6] = frame.iloc[:, :6].mask(rng.random((n, 6)) < 0.1)
    frame["CONSTANT"] = 0.1
    frame["EMPTY"] = np.nan
    return frame.astype(np.float32)


def sklearn_fit(frame: pd.DataFrame, rows: np.ndarray) -> tuple[StandardScaler, PCA, np.ndarray]:
    """StandardScaler on the float32 rows, zero fill, PCA(covariance_eigh) on the filled rows in float64."""
    x = frame.to_numpy()[rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the column with no known value
        scaler = StandardScaler().fit(x)
    filled = np.nan_to_num(scaler.transform(x).astype(np.float64), nan=0.0)
    pca = PCA(svd_solver="covariance_eigh").fit(filled)
    return scaler, pca, pca.transform(filled)


def test_the_blocked_fit_equals_scikit_learn(monkeypatch):
    monkeypatch.setattr(reduce, "BLOCK_ROWS", 700)  # several blocks, the last one short
    frame = awkward()
    rows = np.random.default_rng(2).random(len(frame)) < 0.9
    reducer, scores = fit_reducer(frame, rows, 0.99, seed=0)  # keeps the 6 components with variance
    scaler, pca, expected = sklearn_fit(frame, rows)

    np.testing.assert_array_equal(reducer.scaler.n_samples_seen_, scaler.n_samples_seen_)
    for name in ("mean_", "var_", "scale_"):  # NaN for the empty column in both
        np.testing.assert_allclose(getattr(reducer.scaler, name), getattr(scaler, name), rtol=1e-12, err_msg=name)
    assert reducer.scaler.scale_[frame.columns.get_loc("CONSTANT")] == 1.0  # scikit-learn's constant rule
    np.testing.assert_allclose(reducer.variance_ratio, pca.explained_variance_ratio_, atol=1e-6)
    # the constant and the empty column span two components of variance 0 (any rotation of them is
    # right); the kept ones, of distinct variances, are compared with scikit-learn's signs
    keep = reducer.n_keep
    variances = pca.explained_variance_
    assert keep == 6 and variances[keep] == 0 and (variances[1:keep] < 0.8 * variances[:keep - 1]).all()
    np.testing.assert_allclose(reducer.pca.components_, pca.components_[:keep], atol=1e-5)
    np.testing.assert_allclose(reducer.pca.explained_variance_, pca.explained_variance_[:keep], rtol=1e-5)
    assert reducer.pca.noise_variance_ == pytest.approx(pca.explained_variance_[keep:].mean(), abs=1e-6)
    np.testing.assert_allclose(scores, expected[:, :keep], atol=1e-4)
    # the reducer applied to new rows (``segments assign``) gives the fit's scores
    np.testing.assert_allclose(reducer.transform(frame.to_numpy(), rows), scores, atol=1e-5)


@pytest.mark.parametrize("block_rows", [1, 999, 10_000])
def test_the_fit_does_not_depend_on_the_blocks(monkeypatch, block_rows):
    frame = awkward()
    rows = np.random.default_rng(3).random(len(frame)) < 0.8
    monkeypatch.setattr(reduce, "BLOCK_ROWS", 250)
    reference, reference_scores = fit_reducer(frame, rows, 0.95, seed=0)
    monkeypatch.setattr(reduce, "BLOCK_ROWS", block_rows)
    reducer, scores = fit_reducer(frame, rows, 0.95, seed=0)
    for name in ("mean_", "var_", "scale_"):
        np.testing.assert_allclose(getattr(reducer.scaler, name), getattr(reference.scaler, name), rtol=1e-13)
    np.testing.assert_allclose(reducer.variance_ratio, reference.variance_ratio, atol=1e-7)
    np.testing.assert_allclose(reducer.pca.components_, reference.pca.components_, atol=1e-6)
    np.testing.assert_allclose(scores, reference_scores, atol=1e-5)


def test_the_threads_do_not_change_a_bit(monkeypatch):
    """Block results are added in block order, whichever thread finished first."""
    frame = awkward()
    rows = np.ones(len(frame), bool)
    monkeypatch.setattr(reduce, "BLOCK_ROWS", 100)
    together, together_scores = fit_reducer(frame, rows, 0.95, seed=0)
    monkeypatch.setattr(reduce, "WORKERS", 1)
    alone, alone_scores = fit_reducer(frame, rows, 0.95, seed=0)
    np.testing.assert_array_equal(together.scaler.var_, alone.scaler.var_)
    np.testing.assert_array_equal(together.pca.components_, alone.pca.components_)
    np.testing.assert_array_equal(together_scores, alone_scores)


def test_pooled_moments_equal_the_moments_of_all_values():
    rng = np.random.default_rng(4)
    columns = (1e4 + rng.normal(size=(3, 1_000))).astype(np.float32)  # columns x rows
    columns[0, :600] = np.nan  # the first blocks know nothing of column 0
    columns[1, ::3] = np.nan
    cuts = [0, 0, 200, 500, 501, 1_000]  # an empty block and a block of one row among them
    pooled = reduce_blocks(operator.add, [reduce.Moments.of(columns[:, a:b]) for a, b in zip(cuts[:-1], cuts[1:])])
    whole = reduce.Moments.of(columns)
    known = [c[~np.isnan(c)].astype(np.float64) for c in columns]
    np.testing.assert_array_equal(pooled.count, [len(k) for k in known])
    np.testing.assert_allclose(pooled.mean, [k.mean() for k in known], rtol=1e-15)
    np.testing.assert_allclose(pooled.m2, [((k - k.mean()) ** 2).sum() for k in known], rtol=1e-10)
    np.testing.assert_allclose(pooled.m2, whole.m2, rtol=1e-10)
