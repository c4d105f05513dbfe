"""Impute, scale and reduce the cleaned population; explain each principal component in words.

The pipeline is fitted on the population rows kept after cleaning and only *applied* to
customers. Medians are imputed (they are always a real code of the scale, unlike a mean of
codes); standardising puts codes, counts and 0/1 flags on one footing before PCA.

PCA is fitted with all components so the scree curve is complete; the analysis keeps the
first ``n_keep`` that together explain ``variance_target`` of the variance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from .cleaning import CleanColumn

POLE_SIZE = 3  # features named on each side of a component


@dataclass
class Reducer:
    """The fitted impute -> scale -> PCA pipeline and how many components the analysis keeps."""

    pipeline: Pipeline
    n_keep: int
    columns: tuple[str, ...]

    @property
    def pca(self) -> PCA:
        return self.pipeline[-1]

    def transform(self, matrix: pd.DataFrame) -> np.ndarray:
        """Scores on the kept components, float32 to halve memory for clustering."""
        scores = self.pipeline.transform(matrix[list(self.columns)].to_numpy(np.float32))
        return np.ascontiguousarray(scores[:, : self.n_keep], dtype=np.float32)

    def back_to_features(self, scores: np.ndarray) -> pd.DataFrame:
        """Map points in component space (e.g. cluster centres) back to cleaned-feature units."""
        full = np.zeros((len(scores), self.pca.n_components_), dtype=np.float64)
        full[:, : self.n_keep] = scores
        scaled = self.pca.inverse_transform(full)
        values = self.pipeline[1].inverse_transform(scaled)
        return pd.DataFrame(values, columns=list(self.columns))


def fit_reducer(matrix: pd.DataFrame, variance_target: float, seed: int) -> Reducer:
    """Fit on the population's kept rows only."""
    pipeline = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(copy=False),
        PCA(svd_solver="covariance_eigh", random_state=seed),
    )
    pipeline.fit(matrix.to_numpy(np.float32))
    cumulative = np.cumsum(pipeline[-1].explained_variance_ratio_)
    n_keep = int(min(np.searchsorted(cumulative, variance_target) + 1, len(cumulative)))
    return Reducer(pipeline, n_keep, tuple(matrix.columns))


def scree(reducer: Reducer) -> pd.DataFrame:
    """Variance explained per component and cumulated, with a flag for the kept ones."""
    ratio = reducer.pca.explained_variance_ratio_
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
            "summary": f"{', '.join(positive)} vs {', '.join(negative)}",
            "top_weights": [{"column": c, "description": columns[c].description,
                             "weight": round(float(weights[c]), 4)} for c in strongest],
        })
    return result
