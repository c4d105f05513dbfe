"""The fitted model: what ``segments assign`` needs to score new rows exactly as the population was.

It lives with the segments (not in the flow, ``analysis.pipeline``) so that scoring a mailing list
imports the fitted steps and nothing of the run that produced them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from sklearn.cluster import KMeans

from analysis.constants import SET_ASIDE
from analysis.prepare.cleaning import CleanedTable, CleaningPlan
from analysis.prepare.reduce import Reducer
from analysis.segment.levels import Levels

if TYPE_CHECKING:
    from analysis.target.lookalike import LookalikeModel


@dataclass
class Model:
    """The cleaning plan, scale/fill/PCA steps and k-means centres fitted on the population.

    ``kmeans`` assigns types (the ``segment`` labels); ``levels`` nests them in groups;
    ``names``/``index`` are per type, ``group_names``/``group_index`` per group (-1: set aside).
    """

    plan: CleaningPlan
    reducer: Reducer
    kmeans: KMeans
    names: dict[int, str]
    index: dict[int, float]
    cache_key: str
    levels: Levels | None = None
    group_names: dict[int, str] = field(default_factory=dict)
    group_index: dict[int, float] = field(default_factory=dict)
    lookalike: LookalikeModel | None = None  # resemblance to customers, person by person

    def assign(self, cleaned: CleanedTable) -> np.ndarray:
        """Segment per row: -1 for set-aside rows, else the nearest population centre."""
        return assign_segments(self.reducer, self.kmeans, cleaned)


def assign_segments(reducer: Reducer, kmeans: KMeans, cleaned: CleanedTable) -> np.ndarray:
    """Segment per row of a cleaned table: -1 for set-aside rows, else the nearest centre."""
    labels = np.full(len(cleaned.set_aside), SET_ASIDE, dtype=np.int16)
    if cleaned.kept.any():
        labels[cleaned.kept] = kmeans.predict(reducer.transform(cleaned.matrix.to_numpy(), cleaned.kept))
    return labels
