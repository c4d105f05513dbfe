"""NaN-aware per-group sums, means and standard deviations."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.prepare.moments import columns_group_sums, group_sums, mean_std


def test_group_sums_ignore_missing_values():
    column = np.array([1, 3, np.nan, 2, 4, 6], dtype=np.float32)
    groups = np.array([0, 0, 0, 1, 1, 1])
    sums = group_sums(column, groups, 3)
    np.testing.assert_array_equal(sums, [[2, 3, 0], [4, 12, 0], [10, 56, 0]])
    mean, std = mean_std(sums)
    np.testing.assert_allclose(mean[:2], [2, 4])
    np.testing.assert_allclose(std[:2], [1, np.sqrt(8 / 3)])
    assert np.isnan(mean[2]) and np.isnan(std[2])  # an empty group


def test_pooled_groups_equal_the_whole_column():
    rng = np.random.default_rng(0)
    column = rng.normal(size=1000).astype(np.float32)
    column[::7] = np.nan
    groups = rng.integers(0, 4, size=1000)
    mean, std = mean_std(group_sums(column, groups, 4).sum(axis=1))
    assert mean == pytest.approx(np.nanmean(column), abs=1e-6)
    assert std == pytest.approx(np.nanstd(column), abs=1e-6)


def test_columns_group_sums_equal_group_sums_column_by_column():
    """The shared-buffer version gives the per-column numbers to the bit, float32 or float64 columns."""
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 5, size=2_000)
    columns = [rng.normal(size=2_000).astype(dtype) for dtype in (np.float32, np.float64, np.float32)]
    columns[0][::3] = np.nan
    columns[2][:] = np.nan  # nothing known
    together = columns_group_sums(columns, groups, 6)  # group 5 has no rows
    assert together.shape == (3, 6, 3)
    for j, column in enumerate(columns):
        missing = np.isnan(column)
        x = np.where(missing, 0.0, column.astype(np.float64))
        expected = np.stack([np.bincount(groups[~missing], minlength=6).astype(np.float64),
                             np.bincount(groups, weights=x, minlength=6),
                             np.bincount(groups, weights=x * x, minlength=6)])
        np.testing.assert_array_equal(together[:, :, j], expected)
        np.testing.assert_array_equal(group_sums(column, groups, 6), expected)
