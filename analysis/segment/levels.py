"""Two levels of segments, as commercial segmentations have them: many *types*, few *groups*.

Why two levels
--------------
One k chosen at the elbow of the inertia curve gives a handful of broad segments, and a small
group several times over-represented among customers (a niche) is merged into a larger one at
that k: the most valuable people vanish from the report. Vendors avoid this with a fine level
nested in a coarse one (Mosaic 15 groups / 66 types, Acorn 6 / 18 / 62, Tapestry 14 / 67).

The rule (its parameters in ``Levels.to_dict``)
-----------------------------------------------
- **Groups**: the number chosen by :func:`analysis.segment.kselect.select_k` (its elbow rule),
  clamped to ``GROUPS_MIN``..``GROUPS_MAX``; a user setting (``groups``, else ``k``) forces it.
- **Types**: ``TYPES_PER_GROUP`` times the number of groups, clamped to ``TYPES_MIN``..``TYPES_MAX``,
  fitted by k-means on all kept population rows (:func:`fit_final`: the best of
  ``TYPE_STARTS`` starts on a sample, refined on all rows; seeded, so a rerun gives the same
  types). A type smaller than
  ``MIN_TYPE_SHARE`` of the clustered rows is dissolved into the nearest remaining centres, the
  smallest first, until none is; a user setting (``types``) forces the number and skips this.
- **Groups from types**: Ward linkage on the type centres, each centre weighted by its number of
  people, merged until the number of groups is reached; every type belongs to exactly one group.
- **Codes**: groups are lettered by falling population share (A is the largest), types numbered
  within their group by falling share (A1, A2, ..., B1, ...). Type ids (0..T-1, the ``segment``
  labels everywhere else) follow the codes' order. The set-aside people are id -1, code ``X``, at
  both levels.
"""
from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from analysis.constants import SET_ASIDE
from threadpoolctl import threadpool_limits

from analysis.segment.kselect import MAX_THREADS, _nearest, fit_final

GROUPS_MIN, GROUPS_MAX = 4, 9
TYPES_PER_GROUP = 3
TYPES_MIN, TYPES_MAX = 12, 40
MIN_TYPE_SHARE = 0.005
SET_ASIDE_CODE = "X"
#: k-means++ starts for the types and the rows they are fitted on before the full-batch refinement.
#: Measured at 200k rows (21 types, busy 2-core machine): fit_final's defaults (10 starts on 100k)
#: 17.5 s; 4 starts on 25k 6.2 s with 0.5 % LOWER inertia. On weakly structured data two such
#: fits agree only at ARI ~0.6 whatever the starts (types are regions of a continuum there);
#: the seed makes a rerun identical.
TYPE_STARTS, TYPE_SAMPLE = 4, 25_000


@dataclass
class Levels:
    """The fitted types and how they nest into groups.

    ``kmeans`` assigns rows to types (its clusters are numbered in code order);
    ``type_group[t]`` is the group of type ``t``; ``codes`` maps type ids to codes and
    ``group_codes`` group ids to letters, both with -1 -> ``X``.
    """

    kmeans: KMeans
    type_group: np.ndarray
    codes: dict[int, str]
    group_codes: dict[int, str]
    forced_types: bool
    forced_groups: bool

    @property
    def n_types(self) -> int:
        return len(self.type_group)

    @property
    def n_groups(self) -> int:
        return int(self.type_group.max()) + 1

    def groups_of(self, type_labels: np.ndarray) -> np.ndarray:
        """Group label per row from type labels; -1 stays -1."""
        lookup = np.append(self.type_group, SET_ASIDE).astype(np.int16)
        return np.where(type_labels >= 0, lookup[np.maximum(type_labels, 0)], SET_ASIDE).astype(np.int16)

    def to_dict(self) -> dict:
        return {"n_types": self.n_types, "n_groups": self.n_groups,
                "forced_types": self.forced_types, "forced_groups": self.forced_groups,
                "min_type_share": MIN_TYPE_SHARE, "groups_range": [GROUPS_MIN, GROUPS_MAX],
                "types_range": [TYPES_MIN, TYPES_MAX], "types_per_group": TYPES_PER_GROUP}


def group_count(chosen_k: int, forced: int | None) -> int:
    """The number of groups: a forced value as given, else the chosen k kept within range."""
    return int(forced) if forced is not None else int(np.clip(chosen_k, GROUPS_MIN, GROUPS_MAX))


def type_count(groups: int, forced: int | None) -> int:
    return int(forced) if forced is not None else int(np.clip(TYPES_PER_GROUP * groups, TYPES_MIN, TYPES_MAX))


def fit_levels(scores: np.ndarray, groups: int, types: int, seed: int = 0,
               forced_types: bool = False, forced_groups: bool = False,
               start: np.ndarray | None = None, overwrite: bool = False) -> tuple[Levels, np.ndarray]:
    """Fit types and nest them in groups; returns the levels and the type label of every row.

    ``start`` (one row per type) begins k-means at given centres instead of fresh k-means++
    starts: after a data refresh, the previous run's types as they fall on the new data. On data
    with weak structure fresh starts find a different but equally good set of types (fits from
    two seeds agree at ARI ~0.6), so codes could not be kept; from the previous types, Lloyd's
    iterations still move every centre to the new data's optimum, a type that no longer exists
    drifts away and is flagged new by the membership matching. ``overwrite``: see
    :func:`~analysis.segment.kselect.fit_final` (the scores may change in the last bit).
    """
    if start is not None:
        types = len(start)
    if not 2 <= groups < types:
        raise ValueError(f"need 2 <= groups < types, got {groups} groups and {types} types")
    if start is None:
        kmeans = fit_final(scores, types, seed=seed, n_init=TYPE_STARTS, sample_size=TYPE_SAMPLE,
                           overwrite=overwrite)
    else:
        with threadpool_limits(limits=MAX_THREADS, user_api="openmp"):
            kmeans = KMeans(n_clusters=types, init=np.asarray(start, dtype=scores.dtype), n_init=1,
                            random_state=seed, copy_x=not overwrite).fit(scores)
    centres, labels = kmeans.cluster_centers_, kmeans.labels_
    if not forced_types:
        centres, labels = _dissolve_small(scores, centres, labels)
    sizes = np.bincount(labels, minlength=len(centres))
    merged = ward_groups(centres, sizes, min(groups, len(centres) - 1))
    order, type_group, codes, group_codes = _code_order(merged, sizes)
    new_id = np.empty(len(order), dtype=np.int32)
    new_id[order] = np.arange(len(order))
    kmeans.cluster_centers_ = np.ascontiguousarray(centres[order])
    kmeans.n_clusters = len(order)
    kmeans.labels_ = new_id[labels].astype(np.int32)
    return Levels(kmeans, type_group, codes, group_codes, forced_types, forced_groups), kmeans.labels_


def _dissolve_small(scores: np.ndarray, centres: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the smallest type below ``MIN_TYPE_SHARE`` and reassign its rows, until none is."""
    n = len(labels)
    while len(centres) > TYPES_MIN:
        sizes = np.bincount(labels, minlength=len(centres))
        smallest = int(np.argmin(sizes))
        if sizes[smallest] >= MIN_TYPE_SHARE * n:
            break
        centres = np.delete(centres, smallest, axis=0)
        labels = _nearest(scores, centres)[0]
    return centres, labels


def ward_groups(centres: np.ndarray, sizes: np.ndarray, groups: int) -> np.ndarray:
    """Group id per type: Ward agglomeration of size-weighted centres down to ``groups``.

    Merging clusters a and b raises the within-group sum of squares by
    n_a n_b / (n_a + n_b) ||c_a - c_b||^2; the cheapest merge is made until ``groups`` remain.
    (scipy's ``linkage`` takes no weights, and with at most 40 types this loop is instant.)
    """
    members = [[i] for i in range(len(centres))]
    means = [np.asarray(c, dtype=np.float64) for c in centres]
    weights = [float(max(s, 1)) for s in sizes]
    while len(members) > groups:
        best, pair = np.inf, (0, 1)
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                cost = weights[a] * weights[b] / (weights[a] + weights[b]) * float(np.sum((means[a] - means[b]) ** 2))
                if cost < best:
                    best, pair = cost, (a, b)
        a, b = pair
        total = weights[a] + weights[b]
        means[a] = (weights[a] * means[a] + weights[b] * means[b]) / total
        weights[a] = total
        members[a] += members.pop(b)
        means.pop(b), weights.pop(b)
    group = np.empty(len(centres), dtype=np.int16)
    for g, ids in enumerate(members):
        group[ids] = g
    return group


def _code_order(group: np.ndarray, sizes: np.ndarray):
    """Type order (by group, groups by falling size, then types by falling size) and codes."""
    group_sizes = np.bincount(group, weights=sizes)
    group_rank = np.empty(len(group_sizes), dtype=np.int16)
    group_rank[np.lexsort((np.arange(len(group_sizes)), -group_sizes))] = np.arange(len(group_sizes))
    order = np.lexsort((np.arange(len(group)), -sizes, group_rank[group]))
    type_group = group_rank[group][order].astype(np.int16)
    letters = string.ascii_uppercase.replace(SET_ASIDE_CODE, "")
    group_codes = {g: letters[g] for g in range(len(group_sizes))}
    codes: dict[int, str] = {}
    for t, g in enumerate(type_group):
        codes[t] = f"{group_codes[int(g)]}{int(np.sum(type_group[:t] == g)) + 1}"
    codes[SET_ASIDE] = SET_ASIDE_CODE
    group_codes[SET_ASIDE] = SET_ASIDE_CODE
    return order, type_group, codes, group_codes
