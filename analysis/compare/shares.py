"""How each population segment is represented among the customers, with honest uncertainty.

A segment's *index* is 100 times the customers' share in it divided by the population's
share in it: 100 means "as common among customers as in the population". Because the
customers (~192k) and the population (~891k) are large, tiny differences come out
"statistically significant", and because there are several segments, some come out
significant by chance. So a verdict here needs three things: a per-segment test, a
multiple-comparison adjustment across segments (Holm), and a minimum practical effect.

The set-aside group (label ``-1``, people missing too many values to be clustered) is a
row like any other and is never dropped: it is ~10% of the population but ~26% of the
customers, which is itself one of the most important findings.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.constants import ALPHA, MIN_EFFECT, SET_ASIDE

OVER = "over-represented"
UNDER = "under-represented"
IN_LINE = "in line"
COLUMNS = (
    "population_count",
    "customer_count",
    "population_share",
    "customer_share",
    "index",
    "index_low",
    "index_high",
    "p_value",
    "p_adjusted",
    "verdict",
)
CONTINUITY = 0.5  # added to each cell of a segment's 2x2 table when one of its counts is 0
_EFFECT_TOLERANCE = 1e-9  # so an index of exactly 110 computed as 109.99999999999999 counts


def compare_segments(
    population: np.ndarray | pd.Series,
    customers: np.ndarray | pd.Series,
    segments: Sequence[int] | None = None,
    alpha: float = ALPHA,
    *,
    min_effect: float = MIN_EFFECT,
) -> pd.DataFrame:
    """One row per segment: counts, shares, index with interval, test and verdict.

    ``population`` and ``customers`` hold one integer label per person: a segment id
    ``0..k-1`` or ``-1`` for set aside. ``segments`` fixes which rows appear and in which
    order (default: the sorted union of labels seen); ``-1`` is always added, so the
    set-aside group is never lost, even when nobody was set aside. A label outside
    ``segments`` is an error rather than silently dropped, because shares are taken over
    *all* rows of each table (set-aside included) and must sum to 1.

    With x1 of n1 customers and x2 of n2 population in a segment, p1 = x1/n1, p2 = x2/n2:

    - ``index`` = 100 * p1 / p2 (the relative risk, RR, times 100).
    - ``index_low``, ``index_high``: Katz log-ratio interval, treating customers and
      population as two independent binomial samples (they are separate files, not one
      sample split in two)::

          se(log RR) = sqrt((1 - p1) / x1 + (1 - p2) / x2)
          interval   = 100 * exp(log RR -/+ z * se),   z = Phi^-1(1 - alpha / 2)

      It is the plain, per-segment 100(1 - alpha)% interval (95% by default), *not*
      adjusted for multiple comparisons, so it can exclude 100 while the Holm-adjusted
      verdict says 'in line'. Read it as "how precise is this one index"; use
      ``p_adjusted`` and ``verdict`` for "which segments differ".
    - ``p_value``: two-sided z-test on the same scale, z = log RR / se, so that without
      adjustment p < alpha exactly when the interval excludes 100.
    - ``p_adjusted``: Holm step-down over all testable segments. Holm controls the
      family-wise error rate (the chance of even one false "differs" among the handful of
      segments) under any dependence; the segment shares of one table are negatively
      dependent, and with ~10 segments the power cost over Benjamini-Hochberg is small,
      while a marketer acting on every verdict wants none of them to be a fluke.
    - ``verdict``: 'over-represented' when p_adjusted < alpha and the whole interval lies at
      or above 100(1 + min_effect); 'under-represented' when p_adjusted < alpha and the whole
      interval lies at or below 100(1 - min_effect); otherwise 'in line'. Both are needed:
      with ~190k customers an index of 102 is "significant" yet useless for targeting, and an
      index of 300 from 3 customers is large yet could be chance; an index of 111 with
      interval 101-122 may well be inside the band, so it is 'in line'. The band is in index
      points (90..110 by default), the way a marketer reads an index.

    Zero counts: log RR and se are undefined when x1 = 0 or x2 = 0. For such a segment
    0.5 is added to each cell of its 2x2 table (x + 0.5, n + 1 in both samples; the
    Haldane-Anscombe correction) to get a finite se, test and outer bound; the reported
    ``index`` stays the observed 0 (or inf) and the bound on that side is the exact 0 (or
    inf), since a zero count is consistent with a true share of 0. The corrected upper
    bound shrinks as the sample grows, which an unbounded or fixed answer would not.
    A segment with no one in either table has NaN index, interval and p-values, takes no
    part in the Holm family and is 'in line'.

    Raises ValueError for empty inputs, labels that are not integers (or are below -1),
    labels outside ``segments``, duplicated ``segments``, or alpha / min_effect out of range.
    """
    _check_settings(alpha, min_effect)
    pop = _labels(population, "population")
    cus = _labels(customers, "customers")
    order = _segment_order(segments, pop, cus)
    return compare_counts(_count(pop, order, "population"), _count(cus, order, "customers"), order,
                          alpha, min_effect=min_effect)


def segment_counts(labels: np.ndarray, segments: Sequence[int]) -> np.ndarray:
    """People per segment in the order ``[SET_ASIDE, *segments]`` (as ``compare_segments`` counts them);
    counts add up over row blocks."""
    order = _segment_order(segments, np.asarray(segments))
    if len(labels) == 0:  # a block with nobody in it
        return np.zeros(order.size, dtype=np.int64)
    return _count(_labels(labels, "labels"), order, "labels")


def compare_counts(pop_count: np.ndarray, cus_count: np.ndarray, order: Sequence[int], alpha: float = ALPHA,
                   *, min_effect: float = MIN_EFFECT) -> pd.DataFrame:
    """``compare_segments`` from people per segment (in ``order``, set-aside included), not per-person labels.

    A distributed engine counts labels per partition and adds the counts; the table is the same.
    """
    _check_settings(alpha, min_effect)
    pop_count, cus_count = np.asarray(pop_count, dtype=np.int64), np.asarray(cus_count, dtype=np.int64)
    n_pop, n_cus = int(pop_count.sum()), int(cus_count.sum())
    table = pd.DataFrame(
        {"population_count": pop_count, "customer_count": cus_count},
        index=pd.Index(order, name="segment"),
    )
    table["population_share"] = pop_count / n_pop
    table["customer_share"] = cus_count / n_cus
    table["index"] = _index(cus_count, n_cus, pop_count, n_pop)
    low, high, p_value = _katz(cus_count, n_cus, pop_count, n_pop, alpha)
    table["index_low"], table["index_high"], table["p_value"] = low, high, p_value
    table["p_adjusted"] = holm(p_value)
    table["verdict"] = _verdict(low, high, table["p_adjusted"].to_numpy(), alpha, min_effect)
    return table.loc[:, list(COLUMNS)]


def holm(p_values: np.ndarray | Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and do not count in the family.

    Sort the m p-values ascending; the i-th smallest (i = 0..m-1) becomes
    max over j <= i of min(1, (m - j) * p_(j)). Rejecting where adjusted < alpha is Holm's
    procedure, which keeps the family-wise error rate at alpha under any dependence.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    scaled = (m - np.arange(m)) * p[order]
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def _check_settings(alpha: float, min_effect: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha!r}")
    if not 0 <= min_effect < 1:
        raise ValueError(f"min_effect must be in [0, 1), e.g. 0.10 for 90..110, got {min_effect!r}")


def _labels(values: np.ndarray | pd.Series, name: str) -> np.ndarray:
    """Labels as int64, refusing anything that is not a whole-number label >= -1.

    Whole-number floats (2.0) are accepted because a round trip through a CSV or a pandas
    column with missing values turns ints into floats; 2.5, NaN, strings and booleans are
    refused, because guessing what they mean would hide a bug upstream.
    """
    if np.ndim(values) != 1:
        raise ValueError(f"{name} labels must be one-dimensional, got shape {np.shape(values)}")
    series = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
    if series.empty:
        raise ValueError(f"{name} labels are empty: there is nobody to compare")
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        raise ValueError(f"{name} labels must be integers (segment ids or -1), got dtype {dtype}")
    if series.isna().any():
        raise ValueError(f"{name} labels contain missing values; use -1 for people set aside")
    raw = series.to_numpy(dtype=float if pd.api.types.is_float_dtype(dtype) else np.int64)
    if raw.dtype.kind == "f" and not (np.isfinite(raw).all() and (raw == np.round(raw)).all()):
        bad = raw[~np.isfinite(raw) | (raw != np.round(raw))][:3]
        raise ValueError(f"{name} labels must be whole numbers, got e.g. {bad}")
    labels = raw.astype(np.int64)
    if (labels < SET_ASIDE).any():
        raise ValueError(f"{name} labels must be -1 (set aside) or a segment id >= 0, "
                         f"got {np.unique(labels[labels < SET_ASIDE])[:5].tolist()}")
    return labels


def _segment_order(segments: Sequence[int] | None, *labels: np.ndarray) -> np.ndarray:
    """The rows of the comparison: given order, or sorted labels seen; -1 always present."""
    if segments is None:
        return np.union1d(np.concatenate(labels), [SET_ASIDE])
    order = _labels(np.asarray(list(segments)), "segments")
    if np.unique(order).size != order.size:
        raise ValueError(f"segments must not repeat, got {order.tolist()}")
    return order if SET_ASIDE in order else np.concatenate([[SET_ASIDE], order])


def _count(labels: np.ndarray, order: np.ndarray, name: str) -> np.ndarray:
    """People per segment in ``order``; a label not in ``order`` is an error, not a loss."""
    seen, counts = np.unique(labels, return_counts=True)
    position = pd.Index(order).get_indexer(seen)
    if (position < 0).any():
        raise ValueError(f"{name} has labels {seen[position < 0].tolist()} that are not in "
                         f"segments {order.tolist()}; shares would not sum to 1")
    out = np.zeros(order.size, dtype=np.int64)
    out[position] = counts
    return out


def _index(x1: np.ndarray, n1: int, x2: np.ndarray, n2: int) -> np.ndarray:
    """100 * (x1/n1) / (x2/n2): inf when only customers are present, NaN when nobody is."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * (x1 / n1) / (x2 / n2)


def _katz(
    x1: np.ndarray, n1: int, x2: np.ndarray, n2: int, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Katz interval (on the index scale) and the matching two-sided z-test p-value."""
    log_rr, se = _log_ratio(x1, n1, x2, n2)
    z = stats.norm.ppf(1 - alpha / 2)
    low = 100.0 * np.exp(log_rr - z * se)
    high = 100.0 * np.exp(log_rr + z * se)
    low[x1 == 0] = 0.0  # exact side: a zero count is consistent with a true share of 0
    high[x2 == 0] = np.inf
    statistic = np.divide(log_rr, se, out=np.zeros_like(se), where=se > 0)
    p_value = 2 * stats.norm.sf(np.abs(statistic))
    empty = (x1 == 0) & (x2 == 0)
    for column in (low, high, p_value):
        column[empty] = np.nan
    return low, high, p_value


def _log_ratio(
    x1: np.ndarray, n1: int, x2: np.ndarray, n2: int
) -> tuple[np.ndarray, np.ndarray]:
    """log RR and its Katz se, with +0.5 per cell where a count is zero (see compare_segments)."""
    fix = ((x1 == 0) | (x2 == 0)) * CONTINUITY
    a, b = x1 + fix, x2 + fix
    m1, m2 = n1 + 2 * fix, n2 + 2 * fix
    p1, p2 = a / m1, b / m2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p1 / p2), np.sqrt((1 - p1) / a + (1 - p2) / b)


def _verdict(
    low: np.ndarray, high: np.ndarray, p_adjusted: np.ndarray, alpha: float, min_effect: float
) -> np.ndarray:
    """Over / under only when significant after Holm AND the interval clears the band."""
    significant = np.nan_to_num(p_adjusted, nan=1.0) < alpha
    with np.errstate(invalid="ignore"):
        over = significant & (np.nan_to_num(low, nan=0.0) >= 100 * (1 + min_effect) - _EFFECT_TOLERANCE)
        under = significant & (np.nan_to_num(high, nan=np.inf) <= 100 * (1 - min_effect) + _EFFECT_TOLERANCE)
    return np.select([over, under], [OVER, UNDER], default=IN_LINE)
