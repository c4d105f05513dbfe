"""Choose the number of segments k, and fit the final k-means on every population row.

Why not the usual notebook loop
-------------------------------
The usual notebook runs a full k-means on ~800k rows for every k from 2 to 20 and reads an
elbow off the inertia plot: tens of minutes for one weak signal. Here every k is fitted on a
random sample, and three signals are read off those cheap fits:

1. **Inertia and its elbow.** For each k, k-means (k-means++ starts, Lloyd) is fitted on a
   bootstrap resample of one random sample of ``sample_size`` rows (the first *refit*), keeping
   the best of ``BOOT_N_INIT`` starts. Its centres are scored on *all* rows: the ``inertia``
   column is the exact within-cluster sum of squares of those centres over the whole
   population (one cheap pass per k, closer to a full-batch fit than the sample inertia
   rescaled). The elbow is the k furthest below the chord of the normalised curve (the
   "Kneedle" idea in three lines; the ``kneed`` package is not needed).
2. **Silhouette** of that first refit's segments on one random evaluation set of
   ``silhouette_size`` rows (the same rows for every k), equal to
   ``sklearn.metrics.silhouette_score`` on those rows (within 1e-8), but in one blocked pass for all k so the
   pairwise distances are computed once rather than once per k (1.4 s instead of ~14 s).
3. **Stability**, only where it can change the pick: the elbow (and a forced k) and then, one
   at a time, the k's within ``WINDOW`` that could still displace it (:func:`_next_to_measure`)
   get ``n_boot - 1`` more refits on other bootstrap resamples; the ``n_boot`` refits each label
   the evaluation set, and the mean and the minimum pairwise adjusted Rand index (ARI) of those
   labellings say whether fitting again on other people would give the same segments (1 =
   identical, 0 = chance). Elsewhere stability is not measured (NaN, "not reproducible"): the
   rule's answer is the same as with every k measured (a property test checks it). Measuring
   every k near the elbow took 20 refits at the real size (k = 7 kept: its neighbours separate
   no better), 4 now; ``select_k`` went from 14.0 to 10.5-10.8 CPU s on the same scores.

Why the first refit alone gives the inertia (until this round the best of all ``n_boot``
refits did, which needed every refit of every k before the elbow was known): at the real size
(802k x 59 scores, k = 2..15) the first refit and the best of two or five gave the same elbow
and the same k (7) for each of 4 seeds, their elbow gaps within 0.03; the refits of the k's near
the elbow are unchanged, to the bit, so their stability is too. ``select_k`` took 25-27 CPU s
and 13.3-14.4 s on 2 quiet cores before; it now takes about 12 CPU s.

Measurements (800k x 35 float32, synthetic PCA-like scores with 10 overlapping groups, 2 shared
cores; ARI against full-batch Lloyd n_init=3 on all rows, which took 3.3-7.8 s per k):
MiniBatchKMeans on all rows 2.2-6.3 s per k, ARI 0.54-0.64, inertia 1-5 % worse - rejected;
one KMeans n_init=3 on a 50k or 100k sample 0.2-0.6 s, ARI 0.74-0.99 (it sometimes stops in a
worse local optimum, 1 % higher inertia); the fits used here (5 bootstrap fits x 3 starts on
50k, best one) 1.0-1.2 s per k, ARI 0.91-0.99 (0.91 at k = 6 on the weakest structure, where two
full-batch fits from different seeds agree only at 0.95). ``select_k`` over k = 2..15 takes
16-29 s in all (the weaker the structure, the more Lloyd iterations), nearly all of it in the
14 x 5 x 3 sample starts; ``n_boot=3`` cuts that by 40 %. At the real size (802k x 59 scores,
k = 2..15) scikit-learn's k-means++ took about 40 % of those fits' CPU time, most of it in its
chunked float32 distance upcast; :func:`_kmeans_plusplus` makes the same starts with one matrix
product per step and cut ``select_k``'s CPU time by 17 % (same curves to the bit). Fitting each
bootstrap resample as weighted k-means on its distinct rows (63 % of them) cut another 15 % and
chose the same k, but its different random starts moved k = 7's stability from 0.99 to 0.91,
next to the 0.90 line: not used. (All of these figures predate stability near the elbow only.)

The rule (its parameters are returned by ``KSelection.to_dict``)
----------------------------------------------------------------
See :func:`select_k`. In short: the elbow, moved by at most 2 to a k whose segments reproduce
(stability ARI >= 0.90) and separate clearly better (silhouette at least 0.02 higher), or away
from an elbow that does not reproduce. Anchoring on the elbow keeps the pick from collapsing to
k = 2, where silhouette and stability usually peak on weakly clustered survey data; the other
two signals can only move it a little. Three starts per bootstrap fit matter: with one, a bad
k-means++ start (15 % of single starts on 6 clear blobs) made the true k look unstable.

Threads and reproducibility
---------------------------
All randomness flows from ``seed`` through one ``numpy.random.Generator``. Sample fits run on
one thread each, two (``FIT_WORKERS``) side by side: with two OpenMP threads per fit, the
threads spin at a barrier every Lloyd iteration, and on this shared machine a 50k-row fit
slowed 8-fold whenever another process took a core. One-thread fits are also bit-identical
however many run at once. The first refits of all k are queued at once and each k is scored on
the calling thread while the workers fit the next; then the elbow's other refits and the
silhouette blocks are shared among the workers, so both cores stay busy; a neighbour the rule
still needs is refitted last, its refits side by side. The
full-batch fit in :func:`fit_final` uses at most two OpenMP threads: scikit-learn adds
per-thread partial sums in whatever order threads finish, and with two addends (0 + a + b) the
order cannot change the result. Same inputs, same machine: same bits.
"""
from __future__ import annotations

import math
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import combinations
from typing import Callable

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from analysis.constants import STABLE_ARI
from analysis.threads import cores, each

#: Rows sampled for the k-selection fits. 25,000 leaves 1,600+ rows per cluster at k = 15 and
#: halves the time against 50,000 with the same k chosen on the demo data; inertia is still
#: scored on all rows.
SAMPLE_SIZE = 25_000
#: A k "reproduces" when the mean pairwise ARI of its bootstrap refits is at least this.
#: How far (in k) the other signals may move the pick away from the elbow.
WINDOW = 2
#: How much higher a neighbour's silhouette must be to displace a reproducible elbow.
SILHOUETTE_MARGIN = 0.02
#: Each k needs at least this many sampled rows per cluster (and evaluation rows per cluster).
MIN_ROWS_PER_CLUSTER = 10
#: k-means++ starts per bootstrap fit (the best is kept).
BOOT_N_INIT = 3
#: fit_final: rows in the sample its k-means++ starts are fitted on, and how many starts.
FINAL_SAMPLE = 100_000
FINAL_N_INIT = 10
#: k-means fits on samples run one thread each, this many at a time (see _fit_each).
FIT_WORKERS = cores()
#: OpenMP threads for the full-batch k-means on all rows (see "Threads and reproducibility").
MAX_THREADS = 2

#: Which part of the rule decided k (``KSelection.reason``); the report puts each into words.
FORCED = "forced"  # the user set k
ELBOW_UNSTABLE = "elbow-unstable"  # no k near the elbow reproduces: the elbow is kept
ELBOW_KEPT = "elbow-kept"  # the elbow reproduces and no neighbour separates clearly better
BETTER_SEPARATED = "better-separated"  # a reproducible neighbour separates clearly better
ELBOW_UNREPRODUCIBLE = "elbow-unreproducible"  # the elbow does not reproduce, a neighbour does
REASONS = (FORCED, ELBOW_UNSTABLE, ELBOW_KEPT, BETTER_SEPARATED, ELBOW_UNREPRODUCIBLE)


@dataclass(frozen=True, eq=False)
class KSelection:
    """The chosen k, which part of the rule decided it (``reason``, one of :data:`REASONS`),
    and the per-k curves behind it.

    ``curves`` is indexed by ``k`` with columns ``inertia`` (within-cluster sum of squares over
    all rows), ``silhouette``, ``stability_mean``, ``stability_min`` (NaN for a k further than
    ``WINDOW`` from the elbow: not measured), ``elbow_gap`` (how far the normalised inertia lies
    below the chord; the elbow maximises it), ``reproducible`` (stability_mean >= 0.90; False
    where not measured) and ``smallest_share`` (share of rows in the smallest segment).
    ``eq=False`` because a DataFrame field has no single truth value; compare fields instead.
    """

    k: int
    reason: str
    curves: pd.DataFrame
    elbow_k: int
    seconds: float
    n_boot: int = 5

    @property
    def rule(self) -> dict:
        """The rule's parameters: what the report needs to state the rule with this run's numbers."""
        return {"window": WINDOW, "stable_ari": STABLE_ARI, "silhouette_margin": SILHOUETTE_MARGIN,
                "n_boot": self.n_boot}

    def to_dict(self) -> dict:
        """JSON-ready: plain ints, floats (NaN -> None), codes and a list of per-k records."""
        records = []
        for k, row in self.curves.iterrows():
            record: dict = {"k": int(k)}
            for name, value in row.items():
                if isinstance(value, (bool, np.bool_)):
                    record[name] = bool(value)
                else:
                    value = float(value)
                    record[name] = value if math.isfinite(value) else None
            records.append(record)
        return {"k": int(self.k), "reason": self.reason, "rule": self.rule,
                "elbow_k": int(self.elbow_k), "seconds": round(float(self.seconds), 3),
                "curves": records}


# BLAS on one thread for the distances and silhouettes too: under other processes' load two
# spinning threads cost 4.5 s more CPU and 4 s more wall time here (k = 2..15 at the real size).
@threadpool_limits.wrap(limits=1, user_api="blas")
def select_k(
    scores: np.ndarray,
    k_range: range = range(2, 16),
    seed: int = 0,
    sample_size: int = SAMPLE_SIZE,
    silhouette_size: int = 10_000,
    n_boot: int = 5,
    forced_k: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> KSelection:
    """Choose the number of segments from inertia (elbow), silhouette and stability curves.

    ``scores`` are the PCA scores of the population rows kept (float32 or float64, rows x
    components). Every k in ``k_range`` gets a k-means fit on a bootstrap resample of one
    random sample of ``sample_size`` rows, and the elbow, ``forced_k`` and the k's near the
    elbow whose stability could change the pick ``n_boot - 1`` more on other resamples
    (:func:`_next_to_measure`); silhouette and stability are measured
    on one random evaluation set of ``silhouette_size`` rows (see the module docstring for
    details and measurements). The pick:

        Start from the elbow of the inertia curve (k and inertia scaled to 0-1; the k furthest
        below the line joining the first and last points). Among the k's within ±2 of it keep
        those that reproduce (mean bootstrap ARI >= 0.90). None: take the elbow. Otherwise the
        reproducible k with the highest silhouette, but a reproducible elbow stays unless another
        k beats its silhouette by >= 0.02. Ties: nearest the elbow, then smaller k.

    The result is always a k of ``k_range``, unless ``forced_k`` is given: then the curves are
    still computed (with a row for ``forced_k`` if it lies outside ``k_range``) but ``forced_k`` is
    returned with the reason :data:`FORCED`. ``progress`` is called once per
    stage, once per k and once per k whose stability is measured. Same inputs and seed give the same result.

    Raises ValueError for a bad array or setting, e.g. a k_range needing more rows than sampled.
    """
    start = time.perf_counter()
    say = progress or (lambda message: None)
    X = _as_matrix(scores)
    n = X.shape[0]
    ks = _check_settings(k_range, n, sample_size, silhouette_size, n_boot, forced_k)

    rng = np.random.default_rng(seed)
    sample = X[np.sort(rng.choice(n, size=min(sample_size, n), replace=False))]
    evaluation = X[np.sort(rng.choice(n, size=min(silhouette_size, n), replace=False))]
    m = len(sample)
    resamples = [sample[rng.integers(0, m, size=m)] for _ in range(n_boot)]
    fit_seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=n_boot)]
    say(f"choose k: {len(ks)} values of k, one fit each on a bootstrap resample of {m:,} of {n:,} "
        f"rows ({n_boot} where the rule needs stability); silhouette and stability on {len(evaluation):,} rows")

    total_sq = _sq_norms(X)
    rows, eval_labels = {}, {}
    with ThreadPoolExecutor(max_workers=FIT_WORKERS) as pool:
        try:
            # First refit of every k, all queued at once, the largest (slowest) k first so that
            # no long fit runs alone at the end; each k is scored here while the pool fits the
            # next: its inertia over all rows, size and evaluation-set labels.
            first = {k: pool.submit(_fit_one, (resamples[0], k, BOOT_N_INIT, fit_seeds[0])) for k in ks[::-1]}
            centres = {}
            for k, future in first.items():
                centres[k] = [future.result()[0]]
                rows[k], eval_labels[k] = _score_fit(X, evaluation, centres[k][0], total_sq)
                say(f"k = {k}: inertia {rows[k]['inertia']:.4g}")
            elbow = _elbow(ks, k_range, rows)

            def refit(k: int) -> list:
                """Queue the other n_boot - 1 refits of ``k``."""
                return [pool.submit(_fit_one, (r, k, BOOT_N_INIT, s)) for r, s in zip(resamples[1:], fit_seeds[1:])]

            def measure(k: int, futures: list) -> None:
                centres[k] += [future.result()[0] for future in futures]
                rows[k].update(_stability(evaluation, centres[k], eval_labels[k]))
                say(f"k = {k}: stability {rows[k]['stability_mean']:.3f} (min {rows[k]['stability_min']:.3f}) "
                    f"over {n_boot} refits")

            # The rule always reads the elbow's stability (and a forced k's is shown): their
            # refits run beside the silhouettes. Other k's near the elbow follow one at a time,
            # only while the rule still needs one (see _next_to_measure).
            first_needed = {k: refit(k) for k in sorted({elbow} | ({forced_k} - {None}), reverse=True)}
            say(f"silhouette on {len(evaluation):,} rows for {len(ks)} values of k")
            # Half the usual block per thread: two blocks at once hold what one did (same bits).
            silhouettes = dict(zip(ks, _silhouettes(evaluation, [eval_labels[k] for k in ks], block=256, pool=pool)))
            for k, futures in first_needed.items():
                measure(k, futures)
            while (k := _next_to_measure(ks, silhouettes, _measured(rows), elbow)) is not None:
                measure(k, refit(k))
        except BaseException:  # a failed fit or Ctrl-C: do not run the queued fits first
            pool.shutdown(cancel_futures=True)
            raise
    rows = [{"k": k, "stability_mean": np.nan, "stability_min": np.nan, **rows[k]} for k in ks]

    curves = pd.DataFrame(rows).set_index("k")
    curves.insert(1, "silhouette", [silhouettes[k] for k in ks])
    curves["reproducible"] = curves["stability_mean"] >= STABLE_ARI
    in_range = curves.loc[[k for k in ks if k in k_range]]
    gaps = _elbow_gaps(in_range.index.to_numpy(), in_range["inertia"].to_numpy())
    curves["elbow_gap"] = pd.Series(gaps, index=in_range.index).reindex(curves.index)
    curves = curves[["inertia", "silhouette", "stability_mean", "stability_min", "elbow_gap",
                     "reproducible", "smallest_share"]]
    if forced_k is not None:
        k, reason = int(forced_k), FORCED
    else:
        k, reason = _apply_rule(in_range, elbow)
    say(f"chose k = {k} ({'forced' if forced_k is not None else f'elbow at {elbow}'})")
    return KSelection(k=k, reason=reason, curves=curves, elbow_k=elbow,
                      seconds=time.perf_counter() - start, n_boot=n_boot)


def _score_fit(X: np.ndarray, evaluation: np.ndarray, centres: np.ndarray,
               total_sq: float) -> tuple[dict, np.ndarray]:
    """One k's first refit: its inertia over all rows, the share of rows in its smallest
    segment, and its labels of the evaluation rows (for the silhouette and the stability)."""
    full_labels, inertia = _nearest(X, centres, total_sq)
    sizes = np.bincount(full_labels, minlength=len(centres))
    return ({"inertia": inertia, "smallest_share": float(sizes.min() / len(X))},
            _nearest(evaluation, centres)[0])


def _stability(evaluation: np.ndarray, centres: list[np.ndarray], first: np.ndarray) -> dict:
    """Mean and minimum pairwise ARI of the refits' labellings of the evaluation rows
    (``first``: the first refit's labels, already computed)."""
    labellings = [first, *(_nearest(evaluation, c)[0] for c in centres[1:])]
    aris = [adjusted_rand_score(a, b) for a, b in combinations(labellings, 2)]
    return {"stability_mean": float(np.mean(aris)), "stability_min": float(np.min(aris))}


def _elbow(ks: list[int], k_range: range, rows: dict[int, dict]) -> int:
    """The elbow of the inertia curve over the k's of ``k_range`` (see :func:`_elbow_gaps`)."""
    in_range = np.array([k for k in ks if k in k_range])
    gaps = _elbow_gaps(in_range, np.array([rows[k]["inertia"] for k in in_range]))
    return int(in_range[int(np.argmax(gaps))])


def fit_final(scores: np.ndarray, k: int, seed: int = 0, n_init: int = FINAL_N_INIT,
              sample_size: int = FINAL_SAMPLE, overwrite: bool = False) -> KMeans:
    """Fit the final k segments on ALL rows; segment 0 is the largest, then by falling size.

    ``overwrite``: scikit-learn centres ``scores`` in place and adds the mean back instead of
    fitting on a copy (190 MB less at the real size); the values it leaves can differ from the
    originals in the last bit, so only a caller that does not reuse them exactly should ask.

    Method, chosen by measurement at 800k x 35 float32 on 2 cores: ``FINAL_N_INIT`` k-means++
    starts, one thread each, on a random sample of ``FINAL_SAMPLE`` rows; the best (lowest
    sample inertia) is refined by full-batch Lloyd on all rows, which then converges in 3-6
    passes. Total 2.3-3.2 s, with inertia below or within 0.001 % of full-batch n_init=3 on all
    rows (3.3-7.8 s) and partition ARI 0.994-0.999 against it on clear structure (0.96 on the
    weakest, where two full-batch seeds agree only at 0.95). A single full-batch start
    (1.2-2.3 s) is not safe: at k = 10 one stopped 0.2 % higher in inertia with ARI 0.79.

    k-means numbers its clusters arbitrarily, and the numbering changes with the seed, the
    data and the library version. Renumbering by descending size (ties: by centre coordinates)
    makes "segment 0" mean the same thing in every report and run, and puts the biggest group
    first where analysts look. The renumbering is applied to ``cluster_centers_`` and
    ``labels_`` both, so ``predict`` returns the new numbers.
    """
    X = _as_matrix(scores)
    n = X.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k must be a whole number from 1 to the number of rows ({n:,}); got {k!r}")
    k = int(k)
    rng = np.random.default_rng(seed)
    sample = X[np.sort(rng.choice(n, size=min(sample_size, n), replace=False))]
    start_seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=n_init)]
    starts = _fit_each([(sample, k, 1, s) for s in start_seeds])
    best = starts[int(np.argmin([inertia for _, inertia in starts]))][0]
    # assume_finite: _as_matrix checked X, and scikit-learn's check holds a mask of all of it.
    with threadpool_limits(limits=MAX_THREADS, user_api="openmp"), config_context(assume_finite=True):
        model = KMeans(n_clusters=k, init=best, n_init=1, random_state=seed, copy_x=not overwrite).fit(X)
    centres = model.cluster_centers_
    sizes = np.bincount(model.labels_, minlength=k)
    order = size_order(centres, sizes)
    new_number = np.empty(k, dtype=model.labels_.dtype)
    new_number[order] = np.arange(k, dtype=model.labels_.dtype)
    model.cluster_centers_ = np.ascontiguousarray(centres[order])
    model.labels_ = new_number[model.labels_]
    return model


def size_order(centres: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Cluster numbers by descending size, ties by centre coordinates: ``order[i]`` becomes segment i."""
    return np.lexsort((*centres.T[::-1], -sizes))


def _fit_each(jobs: list[tuple[np.ndarray, int, int, int]]) -> list[tuple[np.ndarray, float]]:
    """Fit k-means for each ``(data, k, n_init, seed)`` (see :func:`_fit_one`), up to
    ``FIT_WORKERS`` side by side; return (centres, inertia) in job order."""
    workers = min(FIT_WORKERS, len(jobs))
    # BLAS to one thread for the whole process (k-means++ uses it); scikit-learn's own per-fit
    # limits, entered and left by the workers, restore to one, and this block restores the
    # caller's setting at the end.
    with threadpool_limits(limits=1, user_api="blas"):
        return each(_fit_one, jobs, workers)


def _fit_one(job: tuple[np.ndarray, int, int, int]) -> tuple[np.ndarray, float]:
    """One k-means fit of ``(data, k, n_init, seed)`` on one thread: (centres, inertia).

    Fits run one thread each, several side by side (scikit-learn's Lloyd loop releases the
    GIL). On small samples this beats two OpenMP threads per fit, which spin at a barrier every
    iteration and slowed 8-fold here when another process took a core. Single-threaded fits are
    also bit-reproducible whatever the number of workers. The OpenMP limit is per thread, so it
    is set here, in the thread that fits; BLAS (which k-means++ uses) is limited to one thread
    by the callers, for the whole process.
    """
    data, k, n_init, seed = job
    with threadpool_limits(limits=1, user_api="openmp"):
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed, init=_kmeans_plusplus).fit(data)
    return km.cluster_centers_, float(km.inertia_)


def _kmeans_plusplus(X: np.ndarray, n_clusters: int, random_state: np.random.RandomState) -> np.ndarray:
    """scikit-learn's greedy k-means++ start (the same draws from ``random_state``, distances
    rounded to X's dtype), with the distances of each step's candidates from one matrix product
    in X's own dtype instead of scikit-learn's chunked float32 -> float64 upcast.

    Measured on 25,000 x 59 float32 PCA scores: scikit-learn's own k-means++ took 45 % of a
    3-start fit, almost all of it in the chunked upcast. A float64 product here was memory-bound
    (each step reads the whole sample: 11.8 MB in float64, 5.9 MB in float32); the float32
    product with norms and sums in float64 gave bit-identical starts to the float64 product in
    140 of 140 starts (k = 2..15, 10 seeds each) in 62 % of its CPU time.
    """
    n, d = X.shape
    weight = np.ones(n, dtype=X.dtype)
    trials = 2 + int(np.log(n_clusters))
    norms = np.einsum("ij,ij->i", X, X, dtype=np.float64)

    def distances(rows: np.ndarray) -> np.ndarray:
        dist = (X[rows] @ X.T).astype(np.float64)
        dist *= -2
        dist += norms[rows, None]
        dist += norms[None, :]
        dist = dist.astype(X.dtype, copy=False)
        return np.maximum(dist, 0, out=dist)

    centres = np.empty((n_clusters, d), dtype=X.dtype)
    first = random_state.choice(n, p=weight / weight.sum())
    centres[0] = X[first]
    closest = distances(np.array([first]))
    pot = closest @ weight
    for c in range(1, n_clusters):
        draws = random_state.uniform(size=trials) * pot
        candidates = np.searchsorted(np.cumsum(weight * closest), draws)
        np.clip(candidates, None, closest.size - 1, out=candidates)
        dist = np.minimum(closest, distances(candidates))
        pots = dist @ weight.reshape(-1, 1)
        best = int(np.argmin(pots))
        pot, closest = pots[best], dist[best]
        centres[c] = X[candidates[best]]
    return centres


def _as_matrix(scores: np.ndarray) -> np.ndarray:
    X = np.asarray(scores)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"scores must be a non-empty 2-D array (rows x components); got shape {X.shape}")
    if X.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(X.dtype, np.number) and not np.issubdtype(X.dtype, np.complexfloating)):
            raise ValueError(f"scores must be numeric; got dtype {X.dtype}")
        X = X.astype(np.float64)
    # In row blocks: a mask of the whole matrix would be 50 MB at the real size.
    if not all(np.isfinite(X[s:s + 65_536]).all() for s in range(0, len(X), 65_536)):
        raise ValueError("scores contain NaN or infinite values; impute before clustering")
    return np.ascontiguousarray(X)


def _check_settings(k_range: range, n: int, sample_size: int, silhouette_size: int,
                    n_boot: int, forced_k: int | None) -> list[int]:
    ks = list(k_range)
    if not ks or min(ks) < 2:
        raise ValueError(f"k_range must hold at least one k and start at 2 or more; got {k_range!r}")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2 to compare fits; got {n_boot}")
    if forced_k is not None:
        if isinstance(forced_k, bool) or not isinstance(forced_k, (int, np.integer)) or forced_k < 2:
            raise ValueError(f"forced k must be a whole number of 2 or more; got {forced_k!r}")
        ks = sorted(set(ks) | {int(forced_k)})
    k_max = max(ks)
    need = MIN_ROWS_PER_CLUSTER * k_max
    for what, size in (("sample_size", sample_size), ("silhouette_size", silhouette_size)):
        rows = min(size, n)
        if rows < need:
            raise ValueError(
                f"k up to {k_max} needs at least {need:,} rows ({MIN_ROWS_PER_CLUSTER} per cluster) "
                f"for k-means and its checks, but {what}={size:,} with {n:,} rows gives only "
                f"{rows:,}; lower the largest k or use more rows")
    return ks


def _nearest(X: np.ndarray, centres: np.ndarray, total_sq: float | None = None,
             chunk: int = 65_536) -> tuple[np.ndarray, float]:
    """Label of the nearest centre for every row, and (given ``total_sq``, the sum of squared
    row norms) the total squared distance to those centres, summed in float64."""
    C = centres.astype(X.dtype)
    half_norms = 0.5 * np.einsum("ij,ij->i", C, C)
    labels = np.empty(len(X), dtype=np.int32)
    total = 0.0
    for s in range(0, len(X), chunk):
        d = half_norms - X[s:s + chunk] @ C.T  # (||x - c||^2 - ||x||^2) / 2
        lab = d.argmin(axis=1)
        labels[s:s + chunk] = lab
        total += float(np.take_along_axis(d, lab[:, None], axis=1).sum(dtype=np.float64))
    return labels, (float("nan") if total_sq is None else max(total_sq + 2.0 * total, 0.0))


def _sq_norms(X: np.ndarray) -> float:
    return float(np.einsum("ij,ij->", X, X, dtype=np.float64))


def _silhouettes(X: np.ndarray, labellings: list[np.ndarray], block: int = 512,
                 pool: Executor | None = None) -> list[float]:
    """Mean silhouette of each labelling of the same rows, as sklearn's silhouette_score.

    Distances are computed once in blocks and multiplied by the one-hot membership of every
    labelling at once, giving each row's summed distance to every cluster. With ``pool`` the
    blocks are shared among its threads (each block is computed alike: the same bits). Squared
    distances are float64 (a float32 difference of norms loses close pairs); the distances and
    their sums per cluster are float32, which halves the larger product: on the real size's
    10,000 evaluation rows and 14 labellings 1.75-1.93 CPU s instead of 2.56-2.66, the
    silhouettes within 4e-9 of the float64 ones (14 k at the real size).
    """
    E = X.astype(np.float64)
    m = len(E)
    widths = [int(lab.max()) + 1 for lab in labellings]
    offsets = np.concatenate([[0], np.cumsum(widths)])
    onehot = np.zeros((m, offsets[-1]), dtype=np.float32)
    for lab, off in zip(labellings, offsets):
        onehot[np.arange(m), off + lab] = 1.0
    sq = np.einsum("ij,ij->i", E, E)
    sums = np.empty(onehot.shape)

    def fill(s: int) -> None:
        e = min(s + block, m)
        d2 = sq[s:e, None] + sq[None, :] - 2.0 * (E[s:e] @ E.T)
        d2[np.arange(e - s), np.arange(s, e)] = 0.0
        distances = np.maximum(d2, 0.0, out=d2).astype(np.float32)
        sums[s:e] = np.sqrt(distances, out=distances) @ onehot

    starts = range(0, m, block)
    list(pool.map(fill, starts) if pool else map(fill, starts))
    result = []
    rows = np.arange(m)
    for lab, off, width in zip(labellings, offsets, widths):
        counts = np.bincount(lab, minlength=width).astype(np.float64)
        if np.count_nonzero(counts) < 2 or np.count_nonzero(counts) > m - 1:
            result.append(float("nan"))
            continue
        S = sums[:, off:off + width]
        own = counts[lab]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = S[rows, lab] / (own - 1.0)
            means = S / counts
            means[:, counts == 0] = np.inf
            means[rows, lab] = np.inf
            b = means.min(axis=1)
            sil = (b - a) / np.maximum(a, b)
        sil = np.where(own > 1, np.nan_to_num(sil), 0.0)
        result.append(float(sil.mean()))
    return result


def _elbow_gaps(ks: np.ndarray, inertia: np.ndarray) -> np.ndarray:
    """How far each point lies below the chord of the curve, both axes scaled to 0-1."""
    if len(ks) < 3 or inertia.max() == inertia.min():
        return np.zeros(len(ks))
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    y = (inertia - inertia.min()) / (inertia.max() - inertia.min())
    return y[0] + (y[-1] - y[0]) * x - y


def _measured(rows: dict[int, dict]) -> dict[int, float]:
    """Mean stability of the k's whose stability has been measured so far."""
    return {k: row["stability_mean"] for k, row in rows.items() if "stability_mean" in row}


def _next_to_measure(ks: list[int], silhouettes: dict[int, float], stability: dict[int, float],
                     elbow: int) -> int | None:
    """The next k whose stability :func:`_apply_rule` needs, given those measured so far (the
    elbow's first); None when no unmeasured k can change its answer.

    A reproducible elbow can only be displaced by a k within ``WINDOW`` whose silhouette beats
    it by ``SILHOUETTE_MARGIN``; an elbow that does not reproduce by any k within ``WINDOW``.
    Either way the rule takes the first reproducible candidate in the order it ranks them
    (silhouette, then nearness, then smaller k), so candidates are measured in that order until
    one reproduces. A k left unmeasured reads as not reproducible and could not have been picked:
    ``_apply_rule`` on the partly measured curves gives the answer it gives on full ones.
    """
    if elbow not in stability:
        return elbow
    sil = {k: -np.inf if np.isnan(v) else v for k, v in silhouettes.items()}
    near = [k for k in ks if abs(k - elbow) <= WINDOW and k != elbow]
    if stability[elbow] >= STABLE_ARI:  # only a clearly better-separated k can displace it
        # ``>`` too: with no silhouette at the elbow (-inf + margin = -inf), a k without one
        # ranks after the elbow and cannot displace it either.
        near = [k for k in near if sil[k] > sil[elbow] and sil[k] >= sil[elbow] + SILHOUETTE_MARGIN]
    for k in sorted(near, key=lambda k: (-sil[k], abs(k - elbow), k)):
        if k not in stability:
            return k
        if stability[k] >= STABLE_ARI:
            return None
    return None


def _apply_rule(curves: pd.DataFrame, elbow: int) -> tuple[int, str]:
    """The chosen k and which part of the rule chose it (a code of :data:`REASONS`)."""
    near = curves[(curves.index >= elbow - WINDOW) & (curves.index <= elbow + WINDOW)]
    stable = near[near["reproducible"]]
    if stable.empty:
        return elbow, ELBOW_UNSTABLE
    sil = stable["silhouette"].fillna(-np.inf)
    top = int(sorted(stable.index, key=lambda k: (-sil[k], abs(k - elbow), k))[0])
    if curves.loc[elbow, "reproducible"]:
        if top == elbow or sil[top] < sil[elbow] + SILHOUETTE_MARGIN:
            return elbow, ELBOW_KEPT
        return top, BETTER_SEPARATED
    return top, ELBOW_UNREPRODUCIBLE
