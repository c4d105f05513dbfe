"""The analysis on a Dask cluster: every row-level stage runs per partition, the decisions on the client.

A partition is a span of whole lines of an input file (``SPAN_BYTES`` each), read and checked by
``inputs.loading.load_span`` exactly as the local engine reads the whole file, so an error names
the same file, column and physical line. Rows stay on the workers; the client only sees sums,
counts and small samples:

- *cleaning*: each partition counts missing codes, one-hot levels and the youth-movement
  agreement (``cleaning.count_cleaning``); the counts are added and the plan decided from them
  (``plan_cleaning``), then applied per partition (``apply_cleaning``);
- *scaling and PCA*: counts, sums and sums of squares of the known values give the scaler;
  sums and the cross-product matrix of the scaled, filled rows give the covariance, whose
  eigen-decomposition is done on the client, as scikit-learn's ``covariance_eigh`` solver does;
- *choosing k*: ``select_k`` on a random sample of at most ``SEARCH_SAMPLE`` kept rows;
- *final k-means*: ``fit_final`` on that sample gives the starting centres, then Lloyd
  iterations on all rows, each a map of per-partition centre sums and a reduce on the client;
- *assignment, comparison, profiles*: labels per partition; per-segment counts and sums.

Duplicate rows are counted by hashing each row (as the local engine does) and grouping the
hashes by value across partitions. Per-row outputs (the label tables) are streamed to the
results folder one partition at a time. The fitted objects (plan, reducer, k-means) and every
table after the assignment are those of the local engine, so the results folder is the same.
"""
from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import operator
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler
from sklearn.utils.extmath import svd_flip

from analysis.compare.shares import compare_counts
from analysis.compare.targeting import gains_table, headline
from analysis.constants import ALPHA, MIN_EFFECT, MODEL_FILE, RESULTS_FILE, SET_ASIDE
from analysis.engine.cluster import connect
from analysis.errors import InputError
from analysis.inputs.loading import LoadedTable, Span, load_span, read_head, read_header
from analysis.inputs.schema import Feature, load_features
from analysis.pipeline import (Model, _segments, _versions, check_replaceable, check_rows,
                               set_aside_profile)
from analysis.prepare.cleaning import (CleanedTable, CleaningCounts, CleaningPlan, apply_cleaning,
                                       count_cleaning, decode, group_means, note_set_aside, plan_cleaning)
from analysis.prepare.reduce import Reducer, assemble_reducer, interpret, loadings, scree
from analysis.profile.traits import segment_names, trait_sums, traits_from_sums
from analysis.segment.kselect import fit_final, select_k, size_order
from analysis.settings import Settings
from analysis.shell.progress import Stages
from analysis.shell.sources import Inputs
from analysis.shell.store import atomic_folder, write_json

SPAN_BYTES = 64 << 20  # bytes of CSV per partition: ~250k rows, ~100 MB once loaded
SEARCH_SAMPLE = 200_000  # kept rows gathered to the client for choosing k and the starting centres
MAX_ITER = 300  # Lloyd iterations at most (scikit-learn's default)
TOLERANCE = 1e-4  # stop when centres move less than this share of the mean variance (scikit-learn's rule)
PART = "part-{:05d}.parquet"
HASH_GROUPS = 16  # duplicate rows are counted in this many groups of row hashes, one task each


# --- reading files as spans ---------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """How a file is read in partitions: its spans, encoding, header and extra columns."""

    path: Path
    spans: tuple[Span, ...]
    encoding: str
    header: list[str]
    extra: list[str]


def layout(client, path: Path, features: list[Feature], span_bytes: int | None = None) -> Layout:
    """Cut ``path`` into spans of whole lines and learn, per span on the workers, where each starts.

    The header is checked first (a wrong separator fails at once); the workers then count each
    span's line ends and check it is valid UTF-8, so every span knows its first physical line,
    and the file is read as Latin-1 when any span is not UTF-8, as ``load_table`` decides.
    """
    path = Path(path)
    head = read_head(path)
    first = head.split(b"\n", 1)[0]
    guess = "utf-8" if _is_utf8(first) else "latin-1"
    header, extra = read_header(path, head, features, guess)
    size = path.stat().st_size
    cuts = _cuts(path, len(first) + 1, size, span_bytes or SPAN_BYTES)
    if len(cuts) < 2:
        raise InputError("the file has a header but no data rows", path=path,
                         expected="one line per person after the header")
    ranges = list(zip(cuts[:-1], cuts[1:]))
    scans = client.gather(client.map(_scan, [path] * len(ranges), ranges, pure=False))
    encoding = "utf-8" if guess == "utf-8" and all(ok for _, ok in scans) else "latin-1"
    if encoding != guess:
        header, extra = read_header(path, head, features, encoding)
    starts = 2 + np.cumsum([0] + [lines for lines, _ in scans[:-1]])  # the header is line 1
    spans = tuple(Span(a, b, int(line)) for (a, b), line in zip(ranges, starts))
    return Layout(path, spans, encoding, header, extra)


def _cuts(path: Path, start: int, size: int, span_bytes: int) -> list[int]:
    """Byte offsets where spans begin (each just after a line end), and the file size."""
    cuts = [start] if start < size else []
    with path.open("rb") as fh:
        position = start + span_bytes
        while position < size:
            fh.seek(position)
            tail = b""
            while b"\n" not in tail:
                more = fh.read(1 << 16)
                if not more:
                    break
                tail += more
            if b"\n" not in tail:
                break
            cut = position + tail.index(b"\n") + 1
            if cut >= size:
                break
            cuts.append(cut)
            position = cut + span_bytes
    return cuts + [size] if cuts else []


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _scan(path: Path, bounds: tuple[int, int]) -> tuple[int, bool]:
    """Line ends in the span and whether it is valid UTF-8 (a span ends at a line end, so no
    character is cut)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines, valid = 0, True
    with path.open("rb") as fh:
        fh.seek(bounds[0])
        left = bounds[1] - bounds[0]
        while left > 0:
            chunk = fh.read(min(left, 8 << 20))
            if not chunk:
                break
            left -= len(chunk)
            lines += chunk.count(b"\n")
            if valid:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    valid = False
    return lines, valid


def _load(file: Layout, span: Span, features: list[Feature]) -> pd.DataFrame:
    return load_span(file.path, file.header, features, file.encoding, span)[0]


# --- per-partition work -----------------------------------------------------------------------------

def _count(raw: pd.DataFrame, features: list[Feature]) -> CleaningCounts:
    decoded, quality = decode(raw, features)
    return count_cleaning(decoded, quality, features)


def _hash_groups(raw: pd.DataFrame, groups: int) -> list[np.ndarray]:
    """Row hashes (as ``LoadedTable.duplicate_rows``), split by value into ``groups`` groups."""
    hashes = pd.util.hash_pandas_object(raw, index=False).to_numpy()
    which = hashes % np.uint64(groups)
    return [hashes[which == g] for g in range(groups)]


def _duplicates(*parts: np.ndarray) -> int:
    """Rows of one hash group equal to an earlier row: all rows minus distinct hashes."""
    values = np.concatenate(parts)
    return int(len(values) - len(np.unique(values)))


def _clean(raw: pd.DataFrame, plan: CleaningPlan) -> CleanedTable:
    return apply_cleaning(plan, raw)


def _cleaned_facts(table: CleanedTable) -> dict:
    """What the client needs of a cleaned partition: sizes, quality counts, group sums."""
    return {"rows": len(table.set_aside), "set_aside": int(table.set_aside.sum()),
            "quality": table.quality[["blank", "coded_missing", "out_of_range"]],
            "group_sums": table.group_sums}


def _moments(table: CleanedTable) -> np.ndarray:
    """Count, sum and sum of squares of the known values of every column over kept rows (float64)."""
    x = table.matrix.to_numpy()[table.kept].astype(np.float64)
    known = ~np.isnan(x)
    x[~known] = 0.0
    return np.stack([known.sum(axis=0), x.sum(axis=0), (x * x).sum(axis=0)])


def _filled(table: CleanedTable, scaler: StandardScaler, imputer: SimpleImputer) -> np.ndarray:
    return imputer.transform(scaler.transform(table.matrix.to_numpy(dtype=np.float32)[table.kept]))


def _cross(table: CleanedTable, scaler: StandardScaler, imputer: SimpleImputer) -> tuple[int, np.ndarray, np.ndarray]:
    """Rows, column sums and cross-products of the scaled, filled kept rows: the covariance's parts."""
    x = _filled(table, scaler, imputer).astype(np.float64)
    return len(x), x.sum(axis=0), x.T @ x


def _scores(table: CleanedTable, reducer: Reducer) -> np.ndarray:
    if not table.kept.any():
        return np.empty((0, reducer.n_keep), dtype=np.float32)
    return reducer.transform(table.matrix.to_numpy(), table.kept).astype(np.float32, copy=False)


def _nearest(scores: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre per row and the squared distance to it."""
    c = centres.astype(np.float64)
    labels = np.empty(len(scores), dtype=np.int32)
    dist = np.empty(len(scores), dtype=np.float64)
    for s in range(0, len(scores), 65_536):
        x = scores[s:s + 65_536].astype(np.float64)
        d = (x * x).sum(axis=1)[:, None] - 2.0 * x @ c.T + (c * c).sum(axis=1)[None, :]
        labels[s:s + 65_536] = d.argmin(axis=1)
        dist[s:s + 65_536] = np.maximum(d[np.arange(len(x)), labels[s:s + 65_536]], 0.0)
    return labels, dist


def _centre_sums(scores: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One Lloyd step's map: per-centre sums and counts of the rows nearest it, and their inertia."""
    k, d = centres.shape
    labels, dist = _nearest(scores, centres)
    sums = np.zeros((k, d))
    np.add.at(sums, labels, scores.astype(np.float64))
    return sums, np.bincount(labels, minlength=k), float(dist.sum())


def _labels(table: CleanedTable, scores: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Segment per row: -1 for set-aside rows, else the nearest centre."""
    labels = np.full(len(table.set_aside), SET_ASIDE, dtype=np.int16)
    labels[table.kept] = _nearest(scores, centres)[0]
    return labels


def _label_counts(labels: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(labels.astype(np.int64) + 1, minlength=k + 1)  # position 0: set aside


def _trait_sums(table: CleanedTable, labels: np.ndarray, k: int) -> np.ndarray:
    return trait_sums(table.matrix.to_numpy(), labels, k)


def _pick(scores: np.ndarray, positions: np.ndarray) -> np.ndarray:
    return scores[positions]


# --- the flow ----------------------------------------------------------------------------------------

@dataclass
class Table:
    """One input table on the cluster: its layout, cleaned partitions and what was counted of them."""

    name: str
    file: Layout
    cleaned: list  # futures of CleanedTable, one per span
    rows: int
    set_aside: int
    quality: pd.DataFrame
    group_sums: dict[str, np.ndarray]
    facts: dict

    @property
    def group_means(self) -> pd.DataFrame:  # what ``set_aside_profile`` reads
        return group_means(self.group_sums, self.set_aside)


def _read(client, name: str, path: Path, features: list[Feature], stages: Stages) -> tuple[Layout, list, int]:
    """Load a file's spans on the workers; returns its layout, the raw partitions and the duplicate count."""
    with stages.stage(f"load {name}"):
        file = layout(client, path, features)
        raw = client.map(_load, [file] * len(file.spans), file.spans, features=features, pure=False)
        groups = min(len(raw), HASH_GROUPS)
        hashed = client.map(_hash_groups, raw, groups=groups)
        dups = [client.submit(_duplicates, *[client.submit(operator.getitem, h, g) for h in hashed])
                for g in range(groups)]
        duplicates = int(sum(client.gather(dups)))
        del hashed, dups
    stages.say(f"{path.name}: {len(file.spans)} partitions")
    return file, raw, duplicates


def _finish_table(client, name: str, file: Layout, raw: list, duplicates: int, plan: CleaningPlan,
                  stages: Stages) -> Table:
    cleaned = client.map(_clean, raw, plan=plan)
    facts = client.gather(client.map(_cleaned_facts, cleaned))
    rows = sum(f["rows"] for f in facts)
    quality = CleaningCounts(rows, reduce(operator.add, [f["quality"] for f in facts]), {}, (0, 0)).quality_table()
    sums = {key: sum(f["group_sums"][key] for f in facts) for key in facts[0]["group_sums"]}
    loaded = LoadedTable(file.path, pd.DataFrame(), tuple(file.extra), file.encoding)
    checks = {"path": str(file.path), "rows": rows, "duplicate_rows": duplicates,
              "extra_columns": list(file.extra), "encoding": file.encoding, "notes": loaded.notes()}
    for note in loaded.notes():
        stages.say(f"{file.path.name}: {note}")
    return Table(name, file, cleaned, rows, sum(f["set_aside"] for f in facts), quality, sums, checks)


def prepare(client, inputs: Inputs, settings: Settings, stages: Stages) -> tuple[list[Feature], CleaningPlan, Table, Table]:
    """Load, check and clean both files on the cluster; the plan is decided from the population's counts."""
    analysis = settings.analysis
    features = load_features(inputs.feature_summary)
    pop_file, pop_raw, pop_dups = _read(client, "population", inputs.population, features, stages)
    cust_file, cust_raw, cust_dups = _read(client, "customers", inputs.customers, features, stages)
    with stages.stage("clean"):
        counts = client.gather(client.map(_count, pop_raw, features=features))
        plan = plan_cleaning(sum(counts[1:], counts[0]), features, analysis)
        pop = _finish_table(client, "population", pop_file, pop_raw, pop_dups, plan, stages)
        del pop_raw
        note_set_aside(plan, pop.set_aside / max(pop.rows, 1))
        cust = _finish_table(client, "customers", cust_file, cust_raw, cust_dups, plan, stages)
        del cust_raw
    if not plan.columns:
        raise InputError("no column is usable: every feature is missing in too many rows", path=inputs.population,
                         expected=f"features missing in at most {analysis.column_missing_threshold:.0%} of rows",
                         hint="Check that the export holds the values, not just the header and separators")
    check_rows(pop.rows - pop.set_aside, analysis, inputs.population)
    return features, plan, pop, cust


def fit_reducer(client, pop: Table, columns: tuple[str, ...], variance_target: float, seed: int) -> Reducer:
    """Scaler and PCA from per-partition sums, as ``prepare.reduce.fit_reducer`` fits them on all kept rows."""
    count, total, squares = sum(client.gather(client.map(_moments, pop.cleaned)))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
        var = np.where(count > 0, np.maximum(squares / count - mean ** 2, 0.0), np.nan)
    scaler = StandardScaler(copy=False)
    scaler.mean_, scaler.var_, scaler.n_samples_seen_ = mean, var, count.astype(np.int64)
    # StandardScaler's rule: a (numerically) constant column keeps scale 1
    eps = np.finfo(np.float64).eps
    constant = np.nan_to_num(var) <= count * eps * np.nan_to_num(var) + (count * np.nan_to_num(mean) * eps) ** 2
    scaler.scale_ = np.where(constant, 1.0, np.sqrt(np.nan_to_num(var)))
    scaler.n_features_in_ = len(columns)
    imputer = SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True, copy=False)
    imputer.fit(np.zeros((1, len(columns)), dtype=np.float32))
    parts = client.gather(client.map(_cross, pop.cleaned, scaler=scaler, imputer=imputer))
    n = sum(p[0] for p in parts)
    centre = sum(p[1] for p in parts) / n
    cov = (sum(p[2] for p in parts) - n * np.outer(centre, centre)) / (n - 1)
    return assemble_reducer(scaler, imputer, _pca(cov, centre, n, seed), variance_target, columns)


def _pca(cov: np.ndarray, centre: np.ndarray, n: int, seed: int) -> PCA:
    """A fitted PCA (all components) from the covariance, as scikit-learn's ``covariance_eigh`` solver does."""
    values, vectors = np.linalg.eigh(cov)
    values, vt = np.maximum(values[::-1], 0.0), vectors[:, ::-1].T
    _, vt = svd_flip(None, vt, u_based_decision=False)
    pca = PCA(svd_solver="covariance_eigh", random_state=seed, copy=False)
    p = len(centre)
    pca.n_features_in_, pca.n_samples_, pca.n_components_ = p, n, p
    # float32 like a PCA fitted on the float32 matrix, so scores (and the model's predict) are float32
    pca.mean_, pca.components_ = centre.astype(np.float32), vt.astype(np.float32)
    pca.explained_variance_ = values.astype(np.float32)
    pca.explained_variance_ratio_ = (values / values.sum()).astype(np.float32)
    pca.singular_values_ = np.sqrt(values * (n - 1)).astype(np.float32)
    pca.noise_variance_ = 0.0
    return pca


def search_sample(client, scores: list, sizes: list[int], seed: int) -> np.ndarray:
    """All kept rows' scores when they are at most ``SEARCH_SAMPLE``, else a seeded random sample of that many."""
    n = sum(sizes)
    if n <= SEARCH_SAMPLE:
        return np.concatenate(client.gather(scores))
    chosen = np.sort(np.random.default_rng(seed).choice(n, size=SEARCH_SAMPLE, replace=False))
    bounds = np.cumsum([0, *sizes])
    picks = [client.submit(_pick, s, chosen[(chosen >= a) & (chosen < b)] - a)
             for s, a, b in zip(scores, bounds[:-1], bounds[1:])]
    return np.concatenate(client.gather(picks))


def lloyd(client, scores: list, start: np.ndarray, tolerance: float, say) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Lloyd iterations over all partitions from ``start``: centres, sizes, inertia and iterations."""
    centres = start.astype(np.float64)
    for iteration in range(1, MAX_ITER + 1):
        parts = client.gather(client.map(_centre_sums, scores, centres=centres, pure=False))
        sums, counts = sum(p[0] for p in parts), sum(p[1] for p in parts)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
        shift = float(((moved - centres) ** 2).sum())
        centres = moved
        if shift <= tolerance:
            break
    parts = client.gather(client.map(_centre_sums, scores, centres=centres, pure=False))
    sizes, inertia = sum(p[1] for p in parts), sum(p[2] for p in parts)
    say(f"final k-means: {iteration} Lloyd iterations over all rows")
    return centres, sizes, inertia, iteration


def _stream_labels(labels: list, path: Path) -> None:
    """Write per-row labels partition by partition, in order, into one Parquet file."""
    writer = None
    try:
        for future in labels:
            table = pa.Table.from_pandas(pd.DataFrame({"segment": future.result()}), preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def analyse(inputs: Inputs, settings: Settings, stages: Stages, work: Path, key: str, fingerprints: dict) -> None:
    """The analysis of ``pipeline._analyse`` on a Dask cluster, writing the same results folder."""
    with connect(settings, stages) as client:
        _analyse(client, inputs, settings, stages, work, key, fingerprints)


def _analyse(client, inputs: Inputs, settings: Settings, stages: Stages, work: Path, key: str,
             fingerprints: dict) -> None:
    analysis = settings.analysis
    features, plan, pop, cust = prepare(client, inputs, settings, stages)
    columns = {c.name: c for c in plan.columns}
    with stages.stage("scale, fill missing, PCA"):
        reducer = fit_reducer(client, pop, tuple(columns), analysis.variance_target, analysis.seed)
        scores = client.map(_scores, pop.cleaned, reducer=reducer)
        sizes = client.gather(client.map(len, scores))
    with stages.stage("choose k"):
        sample = search_sample(client, scores, sizes, analysis.seed)
        k_range = range(analysis.k_min, analysis.k_max + 1)
        selection = select_k(sample, k_range, seed=analysis.seed, forced_k=analysis.k, progress=stages.say)
    with stages.stage("final clustering"):
        kmeans = fit_final(sample, selection.k, seed=analysis.seed)
        tolerance = TOLERANCE * float(np.mean(reducer.pca.explained_variance_))
        centres, sizes_k, inertia, iterations = lloyd(client, scores, kmeans.cluster_centers_, tolerance, stages.say)
        order = size_order(centres, sizes_k)
        centres = np.ascontiguousarray(centres[order]).astype(kmeans.cluster_centers_.dtype)
        kmeans.cluster_centers_, kmeans.inertia_, kmeans.n_iter_ = centres, inertia, iterations
        kmeans.labels_ = kmeans.predict(sample)  # of the search sample: the rows it saw
        pop_labels = client.map(_labels, pop.cleaned, scores, centres=centres)
        del scores
        cust_scores = client.map(_scores, cust.cleaned, reducer=reducer)
        cust_labels = client.map(_labels, cust.cleaned, cust_scores, centres=centres)
        del cust_scores
    k = selection.k
    with stages.stage("compare customers"):
        segments = [SET_ASIDE, *range(k)]
        pop_count = sum(client.gather(client.map(_label_counts, pop_labels, k=k)))
        cust_count = sum(client.gather(client.map(_label_counts, cust_labels, k=k)))
        comparison = compare_counts(pop_count, cust_count, segments)
        gains = gains_table(comparison)
        mailing = gains_table(comparison.drop(index=SET_ASIDE))
        head = headline(mailing)
    with stages.stage("profiles"):
        sums = sum(client.gather(client.map(_trait_sums, pop.cleaned, pop_labels, k=k)))
        traits = traits_from_sums(sums, list(columns), columns)
        names = segment_names(traits, list(range(k)))
        names[SET_ASIDE] = "Set aside: too much missing data"
        model = Model(plan, reducer, kmeans, names, comparison["index"].astype(float).to_dict(), key)
        segments_json = _segments(comparison, traits, names)
        centroids = reducer.back_to_features(kmeans.cluster_centers_)
        centroids.insert(0, "segment", range(k))
    with stages.stage("write results"):
        tables = {
            "quality_population": pop.quality.reset_index(),
            "quality_customers": cust.quality.reset_index(),
            "cleaning_log": pd.DataFrame(plan.log),
            "scree": scree(reducer),
            "loadings": loadings(reducer, 10).reset_index(names="column"),
            "k_curves": selection.curves.reset_index(),
            "comparison": comparison.reset_index(),
            "gains": gains.reset_index(),
            "gains_mailing": mailing.reset_index(),
            "traits": traits,
            "centroids": centroids,
            "set_aside_profile": set_aside_profile(pop, cust, {f.name: f for f in features}),
        }
        (work / "tables").mkdir()
        for name, table in tables.items():
            table.to_parquet(work / "tables" / f"{name}.parquet", index=False)
        _stream_labels(pop_labels, work / "tables" / "labels_population.parquet")
        _stream_labels(cust_labels, work / "tables" / "labels_customers.parquet")
        joblib.dump(model, work / MODEL_FILE)
        summary = {
            "cache_key": key,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(),
            "engine": {"name": "dask", "scheduler": settings.scheduler, "workers": len(client.scheduler_info()["workers"]),
                       "partitions": {"population": len(pop.cleaned), "customers": len(cust.cleaned)},
                       "search_sample": len(sample), "lloyd_iterations": iterations},
            "data": {"source": "demo" if inputs.demo else "user", "files": fingerprints,
                     "rows": {"population": pop.rows, "customers": cust.rows},
                     "checks": {"population": pop.facts, "customers": cust.facts}, "note": inputs.note},
            "settings": dataclasses.asdict(analysis),
            "cleaning": _cleaning_summary(plan, pop, cust),
            "pca": {"n_components": reducer.n_keep, "variance_target": analysis.variance_target,
                    "variance_explained": float(reducer.pca.explained_variance_ratio_[: reducer.n_keep].sum()),
                    "n_features": len(plan.columns), "components": interpret(reducer, columns)},
            "k_selection": selection.to_dict(),
            "segments": segments_json,
            "comparison": {"alpha": ALPHA, "min_effect": MIN_EFFECT, "adjustment": "Holm",
                           "interval": "Katz log-ratio"},
            "targeting": {"segments": head.segments, "population_share": head.population_share,
                          "customer_share": head.customer_share, "headline": head.text},
            "timings": dict(stages.seconds),
        }
        write_json(work / RESULTS_FILE, summary)


def _cleaning_summary(plan: CleaningPlan, pop: Table, cust: Table) -> dict:
    """``pipeline._cleaning_summary`` from counts."""
    return {
        "dropped": plan.dropped,
        "n_columns": len(plan.columns),
        "row_missing_threshold": plan.row_missing_threshold,
        "set_aside": {"population_count": pop.set_aside, "population_share": pop.set_aside / pop.rows,
                      "customer_count": cust.set_aside, "customer_share": cust.set_aside / cust.rows},
        "out_of_range": {"population": int(pop.quality["out_of_range"].sum()),
                         "customers": int(cust.quality["out_of_range"].sum())},
        "log": plan.log,
    }


# --- scoring a large file -----------------------------------------------------------------------------

def _assign_span(file: Layout, span: Span, number: int, model: Model, folder: Path) -> int:
    raw, texts = load_span(file.path, file.header, list(model.plan.features), file.encoding, span, file.extra)
    labels = pd.Series(model.assign(apply_cleaning(model.plan, raw)))
    out = texts.assign(segment=labels, segment_name=labels.map(model.names),
                       segment_index=labels.map(model.index).round(1))
    out.to_parquet(folder / PART.format(number), index=False)
    return len(out)


def assign_parts(results: Path, source: Path, target: Path, settings: Settings, stages: Stages) -> int:
    """Score ``source`` on the cluster into a folder of Parquet parts, in input order; returns the rows written.

    Part ``i`` holds span ``i`` of the input, rows in file order, so reading the folder's parts
    in name order (as ``pandas.read_parquet(folder)`` does) gives the input's order. The folder
    is written beside ``target`` and swapped in only when every part is there.
    """
    from analysis.shell.assign import load_model
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(p.suffix != ".parquet" for p in target.iterdir())):
        raise InputError("the output exists and is not a folder of Parquet parts", path=target,
                         hint="With --engine dask, --out names a folder; choose a new one")
    model = load_model(results)
    with connect(settings, stages) as client:
        file = layout(client, Path(source), list(model.plan.features))
        shared = client.scatter(model, broadcast=True)
        with atomic_folder(target) as work:
            counts = client.gather(client.map(_assign_span, [file] * len(file.spans), file.spans,
                                              range(len(file.spans)), model=shared, folder=work, pure=False))
    return int(sum(counts))
