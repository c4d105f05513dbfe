"""A lookalike score: how much each person resembles the current customers, person by person.

Segments explain who the customers are; they rank people coarsely (everyone in a segment gets
the same index). A classifier of customers against the population ranks people one by one.
Its odds estimate, up to a constant, how much more common a person's profile is among
customers than in the population: the same quantity as a segment's index, per person. The
score is those odds divided by their population average, so 1.0 = an average person and 2.0 =
a profile twice as common among customers. It is *resemblance to current customers*, not a
response rate: the "population" side holds future customers too (a customers-vs-population
contrast, not customers vs non-customers), and nobody has been mailed.

How it is fitted, and why
- Inputs are the cleaned features passed through the scaler and missing-value fill that were
  fitted on the population (the reducer of :mod:`analysis.prepare.reduce`): the simple model
  (logistic regression) reads the PCA components, the strong one (histogram gradient boosting)
  the scaled features. Nothing is fitted on customers except the classifier itself.
- A seeded sample of at most ``lookalike_sample`` rows per table is drawn; a quarter of each is
  *held out* before anything is fitted and is used only to measure. The classes are weighted to
  balance, so the population's larger size does not decide the fit.
- The model is chosen by cross-validated AUC on the training part (``CV_FOLDS`` folds: the
  folds' own held-out parts), so the held-out quarter stays untouched by the choice too.
- Missing values: customers miss far more data than the population (set-aside rows are ~10% of
  the population but ~26% of customers), so "has missing data" alone predicts customers. With
  ``lookalike_indicators`` the model also gets one 0/1 column per feature saying "missing"
  (the tree model one per set of features missing on the same training rows: the same trees,
  see :func:`_distinct_flags`); without, a missing value is filled with the population mean.
  A tree can still partly spot a filled mean, so the gains among *kept* rows (enough data to
  be segmented) and the ranking by missing share alone are measured as well: together they
  show how much of the lift is data coverage rather than who people are.

How it runs on two cores
- Every classifier fit is single-threaded and the same whatever runs beside it, so results do
  not depend on the number of workers (``FIT_WORKERS``; one worker runs the same jobs in turn).
- All jobs share one pool, queued so that neither worker idles: the cross-validation folds
  (short logistic ones first), then the two final fits of ``LIKELY`` (the strong model), queued
  before the choice is known, then what is measured with them (held-out and reference odds,
  the permutation importance in short chunks that fill the time the last fit takes). If the
  cross-validation chooses the other model, the guessed jobs not yet started are dropped and
  the chosen model's are queued. Every random draw is made up front, in the order the stage
  has always drawn them, so the sample, reference rows and shuffles do not move.
- Measured on the full-size generated data (10,000 rows per table; 5 boosting folds of
  1.1-1.5 CPU s, 2 final fits of 1.4-2.1 s, 74 importance shuffles of ~22 ms), at load 1.7-2:
  6.7-7.5 s wall against 7.5-8.7 s for one pool per step (CV, final fits) and the importance
  on one core, for 11.5-12.7 CPU s (one worker: 11.5); the same facts, tables and scores to the
  bit. When other processes hold a core, both take their CPU time in wall time.
- Two savings that change no bit (round 6; facts, tables and scores compared on that data with
  and without indicators): the tree model's distinct flags (:func:`_distinct_flags`; the final
  fit with flags 1.6 CPU s instead of 2.1; with ``lookalike_indicators`` each fold too)
  and the importance's tree-by-tree sums (:class:`TreeSums`; 0.8 CPU s instead of 1.4 on one
  worker). The stage on the same inputs, 2 workers, 3 runs each: 11.2-13.2 CPU s (load 2.3-3.2)
  against 13.9-15.3 (load 3.1-3.4) by default; with indicators 15.9-17.4 (load 2.8-3.2)
  against 19.4-19.9 (load 3.6-3.7).
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from scipy.stats import t as student_t
from threadpoolctl import threadpool_limits

from analysis.constants import ALPHA, SET_ASIDE
from analysis.prepare.cleaning import CleaningPlan, CleanedTable
from analysis.prepare.reduce import Reducer

HOLDOUT_SHARE = 0.25  # of each table's sample, set aside before fitting, used only to measure
CV_FOLDS = 5
MIN_INDICATOR_SHARE = 0.01  # a feature missing for fewer people gets no indicator column
CURVE_STEPS = 100  # gains curve at 0%, 1%, ..., 100% of the population mailed
REPORT_DEPTHS = (0.10, 0.33, 0.50)  # mailing depths stored as facts, beside the headline's own
IMPORTANCE_ROWS = 2_000  # held-out rows used for permutation importance
IMPORTANCE_CHUNK = 8  # source features per importance job (74 sources: ten jobs of ~0.15 s)
SCORE_DECIMALS = 4  # scores are rounded: identical rows give identical scores whatever the batch
MODELS = ("logistic", "boosting")
#: Classifier fits run one thread each, this many side by side (the fitting code releases the
#: GIL); each fit is single-threaded, so the result does not depend on how many run at once.
FIT_WORKERS = 2
#: The model whose final fits start before the cross-validation has chosen (the strong model
#: wins on every data set tried so far); if the other wins, they are thrown away.
LIKELY = "boosting"


@dataclass
class Design:
    """From a cleaned matrix (NaN where unknown) to a model's inputs, with transforms fitted on the population."""

    reducer: Reducer
    components: bool  # PCA components (logistic) or scaled, filled features (boosting)
    #: cleaned columns whose missingness becomes a 0/1 input; for the tree model only the first of
    #: each set of columns missing on the same training rows (see :func:`_distinct_flags`)
    indicators: tuple[int, ...] = ()

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        # A private copy: the population's scaler and fill work in place (copy=False).
        matrix = np.array(matrix, dtype=np.float32, copy=True)
        # Before the transform: the fill replaces the NaN of ``matrix`` in place.
        flags = np.isnan(matrix[:, list(self.indicators)]).astype(np.float32) if self.indicators else None
        steps = self.reducer.pipeline if self.components else self.reducer.pipeline[:2]
        inputs = steps.transform(matrix)
        if flags is None:
            return inputs
        return np.hstack([inputs, flags])


@dataclass
class LookalikeModel:
    """What ``segments assign`` needs to score new rows: the design, the classifier, the scale."""

    design: Design
    classifier: Any
    population_odds: float  # mean odds over population rows the classifier never saw
    decile_edges: np.ndarray  # 9 score cut points, from the population's distribution, ascending

    def score(self, matrix: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Resemblance to customers relative to the population average (1.0 = average)."""
        odds = _odds(self.classifier, self.design.transform(np.asarray(matrix, dtype=np.float32)))
        return np.round(odds / self.population_odds, SCORE_DECIMALS)

    def decile(self, score: np.ndarray) -> np.ndarray:
        """1 = the tenth of the population most like customers, 10 = least."""
        return (10 - np.searchsorted(self.decile_edges, score, side="right")).astype(np.int8)


@dataclass
class Lookalike:
    """The fitted model plus the facts (results.json) and tables the report reads."""

    model: LookalikeModel
    facts: dict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    split: Split | None = None  # which rows trained the model and which only measured it


def fit_lookalike(plan: CleaningPlan, reducer: Reducer, pop: CleanedTable, cust: CleanedTable,
                  pop_labels: np.ndarray, mailing: pd.DataFrame,
                  headline_depth: float, sample: int, indicators: bool, seed: int) -> Lookalike:
    """Fit, choose and measure the lookalike model; see the module docstring for the design.

    ``mailing`` is the headline's gains table (segments in mailing order, set-aside group left
    out) and ``headline_depth`` the share of the population the headline mails.
    """
    with threadpool_limits(1):  # one thread: no oversubscription on a shared machine, same result anywhere
        return _fit(plan, reducer, pop, cust, pop_labels, mailing, headline_depth, sample, indicators, seed)


def _fit(plan: CleaningPlan, reducer: Reducer, pop: CleanedTable, cust: CleanedTable, pop_labels: np.ndarray,
         mailing: pd.DataFrame, headline_depth: float, sample: int, indicators: bool, seed: int) -> Lookalike:
    """The stage's jobs on one pool (see "How it runs on two cores" in the module docstring)."""
    rng = np.random.default_rng(seed)
    split = _split(rng, len(pop.set_aside), len(cust.set_aside), sample)
    pop_x, cust_x = pop.matrix.to_numpy(dtype=np.float32), cust.matrix.to_numpy(dtype=np.float32)
    x_train = np.vstack([pop_x[split.pop_train], cust_x[split.cust_train]])
    y_train = np.r_[np.zeros(len(split.pop_train)), np.ones(len(split.cust_train))]
    x_held = np.vstack([pop_x[split.pop_held], cust_x[split.cust_held]])
    y_held = np.r_[np.zeros(len(split.pop_held)), np.ones(len(split.cust_held))]
    # Which features get an indicator is decided on the population's training rows only.
    missing = np.isnan(pop_x[split.pop_train]).mean(axis=0)
    indicator_columns = tuple(int(j) for j in np.flatnonzero(missing >= MIN_INDICATOR_SHARE))
    tree_indicators = _distinct_flags(x_train, indicator_columns)

    # Every later draw from ``rng``, in the order the stage has always drawn them, before any fit:
    # the reference rows, then the importance rows and one shuffle per source feature.
    reference = _reference_rows(rng, split, len(pop.set_aside), sample)
    draws = _draw_importance(plan, rng, len(y_held))

    def design(name: str, with_indicators: bool) -> Design:
        flags = (indicator_columns if name == "logistic" else tree_indicators) if with_indicators else ()
        return Design(reducer, components=name == "logistic", indicators=flags)

    inputs = {name: design(name, indicators).transform(x_train) for name in MODELS}
    with _pool(FIT_WORKERS) as pool:
        folds = _submit_folds(pool, inputs, y_train, seed)

        def choice() -> tuple[dict[str, dict], str]:
            """The cross-validation's facts and chosen model (waits for every fold)."""
            cv = _cv_facts({name: [f.result() for f in futures] for name, futures in folds.items()})
            return cv, max(MODELS, key=lambda name: (cv[name]["auc"], name == "logistic"))  # tie: the simpler

        def final(name: str, design_w: Design, w: bool) -> Any:
            # The second fit is queued behind the last fold and usually starts as that fold ends:
            # it then knows the choice, and a wrong guess costs one fit, not two. None = not needed
            # (the dropped jobs that read it then fail, unread).
            if w != indicators and choice()[1] != name:
                return None
            return _fit_classifier(name, seed, inputs[name] if w == indicators else design_w.transform(x_train),
                                   y_train)

        def finish(name: str) -> dict[str, Any]:
            """The two final fits of ``name`` (with and without indicators) and what is measured with them."""
            designs = {w: design(name, w) for w in (indicators, not indicators)}  # the model's own first
            fits = {w: pool.submit(final, name, designs[w], w) for w in designs}
            return {"designs": designs, "fits": fits,
                    **_submit_measures(pool, plan, designs, fits, indicators, x_held, y_held, pop_x[reference],
                                       draws)}

        likely = finish(LIKELY)  # started before the choice is known; thrown away if the other model wins
        cv, chosen = choice()
        if chosen != LIKELY:
            _cancel(likely)
        jobs = likely if chosen == LIKELY else finish(chosen)
        variants = {w: (jobs["designs"][w], jobs["fits"][w].result()) for w in (False, True)}
        held_scores = {w: jobs["held"][w].result() for w in (False, True)}
        odds_ref = jobs["reference"].result()
        importance_parts = (jobs["base"].result()[:3], [a for part in jobs["shuffled"] for a in part.result()])
    d, classifier = variants[indicators]

    population_odds = float(odds_ref.mean())
    ref_scores = np.round(odds_ref / population_odds, SCORE_DECIMALS)
    model = LookalikeModel(d, classifier, population_odds,
                           np.quantile(ref_scores, np.linspace(0.1, 0.9, 9)))

    held_kept = np.r_[pop.kept[split.pop_held], cust.kept[split.cust_held]]
    held_missing = np.r_[pop.row_missing_share[split.pop_held], cust.row_missing_share[split.cust_held]]
    depths = np.linspace(0.0, 1.0, CURVE_STEPS + 1)
    curves = pd.DataFrame({
        "depth": depths,
        "lookalike": _gains(held_scores[indicators], y_held, depths),
        "lookalike_without_indicators": _gains(held_scores[False], y_held, depths),
        "lookalike_with_indicators": _gains(held_scores[True], y_held, depths),
        "lookalike_kept_rows": _gains(held_scores[indicators][held_kept], y_held[held_kept], depths),
        "missing_share_only": _gains(held_missing, y_held, depths),
        "segments": _segment_gains(mailing, depths),
    })
    at = sorted({*REPORT_DEPTHS, round(float(headline_depth), 4)})
    held_pop_set_aside = ~held_kept & (y_held == 0)
    facts = {
        "chosen_model": chosen,
        "indicators": bool(indicators),
        "indicator_columns": len(indicator_columns),  # features with a missing flag (the tree model
        # reads one column per set of them missing together on the training rows: the same trees)
        "sample": {"population_train": len(split.pop_train), "customers_train": len(split.cust_train),
                   "population_held_out": len(split.pop_held), "customers_held_out": len(split.cust_held),
                   "population_reference": len(reference), "sample_setting": sample},
        "cv": {"folds": CV_FOLDS, "alpha": ALPHA, "models": cv},
        "auc": cv[chosen]["auc"], "auc_ci": cv[chosen]["auc_ci"],
        "held_out_auc": {"without_indicators": _auc(y_held, held_scores[False]),
                         "with_indicators": _auc(y_held, held_scores[True]),
                         "kept_rows": _auc(y_held[held_kept], held_scores[indicators][held_kept]),
                         "missing_share_only": _auc(y_held, held_missing)},
        "headline_depth": float(headline_depth),
        "at_depth": [_at_depth(curves, depth, held_scores[indicators], y_held, held_kept) for depth in at],
        "held_out_set_aside_population_share": float(held_pop_set_aside.sum() / max((y_held == 0).sum(), 1)),
    }
    importance = _importance_table(plan, draws, x_held, *importance_parts)
    facts["drivers"] = importance.head(10)["source"].tolist()
    spread = _segment_spread(ref_scores, pop_labels[reference], model.decile_edges)
    return Lookalike(model, facts, {"lookalike_gains": curves, "lookalike_importance": importance,
                                    "lookalike_segments": spread}, split)


@dataclass(frozen=True)
class Split:
    """Row numbers per table: training rows (the model sees only these) and held-out rows."""

    pop_train: np.ndarray
    pop_held: np.ndarray
    cust_train: np.ndarray
    cust_held: np.ndarray


def _split(rng: np.random.Generator, n_pop: int, n_cust: int, sample: int) -> Split:
    """A seeded sample of each table, a quarter of it held out; rows sorted within each part."""
    parts = []
    for n in (n_pop, n_cust):
        drawn = rng.permutation(n)[: min(sample, n)]
        held = max(1, int(round(HOLDOUT_SHARE * len(drawn))))
        parts += [np.sort(drawn[held:]), np.sort(drawn[:held])]
    return Split(*parts)


def _reference_rows(rng: np.random.Generator, split: Split, n_pop: int, sample: int) -> np.ndarray:
    """Population rows the classifier never saw: the yardstick for 1.0 and the deciles."""
    # The same sorted rows as ``np.setdiff1d`` gives, without its sort of every population row.
    seen = np.zeros(n_pop, dtype=bool)
    seen[split.pop_train] = True
    unseen = np.flatnonzero(~seen)
    return np.sort(rng.permutation(unseen)[: min(sample, len(unseen))])


def _distinct_flags(x_train: np.ndarray, columns: tuple[int, ...]) -> tuple[int, ...]:
    """``columns`` without those missing on exactly the same training rows as an earlier one.

    For the tree model only: features of one source block go missing together (59 flags, 23
    distinct at full size). Boosting splits on the first of several features with equal gains
    (a strict ``>`` over features in column order, scikit-learn's ``splitting.pyx``), and a
    later copy has the same bins and gains, so it is never used: without it the trees, their
    predictions on any rows and the permutation importance (shuffling a source whose flag was
    dropped moves only its values, as it did before) are the same to the bit, and each fit
    builds fewer histograms. Cross-validation folds are subsets of the training rows, so a
    copy there is a copy in every fold. The logistic model keeps every flag: with its L2
    penalty two equal columns share a weight, which changes the fit.
    """
    seen: set[bytes] = set()
    kept = []
    for j, flags in zip(columns, np.isnan(x_train[:, list(columns)]).T):
        pattern = np.packbits(flags).tobytes()
        if pattern not in seen:
            seen.add(pattern)
            kept.append(j)
    return tuple(kept)


def _classifier(name: str, seed: int, balanced: bool = False):
    """``balanced``: the classes are already the same size, so balancing weights would all be 1."""
    if name == "logistic":
        return LogisticRegression(max_iter=500, class_weight="balanced")
    # Weights of 1 give the same trees as no weights, but scikit-learn then bins each feature with
    # more than 255 distinct values by 254 weighted-percentile calls (0.3-0.5 s per fit here).
    return HistGradientBoostingClassifier(max_iter=60, learning_rate=0.15, early_stopping=False,
                                          class_weight=None if balanced else "balanced", random_state=seed)


def _fit_classifier(name: str, seed: int, x: np.ndarray, y: np.ndarray):
    """The classifier ``name`` fitted on (x, y), the classes weighted to balance."""
    return _classifier(name, seed, balanced=int(y.sum()) * 2 == len(y)).fit(x, y)


@contextmanager
def _pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    """``workers`` threads that run jobs first come, first served, each with one OpenMP thread.

    The limit is set inside each worker: OpenMP's thread count is per thread, so a worker would
    otherwise fit with every core, and its threads spin at each barrier while other processes
    hold the cores (one CV took 60-140 s instead of 6 on this shared machine). It is set once
    per thread, not per job: ``threadpool_limits`` lists the loaded libraries each time (13 ms,
    measured) and the pool runs about 30 jobs. BLAS's limit is process-wide and set by
    :func:`fit_lookalike`. A job may wait for an earlier job's result: jobs start in the order
    they were queued, so what it waits for is already running or done, and one worker still
    runs everything (in queue order) without a deadlock.
    """
    with ThreadPoolExecutor(max_workers=workers, initializer=threadpool_limits,
                            initargs=(1, "openmp")) as pool:
        yield pool


def _cancel(jobs: dict[str, Any]) -> None:
    """Drop a model's queued jobs that have not started (a started fit runs to its end, unused)."""
    for future in (*jobs["fits"].values(), *jobs["held"].values(), jobs["reference"], jobs["base"], *jobs["shuffled"]):
        future.cancel()


def _odds(classifier, inputs: np.ndarray) -> np.ndarray:
    """p / (1 - p), kept finite: proportional to customer density over population density."""
    return _odds_of(classifier.predict_proba(inputs))


def _odds_of(proba: np.ndarray) -> np.ndarray:
    p = np.clip(proba[:, 1], 1e-6, 1 - 1e-6)
    return p / (1.0 - p)


class TreeSums:
    """A boosting model's prediction on fixed rows kept tree by tree, so that the prediction with
    some input columns shuffled recomputes only the trees that split on one of them (a source
    feature is read by ~20 of the 60 trees at full size: the importance's predictions cost a third).

    The same bits as ``predict_proba``: the trees' values are added in scikit-learn's order
    (``_raw_predict``: zeros, plus the baseline, plus each tree in turn), and a tree that reads
    none of the shuffled columns gives each row the value it gave before. It uses scikit-learn's
    private parts (``_predictors``, ``_baseline_prediction``, ``_bin_mapper``, ``_loss``), so
    :meth:`of` checks the sum against ``predict_proba`` on the unshuffled rows and gives None
    (predict in full) if they differ by a bit or the model is not binary histogram boosting.
    """

    def __init__(self, classifier: HistGradientBoostingClassifier, inputs: np.ndarray):
        self.classifier = classifier
        self.bitsets = classifier._bin_mapper.make_known_categories_bitsets()
        self.trees = [predictor for (predictor,) in classifier._predictors]
        self.reads = [frozenset(t.nodes["feature_idx"][t.nodes["is_leaf"] == 0].tolist()) for t in self.trees]
        x = np.asarray(inputs, dtype=np.float64)
        self.values = [self._tree(tree, x) for tree in self.trees]

    @classmethod
    def of(cls, classifier, inputs: np.ndarray, odds: np.ndarray) -> TreeSums | None:
        """The sums of ``classifier`` on ``inputs`` if they give ``odds`` (its odds there) to the bit."""
        if not isinstance(classifier, HistGradientBoostingClassifier) or classifier.n_trees_per_iteration_ != 1:
            return None
        try:
            sums = cls(classifier, inputs)
            same = np.array_equal(sums.odds(inputs, frozenset()), odds)
        except (AttributeError, KeyError, TypeError, ValueError):  # scikit-learn's internals changed
            return None
        return sums if same else None

    def _tree(self, tree, x: np.ndarray) -> np.ndarray:
        return tree.predict(x, *self.bitsets, 1)

    def odds(self, inputs: np.ndarray, moved: frozenset[int]) -> np.ndarray:
        """The odds on ``inputs``: the stored rows with (at most) the columns ``moved`` changed."""
        x = np.asarray(inputs, dtype=np.float64)
        raw = np.zeros((len(x), 1), dtype=self.classifier._baseline_prediction.dtype, order="F")
        raw += self.classifier._baseline_prediction
        for tree, reads, values in zip(self.trees, self.reads, self.values):
            raw[:, 0] += self._tree(tree, x) if reads & moved else values
        return _odds_of(self.classifier._loss.predict_proba(raw))


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def _submit_folds(pool: ThreadPoolExecutor, inputs: dict[str, np.ndarray], y: np.ndarray,
                  seed: int) -> dict[str, list[Future]]:
    """Queue every model's cross-validation folds: per model, the held-out AUC of each fold.

    The short logistic folds go first, then the boosting ones (1.2-1.3 s each at full size,
    measured; a logistic fold 0.1 s), so the choice is known as early as it can be and the
    speculative final fits queued behind them (see :func:`_fit`) start as soon as a worker is
    free. Each fit is the same single-threaded fit on the same rows whatever runs beside it, so
    the AUCs do not depend on the number of workers.
    """
    folds = list(StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed).split(y, y))

    def fold_auc(name: str, fit_rows: np.ndarray, test_rows: np.ndarray) -> float:
        classifier = _fit_classifier(name, seed, inputs[name][fit_rows], y[fit_rows])
        return _auc(y[test_rows], _odds(classifier, inputs[name][test_rows]))

    jobs = {name: [pool.submit(fold_auc, name, f, t) for f, t in folds]
            for name in sorted(MODELS, key=lambda name: name != "logistic")}
    return {name: jobs[name] for name in MODELS}


def _cv_facts(fold_aucs: dict[str, list[float]]) -> dict[str, dict]:
    """Per model: AUC per fold on the training part, with a t interval over folds (folds overlap
    in training rows, so the interval is approximate and on the narrow side)."""
    out = {}
    for name, aucs in fold_aucs.items():
        folds_auc = np.asarray(aucs)
        mean = float(folds_auc.mean())
        half = float(student_t.ppf(1 - ALPHA / 2, len(folds_auc) - 1) * folds_auc.std(ddof=1)
                     / np.sqrt(len(folds_auc)))
        out[name] = {"auc": mean, "auc_ci": [mean - half, mean + half], "fold_auc": [float(a) for a in folds_auc]}
    return out


def _submit_measures(pool: ThreadPoolExecutor, plan: CleaningPlan, designs: dict[bool, Design],
                     fits: dict[bool, Future], indicators: bool, x_held: np.ndarray, y_held: np.ndarray,
                     x_reference: np.ndarray, draws: ImportanceDraws) -> dict[str, Any]:
    """Queue what is measured with one model's two final fits: held-out odds of both, the
    reference rows' odds and the permutation importance of the one in use.

    The importance runs as short jobs of ``IMPORTANCE_CHUNK`` source features each, so the two
    workers share it and fill the time the other final fit still takes (one core did all 74
    sources in 1.2-1.8 s before). Each shuffled prediction is the same call on the same rows as
    one at a time, so the AUC drops are the same to the bit.
    """
    design, fit = designs[indicators], fits[indicators]
    x, y = x_held[draws.rows], y_held[draws.rows]

    def base() -> tuple[np.ndarray, np.ndarray, float, TreeSums | None]:
        inputs = design.transform(x)
        scores = _odds(fit.result(), inputs)
        return inputs, scores, _auc(y, scores), None if design.components else TreeSums.of(fit.result(), inputs, scores)

    def shuffled(sources: list[str]) -> list[float]:
        inputs, _, _, sums = base_job.result()
        return [_shuffled_auc(plan, fit.result(), design, draws, x, inputs, y, source, sums) for source in sources]

    base_job = pool.submit(base)
    reference = pool.submit(lambda: _odds(fit.result(), design.transform(x_reference)))
    held = {indicators: pool.submit(lambda: _odds(fit.result(), design.transform(x_held)))}
    names = list(draws.sources)
    parts = [pool.submit(shuffled, names[i:i + IMPORTANCE_CHUNK]) for i in range(0, len(names), IMPORTANCE_CHUNK)]
    other = not indicators  # its fit was queued last: its odds last
    held[other] = pool.submit(lambda: _odds(fits[other].result(), designs[other].transform(x_held)))
    return {"base": base_job, "reference": reference, "held": held, "shuffled": parts}


def gains_curve(pop_scores: np.ndarray, cust_scores: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """Share of customers reached when the top ``depth`` of the population (by score) is mailed.

    Ties are split in proportion: when the cut falls inside a block of equal scores, that
    block is mailed partly, as a random pick within it would be.
    """
    pop_scores = np.sort(np.asarray(pop_scores, dtype=float))
    cust_scores = np.sort(np.asarray(cust_scores, dtype=float))
    n, m = len(pop_scores), len(cust_scores)
    out = np.empty(len(depths))
    for i, depth in enumerate(depths):
        if depth <= 0:
            out[i] = 0.0
            continue
        cut = pop_scores[max(0, min(n - 1, int(np.ceil(n * (1 - depth))) - 1))] if depth < 1 else -np.inf
        pop_above = (n - np.searchsorted(pop_scores, cut, side="right")) / n
        pop_at = (np.searchsorted(pop_scores, cut, side="right") - np.searchsorted(pop_scores, cut)) / n
        cust_above = (m - np.searchsorted(cust_scores, cut, side="right")) / m
        cust_at = (np.searchsorted(cust_scores, cut, side="right") - np.searchsorted(cust_scores, cut)) / m
        part = 0.0 if pop_at == 0 else min(1.0, max(0.0, (depth - pop_above) / pop_at))
        out[i] = cust_above + part * cust_at
    return out


def _gains(scores: np.ndarray, y: np.ndarray, depths: np.ndarray) -> np.ndarray:
    return gains_curve(scores[y == 0], scores[y == 1], depths)


def _segment_gains(mailing: pd.DataFrame, depths: np.ndarray) -> np.ndarray:
    """The headline's segment order as a curve: segments mailed whole, in mailing order, then the
    rest of the population (the set-aside group) last; within a segment, people picked at random."""
    x = np.r_[0.0, mailing["cumulative_population_share"].to_numpy(dtype=float), 1.0]
    y = np.r_[0.0, mailing["cumulative_customer_share"].to_numpy(dtype=float), 1.0]
    return np.interp(depths, x, y)


def _at_depth(curves: pd.DataFrame, depth: float, scores: np.ndarray, y: np.ndarray, kept: np.ndarray) -> dict:
    """Every curve at one mailing depth, and how much of the lookalike mailing is set-aside rows."""
    row = {"depth": float(depth)}
    for column in curves.columns.drop("depth"):
        row[column] = float(np.interp(depth, curves["depth"], curves[column]))
    pop_scores = scores[y == 0]
    cut = np.quantile(pop_scores, 1 - depth)
    mailed = pop_scores >= cut
    row["set_aside_share_of_mailed"] = float((~kept[y == 0])[mailed].mean()) if mailed.any() else 0.0
    return row


@dataclass(frozen=True)
class ImportanceDraws:
    """The random draws of the permutation importance, made before any fit (see :func:`_fit`)."""

    rows: np.ndarray  # held-out rows the importance is measured on
    sources: dict[str, list[int]]  # each source feature's cleaned columns, sources in the plan's order
    orders: dict[str, np.ndarray]  # per source feature, the shuffle of those rows


def _draw_importance(plan: CleaningPlan, rng: np.random.Generator, n_held: int) -> ImportanceDraws:
    """The rows, then one shuffle per source feature in the plan's order: the order they were always drawn."""
    rows = rng.permutation(n_held)[:IMPORTANCE_ROWS]
    sources: dict[str, list[int]] = {}
    for j, column in enumerate(plan.columns):
        sources.setdefault(column.source, []).append(j)
    return ImportanceDraws(rows, sources, {source: rng.permutation(len(rows)) for source in sources})


def _shuffled_auc(plan: CleaningPlan, classifier, design: Design, draws: ImportanceDraws, x: np.ndarray,
                  inputs: np.ndarray, y: np.ndarray, source: str, sums: TreeSums | None = None) -> float:
    """Held-out AUC when one source feature's columns are shuffled together.

    One-hot and derived columns of the same source move as one, and the missingness moves with
    the values (an indicator is computed from the shuffled column), so a feature's importance
    includes what its coverage says. Scaling, filling and indicators act column by column:
    shuffling the model's inputs gives the same as transforming shuffled rows, without a
    transform per feature. Components mix columns, so there the shuffled rows are transformed.
    ``sums``: the classifier's predictions on ``inputs`` tree by tree (the same odds, fewer trees).
    """
    positions, order = draws.sources[source], draws.orders[source]
    if design.components:
        shuffled = x.copy()
        shuffled[:, positions] = x[np.ix_(order, positions)]
        return _auc(y, _odds(classifier, design.transform(shuffled)))
    moved = [i for j in positions
             for i in [j, *([len(plan.columns) + design.indicators.index(j)] if j in design.indicators else [])]]
    shuffled = inputs.copy()
    shuffled[:, moved] = inputs[np.ix_(order, moved)]
    return _auc(y, _odds(classifier, shuffled) if sums is None else sums.odds(shuffled, frozenset(moved)))


def _importance_table(plan: CleaningPlan, draws: ImportanceDraws, x_held: np.ndarray,
                      base: tuple[np.ndarray, np.ndarray, float], aucs: list[float]) -> pd.DataFrame:
    """Drop in held-out AUC per source feature (``aucs``: shuffled AUCs in ``draws.sources`` order).

    ``direction`` is the sign of the correlation between the strongest column and the score
    among people whose value is known: +1 means more customer-like towards the column's high
    end (``high_end``; for a flag: more often ``label``).
    """
    x = x_held[draws.rows]
    _, base_scores, base_auc = base
    columns = list(plan.columns)
    out = []
    for (source, positions), auc in zip(draws.sources.items(), aucs):
        strongest, direction = _direction(x, base_scores, positions)
        column = columns[strongest]
        out.append({"source": source, "column": column.name, "kind": column.kind,
                    "description": column.description, "low_end": column.low_end,
                    "high_end": column.high_end, "label": column.label,
                    "importance": float(base_auc - auc), "direction": direction,
                    "missing_share": float(np.isnan(x[:, positions[0]]).mean())})
    table = pd.DataFrame(out)
    return table.sort_values(["importance", "source"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _direction(x: np.ndarray, scores: np.ndarray, positions: list[int]) -> tuple[int, int]:
    """The column (of one source) most correlated with the log score, and the correlation's sign."""
    best, best_r = positions[0], 0.0
    log_score = np.log(scores)
    for j in positions:
        known = ~np.isnan(x[:, j])
        if known.sum() < 3 or np.ptp(x[known, j]) == 0:
            continue
        r = float(np.corrcoef(x[known, j], log_score[known])[0, 1])
        if np.isfinite(r) and abs(r) > abs(best_r):
            best, best_r = j, r
    return best, int(np.sign(best_r))


def _segment_spread(scores: np.ndarray, labels: np.ndarray, edges: np.ndarray) -> pd.DataFrame:
    """Per segment (set-aside group included): quantiles of the score and the share in the top decile."""
    rows = []
    top = scores >= edges[-1]
    for segment in np.unique(labels):
        s = scores[labels == segment]
        q = np.quantile(s, [0.1, 0.25, 0.5, 0.75, 0.9])
        rows.append({"segment": int(segment), "people": int(len(s)), "mean": float(s.mean()),
                     "q10": q[0], "q25": q[1], "median": q[2], "q75": q[3], "q90": q[4],
                     "top_decile_share": float(top[labels == segment].mean()),
                     "set_aside": bool(segment == SET_ASIDE)})
    return pd.DataFrame(rows)
