"""NaN-aware per-group counts, means and standard deviations in one pass.

Segment profiles and the set-aside comparison both need "mean of this column per group,
ignoring unknown values" on close to a million rows. ``bincount`` with weights gives the
sums without sorting, grouping objects or copies of the matrix.
"""
from __future__ import annotations

import numpy as np


def group_sums(column: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """Rows: count of known values, their sum, their sum of squares; one column per group 0..k-1."""
    missing = np.isnan(column)
    x = np.asarray(column, dtype=np.float64).copy()
    x[missing] = 0.0
    # Counts without weights (known = all minus missing): the same numbers, without a float copy.
    count = np.bincount(groups, minlength=k) - np.bincount(groups[missing], minlength=k)
    total = np.bincount(groups, weights=x, minlength=k)
    np.multiply(x, x, out=x)
    return np.stack([count.astype(np.float64), total, np.bincount(groups, weights=x, minlength=k)])


def mean_std(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation from ``group_sums`` rows; NaN where nothing is known.

    Pass ``sums`` to get one value per group, or ``sums.sum(axis=1)`` to pool the groups.
    """
    count, total, squares = sums
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
        variance = np.where(count > 0, squares / count - mean ** 2, np.nan)
    return mean, np.sqrt(np.maximum(variance, 0))
