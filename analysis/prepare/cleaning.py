"""Cleaning: fitted on the population, applied unchanged to customers.

Steps, each recorded in the cleaning log the report shows:

1. *Decode* – a feature's missing/unknown codes and blanks become NaN; values outside the valid
   codes (or a numeric feature's range) become NaN too and are counted as out of range rather
   than failing, so one odd export does not stop an analysis.
2. *Column missingness* – a column missing in more than ``column_missing_threshold`` of the
   population is dropped (the share and the limit are logged).
3. *Row missingness* – a person missing more than ``row_missing_threshold`` of the kept source
   columns is *set aside*: not clustered, but kept as its own group (segment -1) in every
   comparison. About 10% of the population and a quarter of customers fall here, so dropping
   them would inflate every other ratio.
4. *Re-encoding* – two-level categoricals become 0/1 flags; other categoricals are one-hot
   encoded with the levels seen in the population (customers get exactly those columns, so a
   level absent from customers is an all-zero column, never a missing one; a level held by
   under 0.5% of people gets no column), or dropped with a reason when a cleaner feature
   carries the same information.
5. *Engineering* – mixed features are split into their parts: PRAEGENDE_JUGENDJAHRE into a
   decade (its mainstream/avant-garde flag duplicates GREEN_AVANTGARDE and is not kept),
   CAMEO_INTL_2015 into wealth and life stage, WOHNLAGE into quality and a rural flag,
   *_BAUMAX into home size and a business flag. LP_LEBENSPHASE_* mix household type, income
   and age in one code; the same facts come cleanly from LP_FAMILIE_GROB, LP_STATUS_GROB and
   the age features, so they are dropped. Long-tailed counts (ANZ_*, KBA13_ANZAHL_PKW) are
   log-transformed.

Everything is vectorised over rows; loops run over columns only. The local engine decodes and
builds columns on ``workers`` threads (:data:`WORKERS`, one per core): each column is computed
alone and written to its own place, so the result is the same to the bit with any number of
threads (see :func:`decode`).

The cleaning log holds facts, not sentences: each entry is a flat record of four codes
(``step``, ``column``, ``decision``, ``reason``) and the numbers or column names its reason
needs (see :data:`LOG_FACTS`); ``analysis/present/cleaning_words.py`` writes the words at
render time, so rewording a reason never re-runs the analysis. The vocabulary:

Steps
    ``column_missingness`` (per feature), ``row_missingness`` (per person), ``re_encoding``
    (how a categorical becomes numbers), ``engineering`` (mixed features split, counts logged).
Decisions
    ``dropped`` (the feature gets no column), ``set_aside`` (people form their own group),
    ``one_hot`` (one 0/1 column per level; ``n_columns``), ``flag`` (one 0/1 column),
    ``scale`` (the codes used as one ordered scale), ``log_transform`` (log(1 + x)),
    ``split`` (a mixed feature becomes ``n_columns`` columns), ``rare_levels_no_column`` (some
    levels get no column of their own), ``part_not_kept`` (a part of a split is left out).
Reasons, with their facts
    ``too_much_missing``: ``missing_share`` of the population misses the feature, above ``limit``.
    ``rows_missing_too_much``: ``set_aside_share`` of the population misses more than ``limit``
        of the kept features.
    ``finer_version``: a more detailed coding of ``duplicate_of``, which is used instead.
    ``nested_detail``: ``n_levels`` detailed types, each inside a level of the first of
        ``duplicate_of``; those features carry the same information.
    ``mixed_code``: one code mixes facts that ``duplicate_of`` carry one by one.
    ``no_split_defined``: a mixed feature the package has no rule to split.
    ``duplicate``: the part equals ``duplicate_of`` in ``agreement`` of the rows that know both.
    ``rare_levels``: the codes ``levels`` are each held by under ``limit`` of the people.
    ``unordered_levels``: levels without an order (``n_columns`` of them kept).
    ``two_levels``: two levels; the code ``levels`` becomes 1.
    ``ordered_levels``: ``n_levels`` codes in order, from one end of the scale to the other.
    ``long_tail``: a count with a long right tail.
    ``decade_of_youth``, ``wealth_and_life_stage``, ``quality_and_rural``,
    ``home_size_and_business``: which split of a mixed feature (see ``_engineer``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from analysis.settings import AnalysisSettings
from analysis.prepare.moments import columns_group_sums, mean_std
from analysis.inputs.schema import Feature
from analysis.threads import cores, each

# The cleaning log's codes (what each means: the module docstring).
COLUMN_MISSINGNESS, ROW_MISSINGNESS, RE_ENCODING, ENGINEERING = (
    "column_missingness", "row_missingness", "re_encoding", "engineering")
STEPS = (COLUMN_MISSINGNESS, ROW_MISSINGNESS, RE_ENCODING, ENGINEERING)
DROPPED, SET_ASIDE_ROWS, ONE_HOT, FLAG, SCALE, LOG_TRANSFORM, SPLIT, RARE_LEVELS_NO_COLUMN, PART_NOT_KEPT = (
    "dropped", "set_aside", "one_hot", "flag", "scale", "log_transform", "split", "rare_levels_no_column",
    "part_not_kept")
DECISIONS = (DROPPED, SET_ASIDE_ROWS, ONE_HOT, FLAG, SCALE, LOG_TRANSFORM, SPLIT, RARE_LEVELS_NO_COLUMN,
             PART_NOT_KEPT)
TOO_MUCH_MISSING, ROWS_MISSING_TOO_MUCH, FINER_VERSION, NESTED_DETAIL, MIXED_CODE, NO_SPLIT_DEFINED = (
    "too_much_missing", "rows_missing_too_much", "finer_version", "nested_detail", "mixed_code",
    "no_split_defined")
DUPLICATE, RARE_LEVELS, UNORDERED_LEVELS, TWO_LEVELS, ORDERED_LEVELS, LONG_TAIL = (
    "duplicate", "rare_levels", "unordered_levels", "two_levels", "ordered_levels", "long_tail")
DECADE_OF_YOUTH, WEALTH_AND_LIFE_STAGE, QUALITY_AND_RURAL, HOME_SIZE_AND_BUSINESS = (
    "decade_of_youth", "wealth_and_life_stage", "quality_and_rural", "home_size_and_business")
REASONS = (TOO_MUCH_MISSING, ROWS_MISSING_TOO_MUCH, FINER_VERSION, NESTED_DETAIL, MIXED_CODE, NO_SPLIT_DEFINED,
           DUPLICATE, RARE_LEVELS, UNORDERED_LEVELS, TWO_LEVELS, ORDERED_LEVELS, LONG_TAIL,
           DECADE_OF_YOUTH, WEALTH_AND_LIFE_STAGE, QUALITY_AND_RURAL, HOME_SIZE_AND_BUSINESS)
# The facts a log entry may carry beside its codes: numbers (NaN in the table where not relevant)
# and texts (column names or codes, comma-separated; empty where not relevant).
LOG_NUMBERS = ("missing_share", "set_aside_share", "limit", "agreement", "n_columns", "n_levels")
LOG_TEXTS = ("duplicate_of", "levels")
LOG_FACTS = LOG_NUMBERS + LOG_TEXTS

# Columns dropped whatever their missingness: the reason code and the kept features that carry
# the same information (the report words it).
REDUNDANT = {
    "CAMEO_DEU_2015": (NESTED_DETAIL, ("CAMEO_DEUG_2015", "CAMEO_INTL_2015")),
    "LP_FAMILIE_FEIN": (FINER_VERSION, ("LP_FAMILIE_GROB",)),
    "LP_STATUS_FEIN": (FINER_VERSION, ("LP_STATUS_GROB",)),
    "LP_LEBENSPHASE_FEIN": (MIXED_CODE, ("LP_FAMILIE_GROB", "LP_STATUS_GROB", "ALTERSKATEGORIE_GROB")),
    "LP_LEBENSPHASE_GROB": (MIXED_CODE, ("LP_FAMILIE_GROB", "LP_STATUS_GROB", "ALTERSKATEGORIE_GROB")),
}
# Categoricals whose codes are ordered (CAMEO_DEUG_2015: upper class 1 to working class 9), used
# as scales instead of one-hot columns.
ORDERED_CATEGORICALS = ("CAMEO_DEUG_2015",)
MIN_LEVEL_SHARE = 0.005  # a one-hot level rarer than 0.5% gets no column of its own
# Counts with a long right tail: log(1 + x) keeps a few huge values from dominating PCA.
LOG_COUNTS = ("ANZ_PERSONEN", "ANZ_TITEL", "ANZ_HAUSHALTE_AKTIV", "ANZ_HH_TITEL", "KBA13_ANZAHL_PKW")
_DECADE = {1: 40, 2: 40, 3: 50, 4: 50, 5: 60, 6: 60, 7: 60, 8: 70, 9: 70,
           10: 80, 11: 80, 12: 80, 13: 80, 14: 90, 15: 90}
_AVANTGARDE = (2, 4, 6, 7, 9, 11, 13, 15)
#: Threads the local engine cleans with (``workers=WORKERS``): one per core. The functions default
#: to one thread, which the Dask engine keeps (each of its worker processes already has a core).
WORKERS = cores()
#: Ordered features per group-sums task: the sums run as small tasks beside the column builds
#: (``bincount`` lets other threads run only part of the time: see ``moments.columns_group_sums``).
SUMS_PER_TASK = 8


@dataclass(frozen=True)
class CleanColumn:
    """One column of the cleaned matrix and the words to describe it.

    ``kind`` is ``scale`` (ordered: ``low_end``/``high_end`` describe each end) or ``flag``
    (0/1: ``label`` says what 1 means). ``rule`` says how to compute it from the decoded
    source: ``copy``, ``equals`` (1 where the source equals ``value``) or ``derive`` (the
    function ``DERIVED[value]``).
    """

    name: str
    source: str
    kind: str
    description: str
    low_end: str = ""
    high_end: str = ""
    label: str = ""
    rule: str = "copy"
    value: float | str = ""

    def words(self, sign: float) -> str:
        """What a value above (sign > 0) or below the population average means, in plain words."""
        if self.kind == "flag":
            return f"{'more' if sign > 0 else 'less'} often {self.label}"
        return self.high_end if sign > 0 else self.low_end


@dataclass
class CleaningPlan:
    """What fitting on the population decided; applying it to any table gives the same columns."""

    features: tuple[Feature, ...]
    dropped: dict[str, str]  # column -> reason code; its numbers are in the log entry
    levels: dict[str, tuple[float | str, ...]]  # one-hot levels per categorical
    columns: tuple[CleanColumn, ...]
    row_missing_threshold: float
    log: list[dict[str, object]] = field(default_factory=list)  # see the module docstring

    @property
    def kept_sources(self) -> list[str]:
        return [f.name for f in self.features if f.name not in self.dropped]

    def column(self, name: str) -> CleanColumn:
        return next(c for c in self.columns if c.name == name)


@dataclass
class CleanedTable:
    """A table after cleaning.

    ``matrix`` has every row (set-aside ones included, NaN where unknown) over one float32
    block in column-major order, so the frame wraps it without a copy and building it
    column by column writes contiguous memory. ``group_means`` keeps, per ordered feature,
    the means of kept and set-aside rows, so the raw decoded table can be freed.
    """

    matrix: pd.DataFrame
    set_aside: np.ndarray
    row_missing_share: np.ndarray
    quality: pd.DataFrame  # per feature: blank, coded_missing, out_of_range, missing_share
    group_means: pd.DataFrame  # per ordered feature: kept_mean, kept_std, set_aside_mean
    # per ordered feature: ``group_sums`` rows for kept (0) and set-aside (1) rows; they add up
    # across row blocks, which the means cannot
    group_sums: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def kept(self) -> np.ndarray:
        return ~self.set_aside


@dataclass
class CleaningCounts:
    """What fitting a plan needs from the population: counts that add up across row blocks.

    ``fit_cleaning`` counts the whole population at once; a distributed engine counts each
    block and adds the counts, and both decide the same plan from them.
    """

    rows: int
    quality: pd.DataFrame  # per feature: blank, coded_missing, out_of_range
    levels: dict[str, pd.Series]  # per one-hot categorical: rows per decoded value
    movement: tuple[int, int]  # rows with both youth-movement flags known, and rows where they agree

    def __add__(self, other: CleaningCounts) -> CleaningCounts:
        levels = {name: pd.concat([counts, other.levels[name]]).groupby(level=0).sum()
                  for name, counts in self.levels.items()}
        return CleaningCounts(self.rows + other.rows, self.quality + other.quality, levels,
                              (self.movement[0] + other.movement[0], self.movement[1] + other.movement[1]))

    def quality_table(self) -> pd.DataFrame:
        """The counts with ``missing_share``, as ``decode`` returns them."""
        return _with_share(self.quality.copy(), self.rows)


def decode(raw: pd.DataFrame, features: Sequence[Feature],
           workers: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Missing codes, blanks and invalid values to NaN; counts of each per feature.

    Numeric results go straight into one column-major float32 block that the frame wraps
    without copying (a frame built from a dict of arrays would copy them all once more).
    Columns are decoded on ``workers`` threads: numpy's elementwise work releases the GIL, each
    column is decoded alone into its own part of the block, and the counts are kept in feature
    order, so any number of threads gives the same bits. Full-size population: 0.86-0.95 s on
    one thread, 0.46-0.72 s on two (the same 0.8-1.0 CPU s; load 2.5).
    """
    numbers = [f.name for f in features if not _stays_text(f)]
    block = np.empty((len(raw), len(numbers)), dtype=np.float32, order="F")
    position = {name: j for j, name in enumerate(numbers)}
    columns = [raw[feature.name] for feature in features]  # looked up here: pandas is not read by the threads

    def one(j: int) -> tuple[np.ndarray | pd.Categorical | None, dict]:
        feature = features[j]
        where = position.get(feature.name)
        return _decode_column(columns[j], feature, None if where is None else block[:, where])

    texts, counts = {}, []
    for feature, (values, row) in zip(features, each(one, range(len(features)), workers)):
        if values is not None:
            texts[feature.name] = values
        counts.append(row)
    decoded = pd.DataFrame(block, columns=numbers, index=raw.index, copy=False)
    for name, values in texts.items():
        decoded[name] = values
    return decoded, _with_share(pd.DataFrame(counts).set_index("feature"), len(raw))


def _with_share(quality: pd.DataFrame, rows: int) -> pd.DataFrame:
    quality["missing_share"] = (quality[["blank", "coded_missing", "out_of_range"]].sum(axis=1)
                                / max(rows, 1))
    return quality


def _stays_text(feature: Feature) -> bool:
    """Text codes that are not numbers in disguise (CAMEO_DEU_2015, OST_WEST_KZ) stay categories."""
    return feature.is_text and not all(code.isdigit() for code in feature.codes)


def _decode_column(column: pd.Series, feature: Feature,
                   out: np.ndarray | None = None) -> tuple[np.ndarray | pd.Categorical | None, dict]:
    """One decoded column and its counts; with ``out`` the numbers are written there (None returned)."""
    if feature.is_text:
        blank, coded, invalid, values = _decode_text(pd.Categorical(column), feature)
    else:
        numbers = column.to_numpy(dtype=np.float32)
        blank = np.isnan(numbers)
        if feature.codes:  # both masks from one lookup (the same as _is_code of each, a third of the time)
            coded, valid = _code_masks(numbers, feature.missing, tuple(feature.codes))
        else:
            coded, valid = _is_code(numbers, feature.missing), _valid_numbers(numbers, feature)
        invalid = ~blank & ~coded & ~valid
        values = np.where(coded | invalid, np.float32(np.nan), numbers)
    if out is not None:
        out[:] = values
        values = None
    # count_nonzero: the same counts as sum() on booleans, without widening them to integers first
    return values, {"feature": feature.name, "blank": int(np.count_nonzero(blank)),
                    "coded_missing": int(np.count_nonzero(coded)), "out_of_range": int(np.count_nonzero(invalid))}


def _is_code(numbers: np.ndarray, codes: Sequence[str]) -> np.ndarray:
    """Elementwise "is one of these integer codes", via a lookup table (fast for ~1M rows)."""
    return _code_masks(numbers, codes)[0]


def _code_masks(numbers: np.ndarray, *code_sets: Sequence[str]) -> list[np.ndarray]:
    """Per set of integer codes, elementwise "is one of them"; a code in two sets counts in the first.

    One table from the smallest to the largest code is indexed once by every whole number in
    that range: a feature's missing codes and its valid codes come from one pass over the
    column, where ``np.isin`` per set made two (with an int64 copy each): 9 ms a column instead
    of 31 at the full size (cProfile, both under the same load); cleaning both full-size tables
    took 4.4-4.5 s instead of 7.1-7.7 (4.1 s CPU instead of 6.9; measured at load 4.8).
    """
    wanted = [np.array([int(c) for c in codes], dtype=np.int64) for codes in code_sets]
    if not any(len(w) for w in wanted):
        return [np.zeros(len(numbers), dtype=bool) for _ in code_sets]
    low, high = min(int(w.min()) for w in wanted if len(w)), max(int(w.max()) for w in wanted if len(w))
    table = np.zeros(high - low + 2, dtype=np.int8)  # entry 0: not a code of any set
    for which, codes in reversed(list(enumerate(wanted, start=1))):  # the first set written last wins
        table[codes - low + 1] = which
    # NaN fails every comparison, so it lands on entry 0 too.
    usable = (numbers == np.floor(numbers)) & (numbers >= low) & (numbers <= high)
    found = table[np.where(usable, numbers - (low - 1), 0).astype(np.intp)]
    return [found == which for which in range(1, len(code_sets) + 1)]


def _valid_numbers(numbers: np.ndarray, feature: Feature) -> np.ndarray:
    if feature.codes:
        return _is_code(numbers, tuple(feature.codes))
    low = -np.inf if feature.min is None else feature.min
    high = np.inf if feature.max is None else feature.max
    return (numbers >= low) & (numbers <= high)


def _decode_text(column: pd.Categorical, feature: Feature):
    """Classify each category once, then spread the result to rows through the category codes."""
    categories = np.asarray(column.categories, dtype=object)
    codes = column.codes
    blank = codes < 0
    # One extra False at the end: a blank row's code is -1, which then reads that entry
    # (and indexing works when the column has no categories at all).
    is_missing = np.append(np.isin(categories, feature.missing), False)
    is_valid = np.append(np.isin(categories, list(feature.codes)), False)
    coded = ~blank & is_missing[codes]
    invalid = ~blank & ~is_missing[codes] & ~is_valid[codes]
    valid_codes = np.where(~blank & is_valid[codes], codes, -1)
    if not _stays_text(feature):  # CAMEO group and international codes
        numbers = np.array([float(c) if ok else np.nan for c, ok in zip(categories, is_valid[:-1])] + [np.nan],
                           dtype=np.float32)
        return blank, coded, invalid, numbers[valid_codes]
    kept = pd.Categorical.from_codes(valid_codes, categories=categories)
    return blank, coded, invalid, kept.set_categories(sorted(feature.codes))


def fit_cleaning(raw: pd.DataFrame, features: Sequence[Feature],
                 settings: AnalysisSettings, workers: int = 1) -> tuple[CleaningPlan, CleanedTable]:
    """Decide every cleaning step on the population and return the plan and the cleaned population."""
    decoded, quality = decode(raw, features, workers)
    return fit_decoded(decoded, quality, features, settings, workers)


def fit_decoded(decoded: pd.DataFrame, quality: pd.DataFrame, features: Sequence[Feature],
                settings: AnalysisSettings, workers: int = 1) -> tuple[CleaningPlan, CleanedTable]:
    """:func:`fit_cleaning` from :func:`decode`'s output: the caller can free the raw table in
    between, which is as large as the decoded one (300 MB of the peak at the real size)."""
    plan = plan_cleaning(count_cleaning(decoded, quality, features), features, settings)
    table = _finish(plan, decoded, quality, workers)
    note_set_aside(plan, float(table.set_aside.mean()))
    return plan, table


def count_cleaning(decoded: pd.DataFrame, quality: pd.DataFrame, features: Sequence[Feature]) -> CleaningCounts:
    """The counts a plan is decided from, for one decoded table (or block of one)."""
    levels = {f.name: pd.Series(decoded[f.name]).value_counts() for f in features if _treatment(f) == "one-hot"}
    movement = (0, 0)
    if {"PRAEGENDE_JUGENDJAHRE", "GREEN_AVANTGARDE"} <= set(decoded.columns):
        flag = _lookup(decoded["PRAEGENDE_JUGENDJAHRE"].to_numpy(), {c: 1.0 for c in _AVANTGARDE}, default=0.0)
        green = decoded["GREEN_AVANTGARDE"].to_numpy()
        both = ~np.isnan(flag) & ~np.isnan(green)
        movement = (int(both.sum()), int((flag[both] == green[both]).sum()))
    return CleaningCounts(len(decoded), quality[["blank", "coded_missing", "out_of_range"]].copy(), levels, movement)


def plan_cleaning(counts: CleaningCounts, features: Sequence[Feature], settings: AnalysisSettings) -> CleaningPlan:
    """Decide every cleaning step from the population's counts (the set-aside entry comes after applying)."""
    log: list[dict[str, object]] = []
    dropped = _drop_columns(counts.quality_table(), features, settings.column_missing_threshold, log)
    kept = [f for f in features if f.name not in dropped]
    levels = _one_hot_levels(counts.levels, kept, log)
    columns = tuple(_plan_columns(counts.movement, kept, levels, dropped, log))
    return CleaningPlan(tuple(features), dropped, levels, columns, settings.row_missing_threshold, log)


def note_set_aside(plan: CleaningPlan, share: float) -> None:
    """Log the share of population rows set aside, the plan's last entry."""
    plan.log.append(_entry(ROW_MISSINGNESS, "", SET_ASIDE_ROWS, ROWS_MISSING_TOO_MUCH,
                           set_aside_share=share, limit=plan.row_missing_threshold))


def apply_cleaning(plan: CleaningPlan, raw: pd.DataFrame, workers: int = 1) -> CleanedTable:
    """Clean another table (customers, a mailing list) exactly as the population was cleaned."""
    decoded, quality = decode(raw, plan.features, workers)
    return apply_decoded(plan, decoded, quality, workers)


def apply_decoded(plan: CleaningPlan, decoded: pd.DataFrame, quality: pd.DataFrame,
                  workers: int = 1) -> CleanedTable:
    """:func:`apply_cleaning` from :func:`decode`'s output (see :func:`fit_decoded`)."""
    return _finish(plan, decoded, quality, workers)


def _finish(plan: CleaningPlan, decoded: pd.DataFrame, quality: pd.DataFrame, workers: int = 1) -> CleanedTable:
    """The set-aside rows, the cleaned matrix and the group sums of one decoded table.

    The matrix columns and the group sums (in tasks of ``SUMS_PER_TASK`` features) are computed
    on ``workers`` threads, each into its own place: the same bits as one thread. Full-size
    population: 1.15-1.60 s on one thread, 0.62-0.75 s on two (1.1-1.4 CPU s either way; tasks
    of 4, 8 or 16 features alike, all sums as one task 0.81-0.91 s; load 2). Nothing here uses
    BLAS or OpenMP, so the threads cannot multiply theirs.
    """
    # Counted column by column: selecting the kept columns at once would copy them all.
    sources = plan.kept_sources
    missing = np.zeros(len(decoded), dtype=np.int16)
    for name in sources:
        missing += decoded[name].isna().to_numpy()
    # With no usable column every row counts as fully missing (and is set aside).
    share = ((missing / len(sources)) if sources else np.ones(len(decoded))).astype(np.float32)
    set_aside = share > plan.row_missing_threshold
    groups = set_aside.astype(np.intp)  # 0 = kept, 1 = set aside
    matrix = np.empty((len(decoded), len(plan.columns)), dtype=np.float32, order="F")
    sources_of = {name: decoded[name] for name in {c.source for c in plan.columns}}
    ordered = _ordered(plan.features)
    scales = {name: np.asarray(decoded[name], dtype=np.float32) for name in ordered}
    chunks = [ordered[i:i + SUMS_PER_TASK] for i in range(0, len(ordered), SUMS_PER_TASK)]

    def one(task: int) -> np.ndarray | None:
        if task < len(chunks):  # the sums first, the builds fill the gaps
            return columns_group_sums([scales[name] for name in chunks[task]], groups, 2)
        j = task - len(chunks)
        matrix[:, j] = _build(plan.columns[j], sources_of[plan.columns[j].source])
        return None

    done = each(one, range(len(chunks) + len(plan.columns)), workers)
    sums = np.concatenate(done[:len(chunks)], axis=2) if chunks else np.empty((3, 2, 0))
    frame = pd.DataFrame(matrix, columns=[c.name for c in plan.columns], index=decoded.index, copy=False)
    group_sums = {name: sums[:, :, j] for j, name in enumerate(ordered)}
    return CleanedTable(frame, set_aside, share, quality, group_means(group_sums, int(set_aside.sum())), group_sums)


def _ordered(features: Sequence[Feature]) -> list[str]:
    """The ordered features, whose kept and set-aside means the report compares."""
    return [feature.name for feature in features if feature.scale in ("low-strong", "high-strong")]


def group_means(sums: dict[str, np.ndarray], set_aside: int) -> pd.DataFrame:
    """Means of each ordered feature for kept and set-aside rows: how the set-aside group differs.

    ``sums`` are ``CleanedTable.group_sums`` (of one table, or added over its blocks) and
    ``set_aside`` the number of set-aside rows.
    """
    rows = {}
    for name, table in sums.items():
        mean, std = mean_std(table)
        rows[name] = {"kept_mean": mean[0], "kept_std": std[0], "set_aside_mean": mean[1],
                      "set_aside_known": table[0, 1] / max(set_aside, 1)}
    return pd.DataFrame.from_dict(rows, orient="index")


def _entry(step: str, column: str, decision: str, reason: str, **facts: float | int | str) -> dict[str, object]:
    """One log record: the four codes and the facts of the reason (names from LOG_FACTS)."""
    unknown = set(facts) - set(LOG_FACTS)
    assert not unknown and {step, decision, reason} <= {*STEPS, *DECISIONS, *REASONS}, (step, decision, reason, unknown)
    return {"step": step, "column": column, "decision": decision, "reason": reason, **facts}


def log_table(log: Sequence[dict[str, object]]) -> pd.DataFrame:
    """The log as a flat table: the four codes, every fact as its own column (NaN / empty where
    an entry does not have it), whatever facts this run's entries happen to carry."""
    table = pd.DataFrame.from_records(list(log), columns=["step", "column", "decision", "reason", *LOG_FACTS])
    table[list(LOG_NUMBERS)] = table[list(LOG_NUMBERS)].astype(np.float64)
    table[list(LOG_TEXTS)] = table[list(LOG_TEXTS)].fillna("").astype(str)
    return table


def _drop_columns(quality: pd.DataFrame, features: Sequence[Feature], threshold: float,
                  log: list[dict[str, object]]) -> dict[str, str]:
    dropped = {}
    for feature in features:
        share = float(quality.at[feature.name, "missing_share"])
        if share > threshold:
            dropped[feature.name] = TOO_MUCH_MISSING
            log.append(_entry(COLUMN_MISSINGNESS, feature.name, DROPPED, TOO_MUCH_MISSING,
                              missing_share=share, limit=threshold))
        elif feature.name in REDUNDANT:
            reason, carried_by = REDUNDANT[feature.name]
            dropped[feature.name] = reason
            facts = {"n_levels": len(feature.codes)} if reason == NESTED_DETAIL else {}
            log.append(_entry(RE_ENCODING, feature.name, DROPPED, reason, duplicate_of=",".join(carried_by), **facts))
    return dropped


def _one_hot_levels(counts: dict[str, pd.Series], kept: Sequence[Feature],
                    log: list[dict[str, object]]) -> dict[str, tuple]:
    """Levels seen in at least MIN_LEVEL_SHARE of the population, per one-hot categorical.

    A level held by a handful of people would become a column whose standardised values are
    huge for those few, and k-means would spend a cluster on them. Their rows get 0 in every
    column of that feature.
    """
    levels = {}
    for feature in kept:
        if _treatment(feature) != "one-hot":
            continue
        shares = counts[feature.name] / counts[feature.name].sum()  # as value_counts(normalize=True)
        shares = shares[shares > 0]
        common = shares[shares >= MIN_LEVEL_SHARE]
        levels[feature.name] = tuple(sorted(common.index.tolist()))
        rare = sorted(set(shares.index) - set(common.index))
        if rare:
            log.append(_entry(RE_ENCODING, feature.name, RARE_LEVELS_NO_COLUMN, RARE_LEVELS,
                              levels=",".join(_level_name(v) for v in rare), limit=MIN_LEVEL_SHARE))
    return levels


def _treatment(feature: Feature) -> str:
    if feature.kind == "mixed":
        return "engineer"
    if feature.kind != "categorical" or feature.name in ORDERED_CATEGORICALS:
        return "scale"
    return "flag" if len(feature.codes) == 2 else "one-hot"


def _plan_columns(movement: tuple[int, int], kept: Sequence[Feature], levels: dict[str, tuple],
                  dropped: dict[str, str], log: list[dict[str, object]]):
    """Yield the cleaned columns in feature order, logging each non-trivial decision."""
    for feature in kept:
        treatment = _treatment(feature)
        if feature.name in LOG_COUNTS:
            log.append(_entry(ENGINEERING, feature.name, LOG_TRANSFORM, LONG_TAIL))
            yield CleanColumn(feature.name, feature.name, "scale", feature.description,
                              feature.low_end, feature.high_end, rule="derive", value="LOG")
        elif treatment == "scale":
            if feature.name in ORDERED_CATEGORICALS:
                log.append(_entry(RE_ENCODING, feature.name, SCALE, ORDERED_LEVELS, n_levels=len(feature.codes)))
            yield CleanColumn(feature.name, feature.name, "scale", feature.description,
                              feature.low_end, feature.high_end)
        elif treatment == "flag":
            one = sorted(feature.codes)[1]
            log.append(_entry(RE_ENCODING, feature.name, FLAG, TWO_LEVELS, levels=one))
            yield CleanColumn(feature.name, feature.name, "flag", feature.description,
                              label=feature.codes[one], rule="equals", value=_code_value(one, feature))
        elif treatment == "one-hot":
            log.append(_entry(RE_ENCODING, feature.name, ONE_HOT, UNORDERED_LEVELS,
                              n_columns=len(levels[feature.name])))
            for level in levels[feature.name]:
                yield CleanColumn(f"{feature.name}_{_level_name(level)}", feature.name, "flag",
                                  feature.description, label=feature.label(level),
                                  rule="equals", value=level)
        else:
            yield from _engineer(feature, movement, dropped, log)


def _level_name(level: float | str) -> str:
    return str(int(level)) if isinstance(level, float) else str(level)


def _code_value(code: str, feature: Feature) -> float | str:
    """A code as it appears in the decoded table: text for text features, else a number."""
    return code if feature.is_text and not code.isdigit() else float(code)


def _derived(name: str, source: str, kind: str, description: str, *ends: str, label: str = "") -> CleanColumn:
    """A column computed by ``DERIVED[suffix]``, the suffix being what follows the source name."""
    suffix = name[len(source) + 1:]
    low, high = ends if ends else ("", "")
    return CleanColumn(name, source, kind, description, low, high, label, rule="derive", value=suffix)


def _engineer(feature: Feature, movement: tuple[int, int], dropped: dict[str, str],
              log: list[dict[str, object]]):
    name = feature.name
    if name == "PRAEGENDE_JUGENDJAHRE":
        yield _derived(f"{name}_DECADE", name, "scale", "Decade of youth", "youth in earlier decades",
                       "youth in later decades")
        flag = list(_movement(movement, dropped, log))
        yield from flag
        log.append(_entry(ENGINEERING, name, SPLIT, DECADE_OF_YOUTH, n_columns=1 + len(flag)))
    elif name == "CAMEO_INTL_2015":
        yield _derived(f"{name}_WEALTH", name, "scale", "Household wealth (CAMEO)",
                       "wealthier households", "poorer households")
        yield _derived(f"{name}_LIFE_STAGE", name, "scale", "Life stage (CAMEO)",
                       "earlier life stage (pre-family, young families)",
                       "later life stage (older families, retired)")
        log.append(_entry(ENGINEERING, name, SPLIT, WEALTH_AND_LIFE_STAGE, n_columns=2))
    elif name == "WOHNLAGE":
        yield _derived(f"{name}_QUALITY", name, "scale", "Neighbourhood quality",
                       "better neighbourhoods", "poorer neighbourhoods")
        yield _derived(f"{name}_RURAL", name, "flag", "Rural neighbourhood", label="in a rural area")
        log.append(_entry(ENGINEERING, name, SPLIT, QUALITY_AND_RURAL, n_columns=2))
    elif name.endswith("_BAUMAX"):
        yield _derived(f"{name}_HOMES", name, "scale", "Typical building size nearby",
                       "among 1-2 family homes", "among large blocks of flats")
        yield _derived(f"{name}_BUSINESS", name, "flag", "Business buildings nearby",
                       label="in a mainly business area")
        log.append(_entry(ENGINEERING, name, SPLIT, HOME_SIZE_AND_BUSINESS, n_columns=2))
    else:
        dropped[name] = NO_SPLIT_DEFINED
        log.append(_entry(ENGINEERING, name, DROPPED, NO_SPLIT_DEFINED))


def _movement(movement: tuple[int, int], dropped: dict[str, str], log: list[dict[str, object]]):
    """Keep the avant-garde flag only when GREEN_AVANTGARDE is not already in the data.

    ``movement``: rows where both flags are known, and rows where they agree (``count_cleaning``).
    """
    if "GREEN_AVANTGARDE" not in dropped:
        both, same = movement
        agree = same / both if both else 1.0
        log.append(_entry(ENGINEERING, "PRAEGENDE_JUGENDJAHRE", PART_NOT_KEPT, DUPLICATE,
                          duplicate_of="GREEN_AVANTGARDE", agreement=agree))
        return
    yield _derived("PRAEGENDE_JUGENDJAHRE_AVANTGARDE", "PRAEGENDE_JUGENDJAHRE", "flag",
                   "Youth movement", label="from an avant-garde youth movement")


def _lookup(codes: np.ndarray, table: dict[int, float], default: float = np.nan) -> np.ndarray:
    """Map float codes through ``table`` vectorised; NaN stays NaN, unlisted codes get ``default``."""
    size = int(max(table)) + 2
    lut = np.full(size, default, dtype=np.float32)
    for code, value in table.items():
        lut[code] = value
    codes = np.asarray(codes, dtype=np.float32)
    known = ~np.isnan(codes) & (codes >= 0) & (codes < size)
    out = np.full(len(codes), np.nan, dtype=np.float32)
    out[known] = lut[codes[known].astype(np.int64)]
    out[~np.isnan(codes) & ~known] = default
    return out


def _build(column: CleanColumn, source: pd.Series) -> np.ndarray:
    """The values of one cleaned column, computed from its decoded source column."""
    if column.rule == "equals":
        return _equals(source, column.value)
    if column.rule == "derive":
        return DERIVED[str(column.value)](source.to_numpy(dtype=np.float32))
    return source.to_numpy(dtype=np.float32)


def _equals(source: pd.Series, level: float | str) -> np.ndarray:
    """1 where the source equals ``level``, 0 elsewhere, NaN where the source is unknown."""
    if isinstance(source.dtype, pd.CategoricalDtype):
        codes = source.cat.codes.to_numpy()
        categories = list(source.cat.categories)
        out = (codes == categories.index(level)).astype(np.float32) if level in categories else np.zeros(len(codes), np.float32)
        out[codes < 0] = np.nan
        return out
    values = source.to_numpy()
    out = (values == level).astype(np.float32)
    out[np.isnan(values)] = np.nan
    return out


DERIVED: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "DECADE": lambda c: _lookup(c, {k: float(v) for k, v in _DECADE.items()}),
    "AVANTGARDE": lambda c: _lookup(c, {k: 1.0 for k in _AVANTGARDE}, default=0.0),
    "WEALTH": lambda c: np.floor(c / 10).astype(np.float32),
    "LIFE_STAGE": lambda c: np.mod(c, 10).astype(np.float32),
    "QUALITY": lambda c: _lookup(c, {1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0, 5: 5.0}),
    "RURAL": lambda c: _lookup(c, {7: 1.0, 8: 1.0}, default=0.0),
    "HOMES": lambda c: _lookup(c, {1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0}),
    "BUSINESS": lambda c: _lookup(c, {5: 1.0}, default=0.0),
    "LOG": lambda c: np.log1p(np.maximum(c, 0)).astype(np.float32),
}
