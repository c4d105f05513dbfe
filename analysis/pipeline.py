"""The whole analysis, from input files to a results folder, with caching.

Everything is *fitted on the population* and only *applied* to customers: the cleaning plan,
the scale/fill/PCA pipeline and the clustering. Rows set aside for missingness get segment
-1 and stay in every comparison.

A run is keyed by the inputs' content hashes, the analysis settings, whether the previous
model is kept, the package version and a hash of the package's code;
when ``results.json`` in the results folder carries the same key the run returns at once.
"""
from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import __version__, refresh
from analysis.assemble import RowWork, TableFacts, check_columns, check_rows, distinctness, write_results
from analysis.compare.changes import bin_counts, feature_bins
from analysis.compare.shares import segment_counts
from analysis.constants import RESULTS_FILE, SET_ASIDE
from analysis.errors import InputError
from analysis.inputs.loading import load_table, release_memory
from analysis.inputs.schema import Feature, load_features
from analysis.prepare.cleaning import WORKERS, CleanedTable, CleaningPlan, apply_decoded, decode, fit_decoded
from analysis.prepare.reduce import fit_reducer
from analysis.profile.traits import regroup_sums, trait_sums
from analysis.segment.kselect import select_k
from analysis.segment.levels import fit_levels, group_count, type_count
from analysis.segment.model import assign_segments
from analysis.settings import AnalysisSettings, Settings
from analysis.shell.history import carry_history
from analysis.shell.lock import claim_folder
from analysis.shell.progress import Stages
from analysis.shell.sources import Inputs, resolve_inputs
from analysis.shell.store import atomic_folder, cache_key, check_unchanged, code_fingerprint, file_fingerprints, file_stats
from analysis.target.lookalike import Lookalike, fit_lookalike


def run(settings: Settings, stages: Stages, force: bool = False) -> Path:
    """Run (or reuse) the analysis; returns the results folder."""
    inputs = resolve_inputs(settings, stages)
    stats = file_stats(inputs.paths())  # before hashing: a change while hashing is caught too
    with stages.stage("fingerprint inputs"):
        fingerprints = file_fingerprints(inputs.paths())
        # Content, not location: moving the same files elsewhere reuses the results.
        contents = {role: {k: v for k, v in fp.items() if k != "path"} for role, fp in fingerprints.items()}
        # keep_model too: results scored by a kept model must not answer a request for a refit.
        key = cache_key(contents, dataclasses.asdict(settings.analysis), __version__, code_fingerprint(),
                        {"keep_model": settings.keep_model})
    out = settings.results
    with claim_folder(out):  # one run at a time writes this folder (and anything inside it)
        if not force and cached_key(out) == key:
            stages.say(f"results in {out} are up to date (same data, settings and version); nothing to do")
            return out
        check_replaceable(out)
        analyse = _analyse
        if settings.engine == "dask":  # the same analysis, every row-level stage on a Dask cluster
            from analysis.engine.dask import analyse
        with atomic_folder(out) as work:
            analyse(inputs, settings, stages, work, key, fingerprints)
            with stages.stage("history"):
                carry_history(out, work, settings.history_keep)
            check_unchanged(inputs.paths(), stats, fingerprints)
    stages.say(f"results written to {out}")
    return out


def check_replaceable(out: Path) -> None:
    """Refuse to replace anything but an earlier results folder: the swap deletes what was there."""
    if out.exists() and not (out / RESULTS_FILE).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("the results folder already exists and does not hold results of this tool", path=out,
                         expected="a new folder, an empty one or one written by 'segments run'",
                         hint="Choose another folder with --out (or 'results' in segments.toml); "
                              "writing here would delete what it holds")


def cached_key(out: Path) -> str | None:
    """The cache key of existing results, or None when there are none or they are unreadable."""
    try:
        return json.loads((out / RESULTS_FILE).read_text(encoding="utf-8"))["cache_key"]
    except (OSError, ValueError, KeyError):
        return None


def check_enough(plan: CleaningPlan, pop: CleanedTable, analysis: AnalysisSettings, path: Path) -> None:
    """Stop with a clear message when cleaning leaves too little to cluster (a sample file, a bad export)."""
    check_columns(plan, analysis, path)
    check_rows(int((~pop.set_aside).sum()), analysis, path)


@dataclass
class Prepared:
    """Both tables loaded, checked and cleaned: what the analysis and ``segments validate`` share."""

    features: list[Feature]
    plan: CleaningPlan
    pop: CleanedTable
    cust: CleanedTable
    checks: dict[str, dict]  # per table: path, rows, duplicate rows, extra columns, encoding


def prepare(inputs: Inputs, analysis: AnalysisSettings, stages: Stages,
            plan: CleaningPlan | None = None) -> Prepared:
    """Load, check and clean both files; the raw tables are released before returning.

    With ``plan`` (a kept model's) the population is cleaned by it instead of fitting a new one.
    """
    features = load_features(inputs.feature_summary)
    with stages.stage("load population"):
        population = load_table(inputs.population, features)
    with stages.stage("load customers"):
        customers = load_table(inputs.customers, features)
    with stages.stage("count duplicate rows"):
        checks = {"population": population.facts(), "customers": customers.facts()}
    for table in (population, customers):
        for note in table.notes():
            stages.say(f"{table.path.name}: {note}")
    with stages.stage("clean"):  # each raw table is released as soon as it is decoded
        decoded, quality = decode(population.data, plan.features if plan else features, WORKERS)
        del population
        if plan is None:
            plan, pop = fit_decoded(decoded, quality, features, analysis, WORKERS)
        else:
            pop = apply_decoded(plan, decoded, quality, WORKERS)
        del decoded
        decoded, quality = decode(customers.data, plan.features, WORKERS)
        del customers
        cust = apply_decoded(plan, decoded, quality, WORKERS)
        del decoded
        release_memory()  # the raw and decoded tables' memory, before scaling and PCA
    check_enough(plan, pop, analysis, inputs.population)
    return Prepared(features, plan, pop, cust, checks)


def _analyse(inputs: Inputs, settings: Settings, stages: Stages, work: Path, key: str,
             fingerprints: dict) -> None:
    """The local engine: the row-level work on rows in memory, then the shared ``write_results``."""
    analysis = settings.analysis
    previous = refresh.load_previous(settings.results)
    kept = refresh.kept_model(settings.keep_model, previous)  # None: fit a new model
    prepared = prepare(inputs, analysis, stages, plan=kept.plan if kept else None)
    features, plan, pop, cust = prepared.features, prepared.plan, prepared.pop, prepared.cust
    with stages.stage("scale, fill missing, PCA"):
        if kept:
            reducer = kept.reducer
            scores = reducer.transform(pop.matrix.to_numpy(), pop.kept)
        else:
            reducer, scores = fit_reducer(pop.matrix, pop.kept, analysis.variance_target, analysis.seed)
    forced_groups = analysis.groups if analysis.groups is not None else analysis.k
    with stages.stage("choose k"):
        k_range = range(analysis.k_min, analysis.k_max + 1)
        selection = (refresh.kept_selection(previous) if kept else
                     select_k(scores, k_range, seed=analysis.seed, forced_k=forced_groups, progress=stages.say))
    previous_model = kept or (previous.model() if previous else None)
    before = None if kept else refresh.previous_types(previous_model, plan, pop, inputs)
    with stages.stage("types and groups"):
        if kept:  # the previous model scores the new rows: no refit
            levels = kept.levels
            kept_types = levels.kmeans.predict(scores).astype(np.int16)
        else:
            n_groups = group_count(selection.k, forced_groups)
            n_types = type_count(n_groups, analysis.types)
            levels, kept_types = fit_levels(scores, n_groups, n_types, seed=analysis.seed,
                                            forced_types=analysis.types is not None,
                                            forced_groups=forced_groups is not None,
                                            start=None if analysis.types is not None else
                                            refresh.start_centres(before, scores, pop.kept),
                                            overwrite=True)  # scores are only sampled after this
        pop_labels = np.full(len(pop.set_aside), SET_ASIDE, dtype=np.int16)
        pop_labels[pop.kept] = kept_types  # fit_levels labelled exactly these rows
        cust_labels = assign_segments(reducer, levels.kmeans, cust)
        pop_groups, cust_groups = levels.groups_of(pop_labels), levels.groups_of(cust_labels)
        spread = distinctness(scores, kept_types, levels, analysis.seed)
        del scores
    with stages.stage("match segments to the previous run"):
        matched = None if before is None else refresh.match_levels(previous_model, levels, before, pop_labels)
    previous_bins = previous.table("feature_bins") if previous is not None else None
    types, groups = list(range(levels.n_types)), list(range(levels.n_groups))

    def lookalike(mailing: pd.DataFrame, depth: float) -> Lookalike:
        return fit_lookalike(plan, reducer, pop, cust, pop_labels, mailing, depth, analysis.lookalike_sample,
                             analysis.lookalike_indicators, analysis.seed)

    def write_labels(folder: Path) -> None:
        for name, labels, group in (("population", pop_labels, pop_groups), ("customers", cust_labels, cust_groups)):
            pd.DataFrame({"segment": labels, "group": group}).to_parquet(folder / f"labels_{name}.parquet", index=False)

    with stages.stage("segment sums and feature bins"):
        # Two independent passes over the matrix, side by side: both spend their time in numpy's
        # bincount, which lets the other thread run (see moments.columns_group_sums); same results.
        with ThreadPoolExecutor(max_workers=2) as pool:
            bins = pool.submit(feature_bins, pop.matrix)
            type_sums = trait_sums(pop.matrix.to_numpy(), pop_labels, int(pop_labels.max()) + 1)
            bins = bins.result()
        rows = RowWork(
            features, plan, reducer, selection, levels, TableFacts.of(pop), TableFacts.of(cust), prepared.checks,
            type_counts=(segment_counts(pop_labels, types), segment_counts(cust_labels, types)),
            group_counts=(segment_counts(pop_groups, groups), segment_counts(cust_groups, groups)),
            type_sums=type_sums, group_sums=regroup_sums(type_sums, levels.type_group, int(pop_groups.max()) + 1),
            distinctness=spread, feature_bins=bins, fit_lookalike=lookalike,
            write_labels=write_labels, previous=previous, kept=kept, previous_model=previous_model, matched=matched,
            feature_counts=bin_counts(previous_bins, pop.matrix) if previous_bins is not None else None)
    write_results(work, rows, inputs, settings, stages, key, fingerprints)
