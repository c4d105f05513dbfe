"""The whole analysis, from input files to a results folder, with caching.

Everything is *fitted on the population* and only *applied* to customers: the cleaning plan,
the scale/fill/PCA pipeline and the clustering. Rows set aside for missingness get segment
-1 and stay in every comparison.

A run is keyed by the inputs' content hashes, the analysis settings, the package version and
a hash of the package's code;
when ``results.json`` in the results folder carries the same key the run returns at once.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from analysis import __version__
from analysis.prepare.cleaning import (ORDERED_CATEGORICALS, CleaningPlan, CleanedTable, apply_decoded, decode,
                                      fit_decoded, log_table)
from analysis.compare.shares import compare_segments
from analysis.constants import ALPHA, MIN_EFFECT, MODEL_FILE, RESULTS_FILE, SET_ASIDE
from analysis.prepare.reduce import fit_reducer, interpret, loadings, scree
from analysis.settings import AnalysisSettings, Settings
from analysis.shell.sources import Inputs, resolve_inputs
from analysis.segment.kselect import MIN_ROWS_PER_CLUSTER, select_k
from analysis.segment.model import Model, assign_segments
from analysis.errors import InputError
from analysis.inputs.loading import load_table
from analysis.profile.traits import trait_table
from analysis.profile.describe import describe
from analysis.profile.naming import name_segments
from analysis.segment.levels import Levels, fit_levels, group_count, type_count
from analysis.segment.kselect import _silhouettes
from analysis.compare.gameplan import game_plan
from analysis.shell.progress import Stages
from analysis.inputs.schema import Feature, load_features
from analysis.shell.lock import claim_folder
from analysis.shell.store import (atomic_folder, cache_key, check_unchanged, code_fingerprint, file_fingerprint,
                                  file_stats, write_json)
from analysis.compare.targeting import gains_table, headline
from analysis import refresh
from analysis.compare.changes import feature_bins
from analysis.shell.history import carry_history
from analysis.target.lookalike import fit_lookalike


def run(settings: Settings, stages: Stages, force: bool = False) -> Path:
    """Run (or reuse) the analysis; returns the results folder."""
    inputs = resolve_inputs(settings, stages)
    stats = file_stats(inputs.paths())  # before hashing: a change while hashing is caught too
    with stages.stage("fingerprint inputs"):
        fingerprints = {role: file_fingerprint(path) for role, path in inputs.paths().items()}
        # Content, not location: moving the same files elsewhere reuses the results.
        contents = {role: {k: v for k, v in fp.items() if k != "path"} for role, fp in fingerprints.items()}
        key = cache_key(contents, dataclasses.asdict(settings.analysis), __version__, code_fingerprint())
    out = settings.results
    with claim_folder(out):  # one run at a time writes this folder (and anything inside it)
        if not force and cached_key(out) == key:
            stages.say(f"results in {out} are up to date (same data, settings and version); nothing to do")
            return out
        check_replaceable(out)
        with atomic_folder(out) as work:
            _analyse(inputs, settings, stages, work, key, fingerprints)
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
    if not plan.columns:
        limit = analysis.column_missing_threshold
        raise InputError("no column is usable: every feature is missing in too many rows", path=path,
                         expected=f"features missing in at most {limit:.0%} of rows",
                         hint="Check that the export holds the values, not just the header and separators")
    k_max = max(analysis.k_max, analysis.k or 0)
    need = MIN_ROWS_PER_CLUSTER * k_max
    kept = int((~pop.set_aside).sum())
    if kept < need:
        setting = f"k is {analysis.k}" if analysis.k and analysis.k >= analysis.k_max else f"k_max is {k_max}"
        raise InputError(f"only {kept:,} rows are complete enough to cluster, and the setting {setting}", path=path,
                         expected=f"at least {need:,} ({MIN_ROWS_PER_CLUSTER} per segment, k up to {k_max})",
                         hint="Use the full population file, or lower k_max (and k)")


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
        decoded, quality = decode(population.data, plan.features if plan else features)
        del population
        if plan is None:
            plan, pop = fit_decoded(decoded, quality, features, analysis)
        else:
            pop = apply_decoded(plan, decoded, quality)
        del decoded
        decoded, quality = decode(customers.data, plan.features)
        del customers
        cust = apply_decoded(plan, decoded, quality)
        del decoded
    check_enough(plan, pop, analysis, inputs.population)
    return Prepared(features, plan, pop, cust, checks)


def _analyse(inputs: Inputs, settings: Settings, stages: Stages, work: Path, key: str,
             fingerprints: dict) -> None:
    analysis = settings.analysis
    previous = refresh.load_previous(settings.results)
    kept = refresh.kept_model(settings.keep_model, previous)  # None: fit a new model
    prepared = prepare(inputs, analysis, stages, plan=kept.plan if kept else None)
    features, plan, pop, cust = prepared.features, prepared.plan, prepared.pop, prepared.cust
    columns = {c.name: c for c in plan.columns}
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
        kmeans = levels.kmeans
        pop_labels = np.full(len(pop.set_aside), SET_ASIDE, dtype=np.int16)
        pop_labels[pop.kept] = kept_types  # fit_levels labelled exactly these rows
        cust_labels = assign_segments(reducer, kmeans, cust)
        pop_groups, cust_groups = levels.groups_of(pop_labels), levels.groups_of(cust_labels)
        distinctness = _distinctness(scores, kept_types, levels, analysis.seed)
        del scores
    with stages.stage("match segments to the previous run"):
        matched = None if before is None else refresh.match_levels(previous_model, levels, before, pop_labels)
        previous_of = ({i: i for i in range(levels.n_types)} if kept else
                       matched.types.previous_of if matched else None)
    with stages.stage("compare customers"):
        segments = [SET_ASIDE, *range(levels.n_types)]
        comparison = compare_segments(pop_labels, cust_labels, segments=segments)
        group_comparison = compare_segments(pop_groups, cust_groups, segments=[SET_ASIDE, *range(levels.n_groups)])
        gains = gains_table(comparison)
        # The headline mails types, not "people with missing data": the set-aside group
        # stays in the gains table and in every share, but is not picked as a target.
        mailing = gains_table(comparison.drop(index=SET_ASIDE))
        head = headline(mailing)
        plan_table, plan_facts = game_plan(comparison)
    with stages.stage("lookalike score"):
        look = fit_lookalike(plan, reducer, pop, cust, pop_labels, mailing, head.population_share,
                             analysis.lookalike_sample, analysis.lookalike_indicators, analysis.seed)
    with stages.stage("profiles"):
        traits = trait_table(pop.matrix, pop_labels, columns)
        group_traits = trait_table(pop.matrix, pop_groups, columns)
        taken: set[str] = set()
        group_names = name_segments(group_traits, range(levels.n_groups), taken)
        names = name_segments(traits, range(levels.n_types), taken)
        names[SET_ASIDE] = group_names[SET_ASIDE] = "Set aside: too much missing data"
        if kept:
            names, group_names = dict(kept.names), dict(kept.group_names)
        elif matched:  # a refit keeps the codes and names of the segments it found again
            names = refresh.carry_names(names, previous_model.names, matched.types.previous_of)
            group_names = refresh.carry_names(group_names, previous_model.group_names, matched.groups.previous_of)
        model = Model(plan, reducer, kmeans, names, comparison["index"].astype(float).to_dict(), key,
                      levels, group_names, group_comparison["index"].astype(float).to_dict(), look.model)
        type_group = {t: int(g) for t, g in enumerate(levels.type_group)}
        types_json = describe(comparison, traits, names, levels.codes, "type", type_group, levels.group_codes)
        quadrant = dict(zip(plan_table["segment"], plan_table["quadrant"]))
        for entry in types_json:
            entry["game_plan"] = quadrant.get(entry["id"])
        groups_json = describe(group_comparison, group_traits, group_names, levels.group_codes, "group")
        for entry in groups_json:
            entry["types"] = [levels.codes[t] for t, g in type_group.items() if g == entry["id"]]
        centroids = reducer.back_to_features(kmeans.cluster_centers_)
        centroids.insert(0, "segment", range(levels.n_types))
        centroids.insert(1, "code", [levels.codes[t] for t in range(levels.n_types)])
        centroids.insert(2, "group", levels.type_group.astype(int))
    with stages.stage("write results"):
        tables = {
            "quality_population": pop.quality.reset_index(),
            "quality_customers": cust.quality.reset_index(),
            "cleaning_log": log_table(plan.log),
            "scree": scree(reducer),
            "loadings": loadings(reducer, 10).reset_index(names="column"),
            "k_curves": selection.curves.reset_index(),
            "comparison": comparison.reset_index(),
            "gains": gains.reset_index(),
            "gains_mailing": mailing.reset_index(),
            "traits": traits,
            "comparison_groups": group_comparison.reset_index(),
            "traits_groups": group_traits,
            "game_plan": plan_table,
            "centroids": centroids,
            "set_aside_profile": set_aside_profile(pop, cust, {f.name: f for f in features}),
            "labels_population": pd.DataFrame({"segment": pop_labels, "group": pop_groups}),
            "labels_customers": pd.DataFrame({"segment": cust_labels, "group": cust_groups}),
            **look.tables,
        }
        fingerprint = refresh.data_fingerprint(fingerprints)
        changes, change_tables = refresh.changes(
            previous, "keep-model" if kept else "refit", previous_of, matched.types if matched else None,
            bool(previous_model) and not refresh.same_schema(previous_model.plan, plan),
            comparison.reset_index(), pop.quality.reset_index(), pop, plan, fingerprint)
        tables.update(change_tables, feature_bins=feature_bins(pop.matrix),
                      category_levels=refresh.category_levels(plan))
        (work / "tables").mkdir()
        for name, table in tables.items():
            table.to_parquet(work / "tables" / f"{name}.parquet", index=False)
        joblib.dump(model, work / MODEL_FILE)
        summary = {
            "cache_key": key,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(),
            "data": {"source": "demo" if inputs.demo else "user", "files": fingerprints, "fingerprint": fingerprint,
                     "rows": {"population": len(pop_labels), "customers": len(cust_labels)},
                     "checks": prepared.checks},
            "settings": dataclasses.asdict(analysis),
            "cleaning": _cleaning_summary(plan, pop, cust),
            "pca": {"n_components": reducer.n_keep, "variance_target": analysis.variance_target,
                    "variance_explained": float(reducer.pca.explained_variance_ratio_[: reducer.n_keep].sum()),
                    "n_features": len(plan.columns), "components": interpret(reducer, columns)},
            "k_selection": selection.to_dict(),
            "levels": {**levels.to_dict(), "segments_are": "types"},
            "distinctness": distinctness,
            "groups": groups_json,
            "types": types_json,
            "segments": types_json,  # an alias of the types, the level the headline mails
            "game_plan": plan_facts,
            "comparison": {"alpha": ALPHA, "min_effect": MIN_EFFECT, "adjustment": "Holm",
                           "interval": "Katz log-ratio"},
            "targeting": {"level": "types", "segments": head.segments, "population_share": head.population_share,
                          "customer_share": head.customer_share, "top": head.top},
            "lookalike": look.facts,
            "timings": dict(stages.seconds),
            "changes": changes,
        }
        write_json(work / RESULTS_FILE, summary)


def _distinctness(scores: np.ndarray, types: np.ndarray, levels: Levels, seed: int,
                  rows: int = 5_000) -> dict:
    """How separate the segments are: the silhouette of types and of groups on a random sample.

    Around 0.1 means regions of a continuum rather than separate tribes (the index differences
    are what matters then); 0.25 or more is a weak but real structure, 0.5 a clear one.
    """
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(types), size=min(rows, len(types)), replace=False))
    sample = np.asarray(scores[pick], dtype=np.float64)
    type_sil, group_sil = _silhouettes(sample, [types[pick].astype(np.int64),
                                                levels.type_group[types[pick]].astype(np.int64)])
    def clean(value: float) -> float | None:
        return round(float(value), 4) if np.isfinite(value) else None
    return {"silhouette_types": clean(type_sil), "silhouette_groups": clean(group_sil),
            "sample_rows": int(len(pick)), "continuum_below": CONTINUUM_SILHOUETTE,
            "continuum": bool(np.nan_to_num(group_sil) < CONTINUUM_SILHOUETTE)}


CONTINUUM_SILHOUETTE = 0.25  # below this, segments are regions of a continuum (Kaufman & Rousseeuw)


def _cleaning_summary(plan: CleaningPlan, pop: CleanedTable, cust: CleanedTable) -> dict:
    return {
        "dropped": plan.dropped,
        "n_columns": len(plan.columns),
        "row_missing_threshold": plan.row_missing_threshold,
        "set_aside": {"population_count": int(pop.set_aside.sum()), "population_share": float(pop.set_aside.mean()),
                      "customer_count": int(cust.set_aside.sum()), "customer_share": float(cust.set_aside.mean())},
        "out_of_range": {"population": int(pop.quality["out_of_range"].sum()),
                         "customers": int(cust.quality["out_of_range"].sum())},
        "log": plan.log,
    }


def set_aside_profile(pop: CleanedTable, cust: CleanedTable, features: dict[str, Feature]) -> pd.DataFrame:
    """How set-aside people differ from the rest, on the ordered features most of them still have.

    ``effect`` is the standardised difference of the population's set-aside rows from its
    kept rows; features known for fewer than half of the set-aside rows are left out, and so are
    nominal codes (LP_STATUS_*, ...: categories, whose average means nothing), even where the
    feature summary gives their codes a direction.
    """
    ordered = [name for name in pop.group_means.index
               if features[name].kind != "categorical" or name in ORDERED_CATEGORICALS]
    means = pop.group_means.loc[ordered]
    means = means[means["set_aside_known"] >= 0.5]
    if means.empty:
        return pd.DataFrame(columns=["feature", "description", "kept_mean", "set_aside_mean",
                                     "customers_set_aside_mean", "effect", "phrase"])
    effect = ((means["set_aside_mean"] - means["kept_mean"]) / means["kept_std"]).fillna(0.0)
    table = pd.DataFrame({
        "feature": means.index,
        "description": [features[name].description for name in means.index],
        "kept_mean": means["kept_mean"].to_numpy(),
        "set_aside_mean": means["set_aside_mean"].to_numpy(),
        "customers_set_aside_mean": cust.group_means.loc[means.index, "set_aside_mean"].to_numpy(),
        "effect": effect.to_numpy(),
        "phrase": [features[name].end(e) for name, e in effect.items()],
    })
    return table.iloc[np.argsort(-table["effect"].abs().to_numpy(), kind="stable")].reset_index(drop=True)


def _versions() -> dict[str, str]:
    import sklearn
    return {"customer-segments": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "pandas": pd.__version__, "scikit-learn": sklearn.__version__}
