"""NaN-aware per-group counts, means and standard deviations in one pass.

Segment profiles and the set-aside comparison both need "mean of this column per group,
ignoring unknown values" on close to a million rows. ``bincount`` with weights gives the
sums without sorting, grouping objects or copies of the matrix.
"""
from __future__ import annotations

import numpy as np


def group_sums(column: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """Rows: count of known values, their sum, their sum of squares; one column per group 0..k-1."""
    known = ~np.isnan(column)
    x = np.where(known, column, 0).astype(np.float64)
    return np.stack([np.bincount(groups, weights=known, minlength=k),
                     np.bincount(groups, weights=x, minlength=k),
                     np.bincount(groups, weights=x * x, minlength=k)])


def mean_std(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation from ``group_sums`` rows; NaN where nothing is known.

    Pass ``sums`` to get one value per group, or ``sums.sum(axis=1)`` to pool the groups.
    """
    count, total, squares = sums
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
        variance = np.where(count > 0, squares / count - mean ** 2, np.nan)
    return mean, np.sqrt(np.maximum(variance, 0))
