"""Match a level's new segments to the previous run's, so a segment that stayed keeps its code.

Generic over a level (segments today; groups and types when they exist): a level is a labelling
of the same rows by two models, its ids, and (optionally) the codes people know the segments by.

Both models label the *new* population (the previous model is applied, not refitted), so the
cross-table counts people, not centres. The Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`) pairs new and previous segments to maximise the
total overlap; a pair whose overlap (Jaccard: shared people / people in either) is below
``min_overlap`` is not a match, and both segments count as new and vanished.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from analysis.constants import MIN_OVERLAP


@dataclass(frozen=True)
class Matching:
    """New segment -> previous segment (None: new), the previous segments that vanished, overlaps.

    ``overlap[new]`` is the Jaccard overlap with the matched previous segment, or with the most
    overlapping one when unmatched (how close it came).
    """

    previous_of: dict[Hashable, Hashable | None]
    vanished: list[Hashable]
    overlap: dict[Hashable, float]
    min_overlap: float

    @property
    def kept_share(self) -> float:
        """Share of new segments that kept a previous segment's identity."""
        if not self.previous_of:
            return 0.0
        return sum(p is not None for p in self.previous_of.values()) / len(self.previous_of)

    def to_dict(self, codes: dict[Hashable, str] | None = None) -> dict:
        """JSON-ready facts; ``codes`` (final id -> code) is used when the ids are not the codes."""
        return {"method": "membership cross-table, Hungarian assignment", "measure": "Jaccard",
                "min_overlap": self.min_overlap, "kept_share": self.kept_share,
                "pairs": [{"new": _plain(new), "previous": _plain(prev), "overlap": round(self.overlap[new], 4)}
                          for new, prev in self.previous_of.items()],
                "vanished": [_plain(v) for v in self.vanished]}


def cross_table(previous_labels: np.ndarray, new_labels: np.ndarray,
                previous_ids: Sequence[Hashable], new_ids: Sequence[Hashable]) -> pd.DataFrame:
    """People per (new segment, previous segment); rows outside the given ids are ignored."""
    new_at = pd.Index(list(new_ids)).get_indexer(np.asarray(new_labels))
    prev_at = pd.Index(list(previous_ids)).get_indexer(np.asarray(previous_labels))
    both = (new_at >= 0) & (prev_at >= 0)
    counts = np.zeros((len(new_ids), len(previous_ids)), dtype=np.int64)
    np.add.at(counts, (new_at[both], prev_at[both]), 1)
    return pd.DataFrame(counts, index=pd.Index(list(new_ids), name="new"),
                        columns=pd.Index(list(previous_ids), name="previous"))


def match_by_membership(previous_labels: np.ndarray, new_labels: np.ndarray,
                        previous_ids: Sequence[Hashable], new_ids: Sequence[Hashable],
                        min_overlap: float = MIN_OVERLAP) -> Matching:
    """Pair new with previous segments by the people they share (both labellings of the same rows)."""
    return match_counts(cross_table(previous_labels, new_labels, previous_ids, new_ids).to_numpy(),
                        previous_ids, new_ids, min_overlap)


def match_counts(counts: np.ndarray, previous_ids: Sequence[Hashable], new_ids: Sequence[Hashable],
                 min_overlap: float = MIN_OVERLAP) -> Matching:
    """``match_by_membership`` from its ``cross_table`` (people per new x previous segment), which
    adds up over row blocks."""
    counts = np.asarray(counts, dtype=float)
    union = counts.sum(axis=1, keepdims=True) + counts.sum(axis=0, keepdims=True) - counts
    jaccard = np.divide(counts, union, out=np.zeros_like(counts), where=union > 0)
    rows, cols = linear_sum_assignment(jaccard, maximize=True)
    previous_of: dict[Hashable, Hashable | None] = {new: None for new in new_ids}
    overlap = {new: float(jaccard[i].max()) if jaccard.shape[1] else 0.0 for i, new in enumerate(new_ids)}
    for i, j in zip(rows, cols):
        if jaccard[i, j] >= min_overlap:
            previous_of[new_ids[i]] = previous_ids[j]
            overlap[new_ids[i]] = float(jaccard[i, j])
    taken = {p for p in previous_of.values() if p is not None}
    return Matching(previous_of, [p for p in previous_ids if p not in taken], overlap, min_overlap)


def carry_codes(matching: Matching, previous_codes: dict[Hashable, str],
                proposed: dict[Hashable, str]) -> dict[Hashable, str]:
    """Codes of the new segments: a matched one keeps its previous code; a new one gets its
    proposed code, or the next free code of the same form when that is taken (A3 -> A4, B -> C).

    For levels with codes (groups A, B...; types A1, A2...): ``proposed`` is the fresh fit's code.
    """
    kept = {new: previous_codes[prev] for new, prev in matching.previous_of.items() if prev is not None}
    taken = set(kept.values()) | set(previous_codes.values())
    out = dict(kept)
    for new, prev in matching.previous_of.items():
        if prev is None:
            code = proposed[new]
            while code in taken:
                code = _next_code(code)
            taken.add(code)
            out[new] = code
    return out


def _next_code(code: str) -> str:
    """A3 -> A4, A -> B, Z -> ZA: the next code of the same shape."""
    found = re.fullmatch(r"(.*?)(\d+)", code)
    if found:
        return f"{found.group(1)}{int(found.group(2)) + 1}"
    if code and code[-1].isalpha() and code[-1] not in "zZ":
        return code[:-1] + chr(ord(code[-1]) + 1)
    return code + "A"


def _plain(value: Hashable | None):
    return value.item() if hasattr(value, "item") else value
