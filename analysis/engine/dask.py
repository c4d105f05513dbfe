"""The analysis on a Dask cluster: every row-level stage runs per partition, the decisions on the client.

A partition is a span of whole lines of an input file (``SPAN_BYTES`` each), read and checked by
``inputs.loading.load_span`` exactly as the local engine reads the whole file, so an error names
the same file, column and physical line. Rows stay on the workers; the client only sees sums,
counts and small samples:

- *cleaning*: each partition counts missing codes, one-hot levels and the youth-movement
  agreement (``cleaning.count_cleaning``); the counts are added and the plan decided from them
  (``plan_cleaning``), then applied per partition (``apply_cleaning``);
- *scaling and PCA*: each partition's counts, means and squared deviations of the known values,
  pooled, give the scaler; sums and the cross-product matrix of the scaled, filled rows give
  the covariance, whose eigen-decomposition is done on the client (``prepare.reduce``: the local
  engine builds both from its row blocks with the same code);
- *choosing k, types and groups*: ``select_k`` and ``fit_levels`` on a seeded sample of at most
  ``SEARCH_SAMPLE`` kept rows; then Lloyd iterations over all rows from the sample's type centres,
  each a map of per-partition centre sums and a reduce on the client;
- *everything after*: one pass per table gives people per type and group, trait sums, bin
  counts for the ``changes`` page, the cross-table with a previous run's types (refresh
  matching), and a seeded sample of rows for the lookalike model; ``assemble.write_results``
  turns them into the same results folder as the local engine's.

Between passes nothing large stays in memory: partitions live in a scratch folder, and futures
hold small handles (``Stored``) to them. The first pass reads and checks each span, writes its
rows there (a pickle, read back ~30x faster than the CSV is parsed) and returns only its row
hashes and cleaning counts; the second cleans each span's rows with the plan and writes the
cleaned matrix as ``.npy`` (plus the scaler's moments, for the population); the scores are
written there the same way. Every later pass reads the partitions it needs, one at a time per
worker, so a worker holds about one partition (~0.7 GB at ``SPAN_BYTES``) whatever the file
size, and Dask never has to spill (pickling gigabytes of partitions into its own spill files
was slow and let memory jump past the workers' limits at 30 million rows). The scratch folder
is made beside the results folder and removed when the run ends (workers of a remote cluster
must see that path, as they see the input files); it needs about 0.8 KB per row (raw rows
while cleaning, then the cleaned float32 matrix and scores). Duplicate rows are counted by
hashing each row (as the local engine does) and grouping the hashes by value across partitions.
"""
from __future__ import annotations

import codecs
import operator
import tempfile
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.preprocessing import StandardScaler

from analysis import refresh
from analysis.assemble import RowWork, TableFacts, check_columns, check_rows, distinctness, write_results
from analysis.compare.changes import bin_counts, bin_counts_on, bin_edges, bins_table
from analysis.compare.shares import segment_counts
from analysis.constants import SET_ASIDE
from analysis.engine.cluster import connect
from analysis.errors import InputError
from analysis.inputs.loading import Span, load_span, read_head, read_header, read_notes
from analysis.inputs.schema import Feature, load_features
from analysis.prepare.cleaning import (CleanedTable, CleaningCounts, CleaningPlan, apply_cleaning,
                                       count_cleaning, decode, group_means, note_set_aside, plan_cleaning)
from analysis.prepare.reduce import (Cross, Moments, Reducer, assemble_reducer, cross_of, moments_of, pca_from_cross,
                                     scaler_from_moments, zero_fill)
from analysis.profile.traits import trait_sums
from analysis.segment.kselect import select_k
from analysis.segment.levels import Levels, fit_levels, group_count, type_count
from analysis.segment.matching import cross_table
from analysis.segment.model import Model
from analysis.settings import Settings
from analysis.shell.progress import Stages
from analysis.shell.sources import Inputs
from analysis.shell.store import atomic_folder
from analysis.target.lookalike import Lookalike, fit_lookalike

SPAN_BYTES = 64 << 20  # bytes of CSV per partition: ~250k rows, ~120 MB once cleaned
SEARCH_SAMPLE = 200_000  # kept rows gathered to the client for choosing k and fitting the types
BIN_SAMPLE = 200_000  # rows whose deciles set the bins of the ``changes`` page
LOOKALIKE_ROWS = 200_000  # rows per table gathered for the lookalike model (all of a smaller table)
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


# --- partitions in the scratch folder ---------------------------------------------------------------

@dataclass(frozen=True)
class Stored:
    """A cleaned partition in the scratch folder: the matrix (column-major float32 ``.npy``), the
    rows' set-aside flags and missing shares (``.npz``) and the matrix's column names.

    Futures hold these small handles instead of the partitions, so a task reads its partition
    from disk, works on it and lets it go; ``scores`` is where the partition's scores are written.
    """

    matrix: Path
    rows: Path
    columns: tuple[str, ...]

    @property
    def scores(self) -> Path:
        return self.matrix.with_suffix(".scores.npy")

    def set_aside(self) -> np.ndarray:
        with np.load(self.rows) as rows:
            return rows["set_aside"]

    def load(self) -> CleanedTable:
        """The partition as a ``CleanedTable`` (its quality and group means stay with the client's facts)."""
        with np.load(self.rows) as rows:
            set_aside, missing = rows["set_aside"], rows["missing"]
        matrix = pd.DataFrame(np.load(self.matrix), columns=list(self.columns), copy=False)
        return CleanedTable(matrix, set_aside, missing, pd.DataFrame(), pd.DataFrame())


def _store(table: CleanedTable, folder: Path, name: str) -> Stored:
    stored = Stored(folder / f"{name}.npy", folder / f"{name}.rows.npz", tuple(table.matrix.columns))
    np.save(stored.matrix, table.matrix.to_numpy())  # the F-ordered block as it is, no copy
    np.savez(stored.rows, set_aside=table.set_aside, missing=table.row_missing_share)
    return stored


# --- per-partition work -----------------------------------------------------------------------------

def _survey(file: Layout, span: Span, raw: Path, features: list[Feature], groups: int, count: bool) -> dict:
    """The first pass over a span: read and check it, write its rows to ``raw`` (a pickle in the
    scratch folder: reading it back is ~30 times faster than parsing the CSV again) and return its
    row hashes in ``groups`` groups and (when a plan is to be fitted) its cleaning counts."""
    rows = _load(file, span, features)
    rows.to_pickle(raw)
    hashes = _hash_groups(rows, groups)
    if not count:
        return {"hashes": hashes}
    decoded, quality = decode(rows, features)
    del rows
    return {"hashes": hashes, "counts": count_cleaning(decoded, quality, features)}


def _hash_group(survey: dict, group: int) -> np.ndarray:
    return survey["hashes"][group]


def _hash_groups(raw: pd.DataFrame, groups: int) -> list[np.ndarray]:
    """Row hashes (as ``LoadedTable.duplicate_rows``), split by value into ``groups`` groups."""
    hashes = pd.util.hash_pandas_object(raw, index=False).to_numpy()
    which = hashes % np.uint64(groups)
    return [hashes[which == g] for g in range(groups)]


def _duplicates(*parts: np.ndarray) -> int:
    """Rows of one hash group equal to an earlier row: all rows minus distinct hashes."""
    values = np.concatenate(parts)
    return int(len(values) - len(np.unique(values)))


def _clean(raw: Path, plan: CleaningPlan, moments: bool) -> dict:
    """The second pass over a span: clean the rows ``_survey`` wrote, store them in their place
    (``Stored``) and return what the client needs: the handle, sizes, quality counts, group sums
    and (for the population) the scaler's moments."""
    table = apply_cleaning(plan, pd.read_pickle(raw))
    raw.unlink()
    out = {"stored": _store(table, raw.parent, raw.name.removesuffix(".raw.pkl")), "rows": len(table.set_aside),
           "set_aside": int(table.set_aside.sum()),
           "quality": table.quality[["blank", "coded_missing", "out_of_range"]],
           "group_sums": table.group_sums}
    if moments:
        out["moments"] = _moments(table)
    return out


def _moments(table: CleanedTable) -> Moments:
    """The scaler's moments of the known values of every column over kept rows."""
    return moments_of(table.matrix, table.kept)


def _cross(part: Stored, scaler: StandardScaler) -> Cross:
    """Rows, column sums and cross-products of the scaled, filled kept rows: the covariance's parts."""
    table = part.load()
    return cross_of(table.matrix, table.kept, scaler)


def _scores(part: Stored, reducer: Reducer) -> Path:
    """The kept rows' float32 scores, written beside the partition (``Stored.scores``)."""
    table = part.load()
    if not table.kept.any():
        scores = np.empty((0, reducer.n_keep), dtype=np.float32)
    else:
        scores = reducer.transform(table.matrix.to_numpy(), table.kept).astype(np.float32, copy=False)
    np.save(part.scores, scores)
    return part.scores


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


def _centre_sums(path: Path, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One Lloyd step's map: per-centre sums and counts of the rows nearest it, and their inertia."""
    scores = np.load(path)
    k, d = centres.shape
    labels, dist = _nearest(scores, centres)
    sums = np.zeros((k, d))
    np.add.at(sums, labels, scores.astype(np.float64))
    return sums, np.bincount(labels, minlength=k), float(dist.sum())


def _labels(part: Stored, scores: Path, centres: np.ndarray) -> np.ndarray:
    """Type per row: -1 for set-aside rows, else the nearest centre (``scores``: the partition's)."""
    set_aside = part.set_aside()
    labels = np.full(len(set_aside), SET_ASIDE, dtype=np.int16)
    labels[~set_aside] = _nearest(np.load(scores), centres)[0]
    return labels


def _before(part: Stored, model: Model) -> np.ndarray:
    """The previous model's types on this partition (-1: set aside by either run), as
    ``refresh.previous_types`` gives them when the cleaning plan is unchanged."""
    table = part.load()
    before = model.assign(table).astype(np.int16)
    before[table.set_aside] = SET_ASIDE
    return before


def _type_sums(part: Stored, scores: Path, before: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per previous type: the sum of this run's scores of its kept members, and their count."""
    scores = np.load(scores)
    labels = before[~part.set_aside()]
    sums = np.zeros((n, scores.shape[1]))
    inside = labels >= 0
    np.add.at(sums, labels[inside], scores[inside].astype(np.float64))
    return sums, np.bincount(labels[inside], minlength=n)


def _tally(part: Stored, labels: np.ndarray, type_group: np.ndarray, edges: dict | None,
           previous_bins: pd.DataFrame | None, before: np.ndarray | None, previous_types: int) -> dict:
    """Everything the results need of one partition once its types are known; all of it adds up."""
    groups = _groups_of(labels, type_group)
    n_types, n_groups = len(type_group), int(type_group.max()) + 1
    out = {"types": segment_counts(labels, list(range(n_types))),
           "groups": segment_counts(groups, list(range(n_groups)))}
    if edges is not None:  # the population: its rows are read for the trait sums and bins
        matrix = part.load().matrix
        values = matrix.to_numpy()
        out.update(type_sums=trait_sums(values, labels, n_types), group_sums=trait_sums(values, groups, n_groups),
                   bins=bin_counts_on(edges, matrix))
        if previous_bins is not None:
            out["previous_bins"] = bin_counts(previous_bins, matrix)
        if before is not None:
            out["cross"] = cross_table(before, labels, list(range(previous_types)), list(range(n_types))).to_numpy()
    return out


def _rows(part: Stored, positions: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """Some rows of a cleaned partition: its matrix, set-aside flags and missing shares (and labels)."""
    table = part.load()
    return {"matrix": table.matrix.iloc[positions], "set_aside": table.set_aside[positions],
            "missing": table.row_missing_share[positions],
            "labels": None if labels is None else labels[positions]}


def _groups_of(labels: np.ndarray, type_group: np.ndarray) -> np.ndarray:
    return np.append(type_group, SET_ASIDE).astype(np.int16)[np.where(labels >= 0, labels, len(type_group))]


def _pick(path: Path, positions: np.ndarray) -> np.ndarray:
    return np.load(path, mmap_mode="r")[positions]



# --- the flow ----------------------------------------------------------------------------------------

@dataclass
class Table:
    """One input table on the cluster: its layout, stored cleaned partitions and what was counted of them."""

    name: str
    file: Layout
    cleaned: list[Stored]  # one per span, in the scratch folder
    sizes: list[int]  # rows per partition
    kept_sizes: list[int]  # rows per partition that are not set aside
    quality: pd.DataFrame
    group_sums: dict[str, np.ndarray]
    checks: dict
    moments: Moments | None  # the population's: the scaler's moments of the kept rows

    @property
    def rows(self) -> int:
        return int(sum(self.sizes))

    @property
    def set_aside(self) -> int:
        return self.rows - int(sum(self.kept_sizes))

    def facts(self) -> TableFacts:
        return TableFacts(self.rows, self.set_aside, self.set_aside / max(self.rows, 1), self.quality,
                          group_means(self.group_sums, self.set_aside))


def _read(client, name: str, path: Path, features: list[Feature], stages: Stages, scratch: Path,
          count: bool) -> tuple[Layout, list[Path], int, CleaningCounts | None]:
    """The first pass over a file: its layout, its spans' rows in ``scratch``, its duplicate rows and
    (when ``count``) its added cleaning counts. Every span is read and checked here, so a damaged
    line fails this pass."""
    with stages.stage(f"load {name}"):
        file = layout(client, path, features)
        folder = scratch / name
        folder.mkdir()
        raws = [folder / f"part-{i:05d}.raw.pkl" for i in range(len(file.spans))]
        groups = min(len(file.spans), HASH_GROUPS)
        surveys = client.map(_survey, [file] * len(file.spans), file.spans, raws, features=features, groups=groups,
                             count=count, pure=False)
        dups = [client.submit(_duplicates, *[client.submit(_hash_group, s, g) for s in surveys])
                for g in range(groups)]
        duplicates = int(sum(client.gather(dups)))
        counts = None
        if count:
            parts = client.gather([client.submit(operator.getitem, s, "counts") for s in surveys])
            counts = sum(parts[1:], parts[0])
        del surveys, dups
    stages.say(f"{path.name}: {len(file.spans)} partitions")
    return file, raws, duplicates, counts


def _finish_table(client, name: str, file: Layout, raws: list[Path], duplicates: int, plan: CleaningPlan,
                  stages: Stages) -> Table:
    """The second pass over a file: each span's rows cleaned and stored in their place."""
    population = name == "population"
    facts = client.gather(client.map(_clean, raws, plan=plan, moments=population, pure=False))
    sizes = [f["rows"] for f in facts]
    quality = CleaningCounts(sum(sizes), reduce(operator.add, [f["quality"] for f in facts]), {}, (0, 0)).quality_table()
    sums = {key: sum(f["group_sums"][key] for f in facts) for key in facts[0]["group_sums"]}
    checks = {"path": str(file.path), "rows": sum(sizes), "duplicate_rows": duplicates,
              "extra_columns": list(file.extra), "encoding": file.encoding}
    for note in read_notes(checks):
        stages.say(f"{file.path.name}: {note}")
    return Table(name, file, [f["stored"] for f in facts], sizes, [f["rows"] - f["set_aside"] for f in facts],
                 quality, sums, checks, reduce(operator.add, [f["moments"] for f in facts]) if population else None)


def prepare(client, inputs: Inputs, settings: Settings, stages: Stages, scratch: Path,
            plan: CleaningPlan | None = None) -> tuple[list[Feature], CleaningPlan, Table, Table]:
    """Load, check and clean both files on the cluster into ``scratch``; the plan is decided from the
    population's counts (or is a kept model's)."""
    analysis = settings.analysis
    features = load_features(inputs.feature_summary)
    fitted = plan is None
    pop_file, pop_raws, pop_dups, counts = _read(client, "population", inputs.population, features, stages,
                                                 scratch, count=fitted)
    cust_file, cust_raws, cust_dups, _ = _read(client, "customers", inputs.customers, features, stages,
                                               scratch, count=False)
    with stages.stage("clean"):
        if fitted:
            plan = plan_cleaning(counts, features, analysis)
        pop = _finish_table(client, "population", pop_file, pop_raws, pop_dups, plan, stages)
        if fitted:
            note_set_aside(plan, pop.set_aside / max(pop.rows, 1))
        cust = _finish_table(client, "customers", cust_file, cust_raws, cust_dups, plan, stages)
    check_columns(plan, analysis, inputs.population)
    check_rows(pop.rows - pop.set_aside, analysis, inputs.population)
    return features, plan, pop, cust


def fit_reducer(client, pop: Table, columns: tuple[str, ...], variance_target: float, seed: int) -> Reducer:
    """Scaler and PCA from per-partition sums, as ``prepare.reduce.fit_reducer`` fits them from row blocks."""
    scaler = scaler_from_moments(pop.moments)
    cross = reduce(operator.add, client.gather(client.map(_cross, pop.cleaned, scaler=scaler)))
    return assemble_reducer(scaler, zero_fill(len(columns)), pca_from_cross(cross, seed), variance_target, columns)


def _positions(chosen: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Global row numbers (sorted) split into positions within each partition."""
    bounds = np.cumsum([0, *sizes])
    return [chosen[(chosen >= a) & (chosen < b)] - a for a, b in zip(bounds[:-1], bounds[1:])]


def _draw(n: int, size: int, seed: int) -> np.ndarray | None:
    """A seeded sorted sample of ``size`` of ``n`` row numbers; None: take every row."""
    if n <= size:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def search_sample(client, scores: list[Path], sizes: list[int], seed: int) -> np.ndarray:
    """All kept rows' scores when they are at most ``SEARCH_SAMPLE``, else a seeded random sample of that many."""
    chosen = _draw(sum(sizes), SEARCH_SAMPLE, seed)
    positions = [np.arange(n) for n in sizes] if chosen is None else _positions(chosen, sizes)
    return np.concatenate(client.gather(client.map(_pick, scores, positions, pure=False)))


def sample_rows(client, table: Table, size: int, seed: int, labels: list | None = None) -> tuple[CleanedTable, np.ndarray | None]:
    """A seeded sample of ``size`` rows of a table (every row when it has fewer), in file order,
    as a small ``CleanedTable`` on the client (with the rows' labels when given)."""
    chosen = _draw(table.rows, size, seed)
    positions = ([np.arange(n) for n in table.sizes] if chosen is None else _positions(chosen, table.sizes))
    label_parts = labels or [None] * len(table.cleaned)
    parts = client.gather([client.submit(_rows, c, p, lab) for c, p, lab in zip(table.cleaned, positions, label_parts)])
    matrix = pd.concat([p["matrix"] for p in parts], ignore_index=True)
    sample = CleanedTable(matrix, np.concatenate([p["set_aside"] for p in parts]),
                          np.concatenate([p["missing"] for p in parts]), table.quality, pd.DataFrame())
    return sample, (np.concatenate([p["labels"] for p in parts]) if labels else None)


def lloyd(client, scores: list[Path], start: np.ndarray, tolerance: float, say) -> tuple[np.ndarray, float, int]:
    """Lloyd iterations over all partitions from ``start``: centres, inertia and iterations."""
    centres = start.astype(np.float64)
    iteration = 0
    for iteration in range(1, MAX_ITER + 1):
        parts = client.gather(client.map(_centre_sums, scores, centres=centres, pure=False))
        sums, counts = sum(p[0] for p in parts), sum(p[1] for p in parts)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
        shift = float(((moved - centres) ** 2).sum())
        centres = moved
        if shift <= tolerance:
            break
    parts = client.gather(client.map(_centre_sums, scores, centres=centres, pure=False))
    say(f"final k-means: {iteration} Lloyd iterations over all rows")
    return centres, float(sum(p[2] for p in parts)), iteration


def _stream_labels(labels: list, type_group: np.ndarray, path: Path) -> None:
    """Write per-row types and groups partition by partition, in order, into one Parquet file."""
    writer = None
    try:
        for future in labels:
            types = future.result()
            table = pa.Table.from_pandas(pd.DataFrame({"segment": types, "group": _groups_of(types, type_group)}),
                                         preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def analyse(inputs: Inputs, settings: Settings, stages: Stages, work: Path, key: str, fingerprints: dict) -> None:
    """The analysis of ``pipeline._analyse`` on a Dask cluster, writing the same results folder.

    The cleaned partitions and scores go to a scratch folder beside ``work`` (the results folder
    being written), removed when the run ends, whether it succeeded or failed.
    """
    with connect(settings, stages) as client, \
            tempfile.TemporaryDirectory(prefix=f".{work.name.lstrip('.')}.scratch-", dir=work.parent) as scratch:
        write_results(work, row_work(client, inputs, settings, stages, Path(scratch)), inputs, settings, stages,
                      key, fingerprints)


def _summed(client, futures: list, key: str):
    return sum(client.gather([client.submit(operator.getitem, f, key) for f in futures]))


def row_work(client, inputs: Inputs, settings: Settings, stages: Stages, scratch: Path) -> RowWork:
    """``pipeline._analyse``'s row-level work, per partition; what ``write_results`` needs.

    ``scratch`` holds the stored partitions; the returned callables read it, so it must outlive them.
    """
    analysis = settings.analysis
    previous = refresh.load_previous(settings.results)
    kept = refresh.kept_model(settings.keep_model, previous)  # None: fit a new model
    features, plan, pop, cust = prepare(client, inputs, settings, stages, scratch, plan=kept.plan if kept else None)
    columns = tuple(c.name for c in plan.columns)
    with stages.stage("scale, fill missing, PCA"):
        reducer = kept.reducer if kept else fit_reducer(client, pop, columns, analysis.variance_target, analysis.seed)
        scores = client.gather(client.map(_scores, pop.cleaned, reducer=reducer))  # the files' paths
    forced_groups = analysis.groups if analysis.groups is not None else analysis.k
    with stages.stage("choose k"):
        sample = search_sample(client, scores, pop.kept_sizes, analysis.seed)
        k_range = range(analysis.k_min, analysis.k_max + 1)
        selection = (refresh.kept_selection(previous) if kept else
                     select_k(sample, k_range, seed=analysis.seed, forced_k=forced_groups, progress=stages.say))
    previous_model = kept or (previous.model() if previous else None)
    before = None
    if (not kept and previous_model is not None and getattr(previous_model, "levels", None) is not None
            and refresh.same_schema(previous_model.plan, plan)):
        before = client.map(_before, pop.cleaned, model=previous_model)
    engine = {"name": "dask", "scheduler": settings.scheduler, "workers": len(client.scheduler_info()["workers"]),
              "partitions": {"population": len(pop.cleaned), "customers": len(cust.cleaned)},
              "search_sample": len(sample), "lloyd_iterations": 0}
    with stages.stage("types and groups"):
        if kept:  # the previous model scores the new rows: no refit
            levels = kept.levels
        else:
            levels = _fit_levels(client, scores, pop, sample, before, previous_model, selection.k, forced_groups,
                                 analysis, reducer, engine, stages)
        centres = levels.kmeans.cluster_centers_
        pop_labels = client.map(_labels, pop.cleaned, scores, centres=centres, pure=False)
        sample_types = _nearest(sample, centres)[0]
        spread = distinctness(sample, sample_types, levels, analysis.seed)
        del scores
        cust_scores = client.map(_scores, cust.cleaned, reducer=reducer)
        cust_labels = client.map(_labels, cust.cleaned, cust_scores, centres=centres, pure=False)
        del cust_scores
    with stages.stage("count per type and group"):
        bin_rows, _ = sample_rows(client, pop, BIN_SAMPLE, analysis.seed)
        edges = bin_edges(bin_rows.matrix)
        del bin_rows
        previous_bins = previous.table("feature_bins") if previous is not None else None
        n_before = previous_model.levels.n_types if before is not None else 0
        pop_tally = [client.submit(_tally, c, lab, levels.type_group, edges, previous_bins, b, n_before)
                     for c, lab, b in zip(pop.cleaned, pop_labels, before or [None] * len(pop.cleaned))]
        cust_tally = client.map(_tally, cust.cleaned, cust_labels, type_group=levels.type_group, edges=None,
                                previous_bins=None, before=None, previous_types=0)
        type_counts = (_summed(client, pop_tally, "types"), _summed(client, cust_tally, "types"))
        group_counts = (_summed(client, pop_tally, "groups"), _summed(client, cust_tally, "groups"))
        type_sums, group_sums = _summed(client, pop_tally, "type_sums"), _summed(client, pop_tally, "group_sums")
        bins = client.gather([client.submit(operator.getitem, t, "bins") for t in pop_tally])
        bins_now = bins_table(edges, {name: sum(b[name] for b in bins) for name in edges})
        feature_counts = None
        if previous_bins is not None:
            parts = client.gather([client.submit(operator.getitem, t, "previous_bins") for t in pop_tally])
            feature_counts = {name: sum(p[name] for p in parts) for name in parts[0]}
    with stages.stage("match segments to the previous run"):
        matched = (refresh.match_crossed(previous_model, levels, _summed(client, pop_tally, "cross"))
                   if before is not None else None)
        del pop_tally, cust_tally, before

    def lookalike(mailing: pd.DataFrame, depth: float) -> Lookalike:
        # ``fit_lookalike`` draws its seeded sample (and the population's unseen reference rows)
        # from the rows it is given: every row of a table of at most LOOKALIKE_ROWS, as the local
        # engine (the same draw), else a seeded sample of that many gathered partition by partition.
        size = analysis.lookalike_sample
        gather = max(LOOKALIKE_ROWS, 2 * size)
        pop_rows, pop_types = sample_rows(client, pop, gather, analysis.seed, pop_labels)
        cust_rows, _ = sample_rows(client, cust, gather, analysis.seed)
        return fit_lookalike(plan, reducer, pop_rows, cust_rows, pop_types, mailing, depth, size,
                             analysis.lookalike_indicators, analysis.seed)

    def write_labels(folder: Path) -> None:
        _stream_labels(pop_labels, levels.type_group, folder / "labels_population.parquet")
        _stream_labels(cust_labels, levels.type_group, folder / "labels_customers.parquet")

    return RowWork(
        features, plan, reducer, selection, levels, pop.facts(), cust.facts(),
        {"population": pop.checks, "customers": cust.checks}, type_counts, group_counts, type_sums, group_sums,
        spread, bins_now, lookalike, write_labels, previous=previous, kept=kept, previous_model=previous_model,
        matched=matched, feature_counts=feature_counts, engine=engine)


def _fit_levels(client, scores: list, pop: Table, sample: np.ndarray, before: list | None,
                previous_model: Model | None, k: int, forced_groups: int | None, analysis, reducer: Reducer,
                engine: dict, stages: Stages) -> Levels:
    """Types and groups fitted on the search sample (from the previous types' centres after a
    refresh), then Lloyd iterations over all rows; type numbers, codes and groups stay the sample's."""
    start = None
    if before is not None and analysis.types is None:
        n = previous_model.levels.n_types
        parts = client.gather([client.submit(_type_sums, c, s, b, n) for s, c, b in zip(scores, pop.cleaned, before)])
        sums, counts = sum(p[0] for p in parts), sum(p[1] for p in parts)
        present = [t for t in range(n) if counts[t] > 0]
        if len(present) >= 3:
            start = np.stack([sums[t] / counts[t] for t in present]).astype(np.float32)
    n_groups = group_count(k, forced_groups)
    levels, _ = fit_levels(sample, n_groups, type_count(n_groups, analysis.types), seed=analysis.seed,
                           forced_types=analysis.types is not None, forced_groups=forced_groups is not None,
                           start=start)
    kmeans = levels.kmeans
    tolerance = TOLERANCE * float(np.mean(reducer.pca.explained_variance_))
    centres, inertia, iterations = lloyd(client, scores, kmeans.cluster_centers_, tolerance, stages.say)
    kmeans.cluster_centers_ = np.ascontiguousarray(centres).astype(kmeans.cluster_centers_.dtype)
    kmeans.inertia_, kmeans.n_iter_ = inertia, iterations
    kmeans.labels_ = _nearest(sample, kmeans.cluster_centers_)[0]  # of the search sample: the rows it saw
    engine["lloyd_iterations"] = iterations
    return levels


# --- scoring a large file -----------------------------------------------------------------------------

def _assign_span(file: Layout, span: Span, number: int, model: Model, folder: Path) -> int:
    from analysis.shell.assign import scored
    raw, texts = load_span(file.path, file.header, list(model.plan.features), file.encoding, span, file.extra)
    out = scored(model, texts, apply_cleaning(model.plan, raw))
    out.to_parquet(folder / PART.format(number), index=False)
    return len(out)


def assign_parts(results: Path, source: Path, target: Path, settings: Settings, stages: Stages) -> int:
    """Score ``source`` on the cluster into a folder of Parquet parts, in input order; returns the rows written.

    Part ``i`` holds span ``i`` of the input, rows in file order, so reading the folder's parts
    in name order (as ``pandas.read_parquet(folder)`` does) gives the input's order. The columns
    are those of ``segments assign`` with the local engine. The folder is written beside
    ``target`` and swapped in only when every part is there.
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
