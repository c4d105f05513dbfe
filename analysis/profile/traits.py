"""What distinguishes each segment from the population, column by column.

``effect`` is the *standardised difference from the population*: the segment's mean of a
cleaned column minus the whole population's mean, divided by the population's standard
deviation (not Cohen's d, which pools the two groups' spreads). It ranks traits of every kind on
one scale. For 0/1 flags the difference that is reported is ``difference``: the segment's share
with the flag minus the population's, in share points (0.12 = 12 percentage points); for scales
``difference`` equals ``effect``. Means ignore unknown values instead of using imputed ones, so
imputation never manufactures a trait. Words come from each column's own scale direction
(``CleanColumn.words``); a flag's phrase is what the flag means, without "more often".
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from analysis.prepare.cleaning import CleanColumn
from analysis.prepare.moments import columns_group_sums, mean_std

TRAITS_PER_SEGMENT = 6
MIN_EFFECT = 0.2  # |d| below this is not called a trait (Cohen's "small")


def trait_table(matrix: pd.DataFrame, labels: np.ndarray, columns: dict[str, CleanColumn]) -> pd.DataFrame:
    """Effect size of every cleaned column for every segment (rows: segment, column).

    ``labels`` gives each row of ``matrix`` its segment, -1 for the set-aside group. The
    reference is the whole population: the known values of every row, set-aside rows included.
    Sums are accumulated per column with ``bincount``, so no copy of the matrix is made.
    """
    k = int(labels.max()) + 1
    return traits_from_sums(trait_sums(matrix.to_numpy(), labels, k), list(matrix.columns), columns)


def trait_sums(values: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """``group_sums`` of every column per segment 0..k-1 and the set-aside group (k): shape (3, k + 1, columns).

    They add up across row blocks, so a distributed engine sums them over its partitions.
    """
    groups = np.where(labels >= 0, labels, k).astype(np.intp)  # the set-aside group is group k
    return columns_group_sums(list(values.T), groups, k + 1)


def regroup_sums(type_sums: np.ndarray, type_group: np.ndarray, k: int) -> np.ndarray:
    """``trait_sums`` per group 0..k-1 and the set-aside group (k), added up from ``trait_sums`` per type.

    ``type_group[t]`` is type t's group. Counts and sums add up, so this equals ``trait_sums`` of
    the group labels up to the order of float64 additions (relative differences up to 6e-12 on the
    full-size data, measured), without a second pass over the rows (1.1 s at 891,211 x 119, measured).
    """
    n_types = type_sums.shape[1] - 1
    out = np.zeros((type_sums.shape[0], k + 1, type_sums.shape[2]))
    for t, g in enumerate(np.asarray(type_group)[:n_types]):
        if g < k:  # a type of a group past k is empty (its group has no rows): all zeros
            out[:, g] += type_sums[:, t]
    out[:, k] = type_sums[:, n_types]  # the set-aside group stays its own
    return out


def traits_from_sums(sums: np.ndarray, names: list[str], columns: dict[str, CleanColumn]) -> pd.DataFrame:
    """The trait table (see ``trait_table``) from ``trait_sums`` of the whole population."""
    k = sums.shape[1] - 1
    means = mean_std(sums[:, :k])[0]  # (k, columns): the segments only
    overall, spread = mean_std(sums.sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = np.where(spread > 0, (means - overall) / spread, 0.0)
    table = pd.DataFrame({
        "segment": np.repeat(np.arange(k), len(names)),
        "column": np.tile(names, k),
        "effect": effect.ravel(),
        "segment_mean": means.ravel(),
        "population_mean": np.tile(overall, k),
    })
    # Per column once, repeated for every segment: the text columns are the same in each segment's
    # rows, and a phrase depends only on the effect's side (row by row over the table's Arrow-backed
    # text, types and groups took 54 ms CPU at full size; this way 14 ms, measured).
    of = [columns[c] for c in names]
    table["kind"] = [c.kind for c in of] * k
    flag = (table["kind"] == "flag").to_numpy()
    table["difference"] = np.where(flag, table["segment_mean"] - table["population_mean"], table["effect"])
    above = [c.label if c.kind == "flag" else c.words(1.0) for c in of] * k
    below = [c.words(0.0) for c in of] * k
    table["phrase"] = [a if e > 0 else b for a, b, e in zip(above, below, effect.ravel().tolist())]
    table["description"] = [c.description for c in of] * k
    table["source"] = [c.source for c in of] * k
    return table


def top_traits(traits: pd.DataFrame, segment: int, n: int = TRAITS_PER_SEGMENT) -> pd.DataFrame:
    """The ``n`` traits with the largest absolute effect, one per source phrase, strongest first.

    A flag counts only where the segment has it more often (its phrase says what it is); the
    opposite side of a one-hot feature shows as another level's flag.
    """
    rows = traits[traits["segment"] == segment]
    return rows.iloc[strongest(arrays(rows), n)]


#: One segment's rows of a trait table: each column of the table as a NumPy array.
SegmentRows = dict[str, np.ndarray]
#: A segment's effect per cleaned column: a dict, or a Series indexed by column (``in``, ``[]``, ``get``).
Effects = Mapping[str, float] | pd.Series


def arrays(table: pd.DataFrame) -> SegmentRows:
    """The columns of ``table`` as NumPy arrays (text as Python ``str`` objects)."""
    return {name: table[name].to_numpy() for name in table.columns}


def split_segments(traits: pd.DataFrame, segments: Iterable[int]) -> dict[int, SegmentRows]:
    """Each of ``segments``' rows of ``traits`` as arrays, in the table's order (none: empty arrays).

    Why: a profile asks about ten questions of each segment's rows (strongest traits, portrait,
    key facts, effects). Asked of the DataFrame, each filter, sort or de-duplication copies the
    Arrow-backed text columns and costs milliseconds: 0.9 s of the full-size run's "profiles"
    stage, measured. Split once into arrays, the same answers take microseconds.
    """
    whole = arrays(traits)
    return {s: _rows_of(whole, whole["segment"] == s) for s in segments}


def _rows_of(whole: SegmentRows, mask: np.ndarray) -> SegmentRows:
    return {name: values[mask] for name, values in whole.items()}


def strongest(rows: SegmentRows, n: int = TRAITS_PER_SEGMENT) -> np.ndarray:
    """Positions in ``rows`` of ``top_traits``: the same traits in the same order.

    The order is pandas' own descending sort of the absolute effects (quicksort, as in
    ``Series.sort_values``), so that ties fall exactly as they always did.
    """
    effect = rows["effect"]
    candidates = np.arange(len(effect))
    if "kind" in rows:  # a flag counts only where the segment has it more often
        candidates = candidates[(rows["kind"] != "flag") | (effect > 0)]
    size = pd.Series(np.abs(effect[candidates])).sort_values(ascending=False)
    ranked = candidates[size.index.to_numpy()[size.to_numpy() >= MIN_EFFECT]]
    return first_per_key(ranked, rows["phrase"], n)


def first_per_key(positions: np.ndarray, keys: np.ndarray | list, n: int) -> np.ndarray:
    """The first ``n`` of ``positions`` whose key was not seen before (``drop_duplicates``, then ``head``)."""
    seen, kept = set(), []
    for position in positions:
        if len(kept) == n:
            break
        if keys[position] not in seen:
            seen.add(keys[position])
            kept.append(position)
    return np.asarray(kept, dtype=np.intp)
