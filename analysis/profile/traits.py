"""Describe each segment: what distinguishes it from the population, a short name, a pen portrait.

Traits are standardised mean differences (Cohen's d against the population): the segment's
mean of a cleaned column minus the population mean, divided by the population's standard
deviation. Means ignore unknown values instead of using imputed ones, so imputation never
manufactures a trait. Words come from each column's own scale direction (``CleanColumn.words``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.prepare.cleaning import CleanColumn
from analysis.prepare.moments import group_sums, mean_std
from analysis.present.wording import join_words

TRAITS_PER_SEGMENT = 6
NAME_TRAITS = 2
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
    return np.stack([group_sums(values[:, j], groups, k + 1) for j in range(values.shape[1])], axis=-1)


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
    table["phrase"] = [columns[c].words(e) for c, e in zip(table["column"], table["effect"])]
    table["description"] = [columns[c].description for c in table["column"]]
    return table


def top_traits(traits: pd.DataFrame, segment: int, n: int = TRAITS_PER_SEGMENT) -> pd.DataFrame:
    """The ``n`` traits with the largest absolute effect, one per source phrase, strongest first."""
    rows = traits[traits["segment"] == segment]
    rows = rows.reindex(rows["effect"].abs().sort_values(ascending=False).index)
    rows = rows[rows["effect"].abs() >= MIN_EFFECT].drop_duplicates("phrase")
    return rows.head(n)


STRENGTHS = ((0.8, "Marked"), (0.5, "Clear"), (MIN_EFFECT, "Smaller"))  # Cohen's large/medium/small


def strength(effect: float) -> str:
    """Plain-language size of a standardised difference (Cohen's conventions)."""
    return next(word for limit, word in STRENGTHS if abs(effect) >= limit)


def segment_names(traits: pd.DataFrame, segments: list[int]) -> dict[int, str]:
    """Short unique names built from each segment's two strongest traits."""
    names: dict[int, str] = {}
    for segment in segments:
        phrases = list(top_traits(traits, segment, NAME_TRAITS)["phrase"])
        name = ", ".join(phrases) if phrases else "close to the average"
        name = name[0].upper() + name[1:]
        if name in names.values():
            name = f"{name} ({segment})"
        names[segment] = name
    return names


def pen_portrait(segment: int, name: str, comparison_row: pd.Series, traits: pd.DataFrame) -> str:
    """A paragraph a marketer can read: size, customer index and the distinguishing traits."""
    top = top_traits(traits, segment)
    sentences = [
        f"Segment {segment}, \u201c{name}\u201d, is {comparison_row['population_share']:.1%} of the "
        f"population and {comparison_row['customer_share']:.1%} of customers "
        f"(index {comparison_row['index']:.0f}).",
    ]
    if top.empty:
        sentences.append("Its people are close to the population average on every feature.")
    for _, word in STRENGTHS:
        phrases = [p for p, e in zip(top["phrase"], top["effect"]) if strength(e) == word]
        if phrases:
            sentences.append(f"{word} differences from the population: {join_words(phrases)}.")
    return " ".join(sentences)
