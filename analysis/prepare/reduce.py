"""Scale, impute and reduce the cleaned population; explain each principal component in words.

The pipeline is fitted on the population rows kept after cleaning and only *applied* to
customers. Columns are standardised with the mean and standard deviation of their known values
(scikit-learn's StandardScaler ignores NaN), then a missing value becomes 0: the population
mean. An unknown answer thus pulls a person towards no side of any component (a median would
place people at a code that can sit well off-centre on skewed scales). The known values keep
their scale; a column missing for a share m of people has variance 1 - m after filling, so
heavily missing columns weigh a little less in PCA. Standardising puts codes, counts and 0/1 flags on one
footing before PCA.

PCA is fitted with all components so the scree curve is complete; the reducer keeps the first
``n_keep`` that together explain ``variance_target`` of the variance (``assemble_reducer``), so
transforming writes only the columns the clustering uses.

Both engines fit from sums over row blocks, never a scaled copy of the matrix: ``Moments``
(count, mean and squared deviations of the known values, float64, pooled block by block) give
the scaler with StandardScaler's rules (``scaler_from_moments``); ``Cross`` (rows, sums and the
cross-product of the scaled, filled rows, float64) gives the covariance, whose eigenvectors are
the components as scikit-learn's ``covariance_eigh`` solver finds them (``pca_from_cross``).
``fit_reducer`` runs three passes over blocks of ``BLOCK_ROWS`` kept rows on ``WORKERS``
threads (numpy releases the GIL in its ufuncs, gathers and matmul; BLAS is held to one thread
each): moments, cross-products, then the scores into one preallocated float32 array. The dask
engine computes the same ``Moments`` and ``Cross`` per partition.

Why (measured on 802,113 kept rows x 119 columns, float32, load 1.7-1.8 on 2 cores): fitting
StandardScaler in chunks, two PCA fits and a 385 MB scaled copy took 4.2-4.7 s of wall and CPU
on one core; the blocks take 1.25-1.6 s wall, 2.4-3.1 s CPU (single-threaded passes: moments
0.85 s, cross-products 1.0 s, scores 0.75-1.0 s CPU), and the stage's peak memory fell from
1,158 MB to 1,009 MB (``benchmarks/bench.py``). Each block's cross-product is float64: in float32
it saved 0.3-0.5 s of CPU but was as far from a float64 reference as the old fit (variance
ratios 1e-4 relative, components 4e-4 apart, 2e-2 for a pair whose variances differ by 4e-5);
in float64 they are 2e-7 and 2e-5 (the pair 3e-4). Results therefore differ slightly from the
old single-fit code (scores 1e-4 on the leading components); the labels of a full-size run
agree to ARI 0.99995.
"""
from __future__ import annotations

import copy
import operator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.extmath import svd_flip
from threadpoolctl import threadpool_limits

from analysis.inputs.loading import release_memory
from analysis.prepare.cleaning import CleanColumn

POLE_SIZE = 3  # features named on each side of a component
BLOCK_ROWS = 25_000  # rows per block: a 12 MB float32 copy and a 24 MB float64 temporary at 120 columns
# Threads working on blocks (numpy's ufuncs, gathers and matmul release the GIL). With 2 the whole
# run's peak, later in "types and groups", was 20-30 MB higher than with 1 (1,187-1,214 vs 1,167 MB
# at full size, measured; cause not found: not BLAS buffers, not the freed temporaries).
WORKERS = 2


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

    Three passes over row blocks on ``WORKERS`` threads (see the module docstring): the scaler
    from the blocks' moments, the PCA from their cross-products, then the scores. Each block's
    results are added in block order, so the numbers do not depend on which thread ran what.
    BLAS runs on one thread per worker: on this shared 2-core machine multi-threaded BLAS spun at
    barriers against other processes (12 s of CPU instead of 5, same result).
    """
    columns = tuple(matrix.columns)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(WORKERS) as pool:
        scaler = scaler_from_moments(moments_of(matrix, rows, pool.map))
        full = pca_from_cross(cross_of(matrix, rows, scaler, pool.map), seed)
        reducer = assemble_reducer(scaler, zero_fill(len(columns)), full, variance_target, columns)
        by_column, blocks = column_blocks(matrix, rows)
        scores = np.empty((sum(len(block) for block in blocks), reducer.n_keep), dtype=np.float32)
        starts = np.cumsum([0] + [len(block) for block in blocks[:-1]])

        def score(start: int, block: np.ndarray) -> None:
            project(np.take(by_column, block, axis=1), reducer, scores[start:start + len(block)])

        list(pool.map(score, starts, blocks))
    # The workers' freed block temporaries stay in their threads' C heaps (about 80 MB at full
    # size, measured) until given back; later stages would hold them through their own peaks.
    release_memory()
    return reducer, scores


def moments_of(matrix: pd.DataFrame, rows: np.ndarray, map_blocks: Callable = map) -> Moments:
    """``Moments`` of the known values of ``matrix[rows]``, block by block (``map_blocks``: ``map``
    or a thread pool's), pooled in block order."""
    by_column, blocks = column_blocks(matrix, rows)
    return reduce(operator.add, map_blocks(lambda block: Moments.of(np.take(by_column, block, axis=1)), blocks))


def cross_of(matrix: pd.DataFrame, rows: np.ndarray, scaler: StandardScaler, map_blocks: Callable = map) -> Cross:
    """``Cross`` of ``matrix[rows]`` scaled and filled, block by block, added in block order."""
    by_column, blocks = column_blocks(matrix, rows)
    return reduce(operator.add, map_blocks(lambda block: Cross.of(np.take(by_column, block, axis=1), scaler),
                                           blocks))


def column_blocks(matrix: pd.DataFrame, rows: np.ndarray,
                  block_rows: int | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """The matrix as columns x rows (float32) and the positions of ``rows`` cut into blocks.

    A cleaned table is one float32 block stored column by column, so its transpose is a view (no
    copy) and gathering a block's rows with ``np.take(..., axis=1)`` reads each column's run
    of memory in order: 2.5 times faster than gathering rows of the row-major view (measured).
    """
    by_column = matrix.to_numpy(dtype=np.float32).T
    picked = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
    size = block_rows or BLOCK_ROWS
    return by_column, [picked[start:start + size] for start in range(0, len(picked), size)] or [picked]


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations (M2) of the known values of each column, float64.

    Blocks are pooled with Chan, Golub and LeVeque's update: the mean and M2 of each block are
    taken about the block's own mean, so a column whose mean is large against its spread (or a
    constant one) loses no precision, and ``scaler_from_moments`` can apply scikit-learn's
    constant-column rule, whose bound is that of this two-pass algorithm. Plain sums of squares
    would cancel there.
    """

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def of(cls, columns: np.ndarray) -> Moments:
        """The moments of a block given as columns x rows (NaN: unknown)."""
        known = ~np.isnan(columns)
        count = known.sum(axis=1).astype(np.float64)
        x = columns.astype(np.float64)
        np.copyto(x, 0.0, where=~known)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(count > 0, x.sum(axis=1) / count, 0.0)
        x -= mean[:, None]
        np.copyto(x, 0.0, where=~known)
        return cls(count, mean, np.einsum("ij,ij->i", x, x))

    def __add__(self, other: Moments) -> Moments:
        """The moments of both blocks' values together."""
        count = self.count + other.count
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(count > 0, other.count / count, 0.0)
        delta = other.mean - self.mean
        return Moments(count, self.mean + delta * share, self.m2 + other.m2 + delta * delta * self.count * share)


def scaler_from_moments(moments: Moments) -> StandardScaler:
    """A fitted StandardScaler from the known values' moments, with scikit-learn's rules.

    Population variance (ddof 0); a column with no known value has mean, variance and scale NaN;
    a column whose variance is within the two-pass algorithm's rounding bound of zero (a
    constant) keeps scale 1; ``n_samples_seen_`` counts known values per column (one number when
    every column has the same count).
    """
    count = moments.count
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(count > 0, moments.mean, np.nan)
        var = np.where(count > 0, moments.m2 / count, np.nan)
        eps = np.finfo(np.float64).eps
        constant = var <= count * eps * var + (count * mean * eps) ** 2
    scaler = StandardScaler(copy=False)
    scaler.mean_, scaler.var_ = mean, var
    scaler.scale_ = np.where(constant, 1.0, np.sqrt(var))
    seen = count.astype(np.int64)
    scaler.n_samples_seen_ = seen[0] if len(seen) and (seen == seen[0]).all() else seen
    scaler.n_features_in_ = len(count)
    return scaler


def zero_fill(n_columns: int) -> SimpleImputer:
    """The imputer after scaling: an unknown value becomes 0, the known values' mean."""
    imputer = SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True, copy=False)
    return imputer.fit(np.zeros((1, n_columns), dtype=np.float32))  # a constant fill learns nothing from rows


@dataclass(frozen=True)
class Cross:
    """Rows, column sums and cross-products (float64) of scaled, filled rows: the covariance's parts."""

    rows: int
    sums: np.ndarray
    products: np.ndarray

    @classmethod
    def of(cls, columns: np.ndarray, scaler: StandardScaler) -> Cross:
        """The parts of a block given as columns x rows; scales and fills ``columns`` in place."""
        _scale_fill(columns, scaler)
        x = columns.astype(np.float64)  # float64 products: see the module docstring
        return cls(columns.shape[1], x.sum(axis=1), x @ x.T)

    def __add__(self, other: Cross) -> Cross:
        return Cross(self.rows + other.rows, self.sums + other.sums, self.products + other.products)


def pca_from_cross(cross: Cross, seed: int) -> PCA:
    """A fitted PCA with all components from the cross-products, as scikit-learn's ``covariance_eigh``
    solver computes it (covariance, its eigen-decomposition, signs by ``svd_flip``), in float64;
    the fitted attributes are float32, like those of a PCA fitted on the float32 matrix, so
    scores stay float32."""
    n = cross.rows
    centre = cross.sums / n
    cov = (cross.products - n * np.outer(centre, centre)) / (n - 1)
    values, vectors = np.linalg.eigh(cov)
    values, vt = np.maximum(values[::-1], 0.0), vectors[:, ::-1].T
    _, vt = svd_flip(None, vt, u_based_decision=False)
    pca = PCA(svd_solver="covariance_eigh", random_state=seed, copy=False)
    p = len(centre)
    pca.n_features_in_, pca.n_samples_, pca.n_components_ = p, n, p
    pca.mean_, pca.components_ = centre.astype(np.float32), vt.astype(np.float32)
    pca.explained_variance_ = values.astype(np.float32)
    pca.explained_variance_ratio_ = (values / values.sum()).astype(np.float32)
    pca.singular_values_ = np.sqrt(values * (n - 1)).astype(np.float32)
    pca.noise_variance_ = 0.0
    return pca


def project(columns: np.ndarray, reducer: Reducer, out: np.ndarray) -> None:
    """Scores of a block given as columns x rows into ``out`` (rows x kept components), as
    ``reducer.transform`` computes them; scales and fills ``columns`` in place."""
    _scale_fill(columns, reducer.scaler)
    pca = reducer.pca
    np.matmul(columns.T, pca.components_.T, out=out)
    out -= pca.mean_ @ pca.components_.T


def _scale_fill(columns: np.ndarray, scaler: StandardScaler) -> None:
    """What the fitted scaler's and the zero fill's ``transform`` do, in place on a block given
    as columns x rows.

    Their own transforms took 2 s at 800,000 x 120 (the imputer builds a NaN mask of the whole
    matrix); this gives the same numbers to the bit.
    """
    columns -= scaler.mean_.astype(np.float32)[:, None]
    columns /= scaler.scale_.astype(np.float32)[:, None]
    np.copyto(columns, np.float32(0.0), where=np.isnan(columns))


def kept_components(variance_ratio: np.ndarray, variance_target: float) -> int:
    """How many leading components together explain ``variance_target`` of the variance."""
    cumulative = np.cumsum(variance_ratio)
    return int(min(np.searchsorted(cumulative, variance_target) + 1, len(cumulative)))


def assemble_reducer(scaler: StandardScaler, imputer: SimpleImputer, full: PCA, variance_target: float,
                     columns: tuple[str, ...]) -> Reducer:
    """The reducer from fitted parts, keeping the components that explain ``variance_target``.

    Both engines build the full PCA from added cross-products (``pca_from_cross``): ``fit_reducer``
    from row blocks in memory, the dask engine from its partitions.
    """
    n_keep = kept_components(full.explained_variance_ratio_, variance_target)
    kept = copy.copy(full)
    kept.n_components = kept.n_components_ = n_keep
    for name in ("components_", "explained_variance_", "explained_variance_ratio_", "singular_values_"):
        setattr(kept, name, getattr(full, name)[:n_keep].copy())
    # as a PCA fitted with n_components=n_keep: the mean variance of the components left out
    kept.noise_variance_ = full.explained_variance_[n_keep:].mean() if n_keep < len(full.explained_variance_) else 0.0
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
