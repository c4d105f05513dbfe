"""Scale, impute and reduce the cleaned population; explain each principal component in words.

The pipeline is fitted on the population rows kept after cleaning and only *applied* to
customers. Columns are standardised with the mean and standard deviation of their known values
(scikit-learn's StandardScaler ignores NaN), then a missing value becomes 0: the population
mean. An unknown answer thus pulls a person towards no side of any component (a median would
place people at a code that can sit well off-centre on skewed scales). The known values keep
their scale; a column missing for a share m of people has variance 1 - m after filling, so
heavily missing columns weigh a little less in PCA. Standardising puts codes, counts and 0/1 flags on one
footing before PCA.

PCA is fitted with all components so the scree curve is complete, then again with only the
first ``n_keep`` that together explain ``variance_target`` of the variance, so transforming
writes only the columns the clustering uses. Scaling and imputation work in place on the one
row-subset copy each call makes: at 900k rows that copy is the largest allocation here, and
the scaler is fitted in row chunks because it accumulates in float64.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from analysis.prepare.cleaning import CleanColumn

POLE_SIZE = 3  # features named on each side of a component
CHUNK_ROWS = 25_000  # rows per float64 temporary when fitting the scaler (25 MB each at 120 columns)


@dataclass
class Reducer:
    """The fitted scale -> impute -> PCA pipeline (PCA keeping only the kept components)."""

    pipeline: Pipeline
    variance_ratio: np.ndarray  # of every component, for the scree curve
    columns: tuple[str, ...]

    @property
    def pca(self) -> PCA:
        return self.pipeline[-1]

    @property
    def scaler(self) -> StandardScaler:
        return self.pipeline[0]

    @property
    def n_keep(self) -> int:
        return int(self.pca.n_components_)

    def transform(self, matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Scores of ``matrix[rows]`` on the kept components (float32)."""
        return self.pipeline.transform(np.asarray(matrix, dtype=np.float32)[rows])

    def back_to_features(self, scores: np.ndarray) -> pd.DataFrame:
        """Map points in component space (e.g. cluster centres) back to cleaned-feature units."""
        scaled = self.pca.inverse_transform(np.asarray(scores, dtype=np.float64))
        return pd.DataFrame(self.scaler.inverse_transform(scaled), columns=list(self.columns))


def fit_reducer(matrix: pd.DataFrame, rows: np.ndarray, variance_target: float,
                seed: int) -> tuple[Reducer, np.ndarray]:
    """Fit on ``matrix[rows]`` (the population's kept rows); return the reducer and their scores.

    BLAS runs on one thread here: on this shared 2-core machine two threads spun against other
    processes and took 12 s of CPU instead of 5 (same result; the products are a small part).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        reducer = _fit(matrix, rows, variance_target, seed)
        # Scored in row blocks after the fit has released its scaled copy, so that copy and
        # the scores are never held together (about 190 MB less at the peak, the same numbers).
        values = matrix.to_numpy(dtype=np.float32)
        picked = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        scores = np.empty((len(picked), reducer.n_keep), dtype=np.float32)
        for start in range(0, len(picked), CHUNK_ROWS):
            block = values[picked[start:start + CHUNK_ROWS]]
            _scale_fill(block, reducer.scaler)
            with config_context(assume_finite=True):
                scores[start:start + CHUNK_ROWS] = reducer.pca.transform(block)
    return reducer, scores


def _fit(matrix: pd.DataFrame, rows: np.ndarray, variance_target: float, seed: int) -> Reducer:
    work = matrix.to_numpy(dtype=np.float32)[rows]
    scaler = StandardScaler(copy=False)
    for start in range(0, len(work), CHUNK_ROWS):
        scaler.partial_fit(work[start:start + CHUNK_ROWS])
    imputer = SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True, copy=False)
    imputer.fit(work[:1])  # a constant fill learns nothing from the rows
    for start in range(0, len(work), CHUNK_ROWS):
        _scale_fill(work[start:start + CHUNK_ROWS], scaler)
    scaled = work
    # copy=False: ``scaled`` is already this function's private copy; any in-place centring
    # subtracts means that are zero after standardising, so the scores below are unchanged.
    with config_context(assume_finite=True):  # filled above; the check would hold a 100 MB mask
        full = PCA(svd_solver="covariance_eigh", random_state=seed, copy=False).fit(scaled)
    n_keep = kept_components(full.explained_variance_ratio_, variance_target)
    # A second fit keeping n_keep components rather than editing the fitted attributes of the
    # first: covariance_eigh works on the columns x columns covariance, so it costs 0.3 s and no
    # large allocation at 800,000 x 120 (measured), and gives the same scores to 1e-7.
    with config_context(assume_finite=True):
        pca = PCA(n_components=n_keep, svd_solver="covariance_eigh", random_state=seed, copy=False).fit(scaled)
    return Reducer(make_pipeline(scaler, imputer, pca), full.explained_variance_ratio_, tuple(matrix.columns))


def _scale_fill(block: np.ndarray, scaler: StandardScaler) -> None:
    """What the fitted scaler's and the zero fill's ``transform`` do, in place on ``block``.

    Their own transforms took 2 s at 800,000 x 120 (the imputer builds a NaN mask of the whole
    matrix); this gives the same numbers to the bit.
    """
    block -= scaler.mean_.astype(np.float32)
    block /= scaler.scale_.astype(np.float32)
    np.copyto(block, np.float32(0.0), where=np.isnan(block))


def kept_components(variance_ratio: np.ndarray, variance_target: float) -> int:
    """How many leading components together explain ``variance_target`` of the variance."""
    cumulative = np.cumsum(variance_ratio)
    return int(min(np.searchsorted(cumulative, variance_target) + 1, len(cumulative)))


def assemble_reducer(scaler: StandardScaler, imputer: SimpleImputer, full: PCA, variance_target: float,
                     columns: tuple[str, ...]) -> Reducer:
    """The reducer from fitted parts, keeping the components that explain ``variance_target``.

    ``fit_reducer`` fits on rows in memory; the dask engine builds a full PCA from per-partition
    sums (it has no rows to refit on) and keeps the leading components here.
    """
    n_keep = kept_components(full.explained_variance_ratio_, variance_target)
    kept = copy.copy(full)
    kept.n_components = kept.n_components_ = n_keep
    for name in ("components_", "explained_variance_", "explained_variance_ratio_", "singular_values_"):
        setattr(kept, name, getattr(full, name)[:n_keep].copy())
    return Reducer(make_pipeline(scaler, imputer, kept), full.explained_variance_ratio_, tuple(columns))


def scree(reducer: Reducer) -> pd.DataFrame:
    """Variance explained per component and cumulated, with a flag for the kept ones."""
    ratio = reducer.variance_ratio
    return pd.DataFrame({
        "component": np.arange(1, len(ratio) + 1),
        "variance_ratio": ratio,
        "cumulative": np.cumsum(ratio),
        "kept": np.arange(len(ratio)) < reducer.n_keep,
    })


def loadings(reducer: Reducer, n_components: int) -> pd.DataFrame:
    """Weights of the first components, one row per cleaned column."""
    n = min(n_components, reducer.n_keep)
    return pd.DataFrame(reducer.pca.components_[:n].T, index=list(reducer.columns),
                        columns=[f"PC{i + 1}" for i in range(n)])


def interpret(reducer: Reducer, columns: dict[str, CleanColumn], n_components: int = 5) -> list[dict]:
    """Name both poles of each leading component from its strongest weights.

    A high score on a component means high values of its positive-weight columns and low
    values of its negative-weight columns, so the positive pole is described by
    ``words(+1)`` of the former and ``words(-1)`` of the latter. The words come from each
    column's own scale direction, so a FINANZ_* or income score (where low = strong) is
    never read backwards.
    """
    table = loadings(reducer, n_components)
    result = []
    for name in table.columns:
        weights = table[name]
        strongest = weights.abs().sort_values(ascending=False).index[: 2 * POLE_SIZE]
        positive = [columns[c].words(np.sign(weights[c])) for c in strongest][:POLE_SIZE]
        negative = [columns[c].words(-np.sign(weights[c])) for c in strongest][:POLE_SIZE]
        result.append({
            "component": name,
            "variance_ratio": float(reducer.pca.explained_variance_ratio_[int(name[2:]) - 1]),
            "positive_pole": positive,
            "negative_pole": negative,
            "top_weights": [{"column": c, "description": columns[c].description,
                             "weight": round(float(weights[c]), 4)} for c in strongest],
        })
    return result
