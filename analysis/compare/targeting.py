"""Whom to mail first: segments ranked by index, with the cumulative reach of each cut.

A gains table answers "if we mail the best segments down to here, what share of the
population do we pay to reach, and what share of the customer profile do they hold?".
Its input is :func:`analysis.compare.compare_segments`, so shares are over *all* people,
set-aside group included.

The set-aside group (segment ``-1``) is ranked like any other row. It is a real group
one could mail (its members have addresses, just too few answered questions), and at an
index of ~260 it may well rank first. Whether to mail it is the caller's decision: drop
the row from the comparison before calling :func:`gains_table` to leave it out. Shares
are not renormalised then, so "reaches 12% of the population" stays true of the whole
population and the cumulative columns simply end below 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.compare.shares import OVER

REQUIRED = ("index", "population_share", "customer_share", "verdict")
GAINS_COLUMNS = (
    "segment",
    "index",
    "verdict",
    "population_share",
    "customer_share",
    "cumulative_population_share",
    "cumulative_customer_share",
    "lift",
)


def gains_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """Segments in mailing order with cumulative shares and lift.

    Order: index descending (the segment where customers are most over-represented first),
    ties broken by the larger customer share (same concentration, more customer-like
    people reached), then by segment id so the order is reproducible. A segment nobody
    is in (NaN index) goes last. ``lift`` = 100 * cumulative customer share / cumulative
    population share: the index of everything mailed so far, which falls as the cut goes
    down the ranking and is 100 when everyone is mailed.

    The result is indexed by ``rank`` (1 = mail first) and keeps ``verdict`` so that
    :func:`headline` can apply its rule. Raises ValueError if a required column is missing.
    """
    table = _with_segment_column(comparison)
    ranked = table.sort_values(
        ["index", "customer_share", "segment"],
        ascending=[False, False, True],
        na_position="last",
        kind="stable",
    )
    gains = ranked.loc[:, ["segment", *REQUIRED]].reset_index(drop=True)
    gains["cumulative_population_share"] = gains["population_share"].cumsum()
    gains["cumulative_customer_share"] = gains["customer_share"].cumsum()
    with np.errstate(divide="ignore", invalid="ignore"):
        gains["lift"] = (100.0 * gains["cumulative_customer_share"]
                         / gains["cumulative_population_share"])
    gains.index = pd.RangeIndex(1, len(gains) + 1, name="rank")
    return gains.loc[:, list(GAINS_COLUMNS)]


@dataclass(frozen=True)
class Headline:
    """The one sentence a marketer reads: which segments to mail and what that reaches.

    ``population_share``: the fraction of the whole population in ``segments`` (the cost
    side). ``customer_share``: the fraction of actual customers who fall in those segments,
    i.e. how much of the customer profile the mailing covers; the people mailed are
    "customer-like" (they look like customers), not customers. ``top`` is True when
    ``segments`` are the first rows of the mailing order, which the text then says.
    """

    segments: list[int]
    population_share: float
    customer_share: float
    top: bool = True


def headline(gains: pd.DataFrame, segments_to_mail: int | None = None) -> Headline:
    """Summarise a mailing of the top ``segments_to_mail`` rows of a gains table.

    Default rule (``segments_to_mail=None``): mail every segment whose verdict is
    'over-represented', i.e. significantly (after Holm) and materially more common among
    customers than in the population; if there is none, mail the single top-ranked one so
    the headline always names a concrete action. An over-represented segment can rank
    below an 'in line' one with a larger but uncertain index; then the selection is not a
    prefix of the mailing order and the text lists the segments instead of saying "top".
    Raises ValueError for an empty table or a count outside 1..len(gains).
    """
    if gains.empty:
        raise ValueError("the gains table is empty: there is no segment to mail")
    positions = _selection(gains, segments_to_mail)
    chosen = gains.iloc[positions]
    return Headline(
        segments=[int(s) for s in chosen["segment"]],
        population_share=float(chosen["population_share"].sum()),
        customer_share=float(chosen["customer_share"].sum()),
        top=bool(np.array_equal(positions, np.arange(positions.size))),
    )


def _selection(gains: pd.DataFrame, segments_to_mail: int | None) -> np.ndarray:
    """Row positions to mail: the first n, or the over-represented ones (else the first)."""
    if segments_to_mail is None:
        over = np.flatnonzero(gains["verdict"].to_numpy() == OVER)
        return over if over.size else np.array([0])
    if isinstance(segments_to_mail, bool) or not 1 <= segments_to_mail <= len(gains):
        raise ValueError(f"segments_to_mail must be between 1 and {len(gains)}, "
                         f"got {segments_to_mail!r}")
    return np.arange(segments_to_mail)


def _with_segment_column(comparison: pd.DataFrame) -> pd.DataFrame:
    """The comparison with ``segment`` as a column, whether it was the index or a column."""
    if "segment" in comparison.columns:
        table = comparison
    elif comparison.index.name == "segment":
        table = comparison.reset_index()
    else:
        raise ValueError("comparison needs segments as its index named 'segment' or as a "
                         "'segment' column; pass the output of compare_segments")
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(f"comparison lacks columns {missing}; pass the output of compare_segments")
    return table
