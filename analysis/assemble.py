"""What both engines share: the checks on the cleaned population, and the results folder built from
what the row-level work produced.

The row-level work (loading, cleaning, PCA scores, types and groups, labels) is done by
``pipeline._analyse`` on rows in memory, or by ``engine.dask`` per partition on a cluster. Either
hands over a ``RowWork``: the fitted objects and small aggregates that add up over row blocks
(people per type, trait sums, bin counts, cross-tables with the previous run's types) plus the
few steps that need rows (the lookalike fit, the label tables) as functions. ``write_results``
turns a ``RowWork`` into every table, the model and results.json, so the two engines cannot
drift apart: there is one copy of the results code.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import joblib
import numpy as np
import pandas as pd

from analysis import __version__, refresh
from analysis.compare.changes import psi_table
from analysis.compare.gameplan import game_plan
from analysis.compare.shares import compare_counts
from analysis.compare.targeting import gains_table, headline
from analysis.constants import ALPHA, MIN_EFFECT, MODEL_FILE, RESULTS_FILE, SET_ASIDE
from analysis.errors import InputError
from analysis.inputs.schema import Feature
from analysis.prepare.cleaning import ORDERED_CATEGORICALS, CleanedTable, CleaningPlan, log_table
from analysis.prepare.reduce import Reducer, interpret, loadings, scree
from analysis.profile.describe import describe
from analysis.profile.naming import name_segments
from analysis.profile.traits import traits_from_sums
from analysis.segment.kselect import MIN_ROWS_PER_CLUSTER, KSelection, _silhouettes
from analysis.segment.levels import Levels
from analysis.segment.model import Model
from analysis.settings import AnalysisSettings, Settings
from analysis.shell.progress import Stages
from analysis.shell.sources import Inputs
from analysis.shell.store import write_json
from analysis.target.lookalike import Lookalike

CONTINUUM_SILHOUETTE = 0.25  # below this, segments are regions of a continuum (Kaufman & Rousseeuw)


def check_columns(plan: CleaningPlan, analysis: AnalysisSettings, path: Path) -> None:
    """Stop with a clear message when cleaning leaves no usable column (a sample file, a bad export)."""
    if not plan.columns:
        limit = analysis.column_missing_threshold
        raise InputError("no column is usable: every feature is missing in too many rows", path=path,
                         expected=f"features missing in at most {limit:.0%} of rows",
                         hint="Check that the export holds the values, not just the header and separators")


def check_rows(kept: int, analysis: AnalysisSettings, path: Path) -> None:
    """Stop when fewer population rows are complete enough than k-means needs for k up to k_max."""
    k_max = max(analysis.k_max, analysis.k or 0)
    need = MIN_ROWS_PER_CLUSTER * k_max
    if kept < need:
        setting = f"k is {analysis.k}" if analysis.k and analysis.k >= analysis.k_max else f"k_max is {k_max}"
        raise InputError(f"only {kept:,} rows are complete enough to cluster, and the setting {setting}", path=path,
                         expected=f"at least {need:,} ({MIN_ROWS_PER_CLUSTER} per segment, k up to {k_max})",
                         hint="Use the full population file, or lower k_max (and k)")


@dataclass
class TableFacts:
    """What the results need of one cleaned table: sizes, quality counts, set-aside group means, checks."""

    rows: int
    set_aside: int
    set_aside_share: float
    quality: pd.DataFrame  # per feature: blank, coded_missing, out_of_range, missing_share
    group_means: pd.DataFrame  # what ``set_aside_profile`` reads

    @classmethod
    def of(cls, table: CleanedTable) -> TableFacts:
        return cls(len(table.set_aside), int(table.set_aside.sum()), float(table.set_aside.mean()),
                   table.quality, table.group_means)


@dataclass
class RowWork:
    """The fitted objects and per-row aggregates an engine hands to ``write_results``.

    Counts are in the order ``[SET_ASIDE, 0, 1, ...]``; trait sums are ``profile.traits.trait_sums``
    (types or groups, the set-aside group last); ``matched`` is the refit's matching to the previous
    model (``refresh.match_levels`` on rows, or ``match_crossed`` on summed cross-tables).
    """

    features: list[Feature]
    plan: CleaningPlan
    reducer: Reducer
    selection: KSelection
    levels: Levels
    pop: TableFacts
    cust: TableFacts
    checks: dict[str, dict]
    type_counts: tuple[np.ndarray, np.ndarray]  # population, customers
    group_counts: tuple[np.ndarray, np.ndarray]
    type_sums: np.ndarray
    group_sums: np.ndarray
    distinctness: dict
    feature_bins: pd.DataFrame
    fit_lookalike: Callable[[pd.DataFrame, float], Lookalike]  # (mailing gains table, headline depth)
    write_labels: Callable[[Path], None]  # writes labels_population / labels_customers into a tables folder
    previous: refresh.Previous | None = None
    kept: Model | None = None  # the previous model, when it was kept
    previous_model: Model | None = None
    matched: refresh.LevelMatch | None = None
    feature_counts: dict[str, np.ndarray] | None = None  # this run binned on the previous run's bins
    engine: dict | None = None  # facts about a distributed run (results.json ``engine``)


def write_results(work: Path, rows: RowWork, inputs: Inputs, settings: Settings, stages: Stages, key: str,
                  fingerprints: dict) -> None:
    """Every table, the model and results.json of a run, from what its row-level work produced."""
    analysis = settings.analysis
    plan, reducer, levels, kept, previous = rows.plan, rows.reducer, rows.levels, rows.kept, rows.previous
    columns = {c.name: c for c in plan.columns}
    kmeans = levels.kmeans
    matched = rows.matched
    previous_of = ({i: i for i in range(levels.n_types)} if kept else
                   matched.types.previous_of if matched else None)
    with stages.stage("compare customers"):
        segments = [SET_ASIDE, *range(levels.n_types)]
        comparison = compare_counts(*rows.type_counts, segments)
        group_comparison = compare_counts(*rows.group_counts, [SET_ASIDE, *range(levels.n_groups)])
        gains = gains_table(comparison)
        # The headline mails types, not "people with missing data": the set-aside group
        # stays in the gains table and in every share, but is not picked as a target.
        mailing = gains_table(comparison.drop(index=SET_ASIDE))
        head = headline(mailing)
        plan_table, plan_facts = game_plan(comparison)
    with stages.stage("lookalike score"):
        look = rows.fit_lookalike(mailing, head.population_share)
    with stages.stage("profiles"):
        names_of = list(columns)
        traits = traits_from_sums(rows.type_sums, names_of, columns)
        group_traits = traits_from_sums(rows.group_sums, names_of, columns)
        taken: set[str] = set()
        group_names = name_segments(group_traits, range(levels.n_groups), taken)
        names = name_segments(traits, range(levels.n_types), taken)
        names[SET_ASIDE] = group_names[SET_ASIDE] = "Set aside: too much missing data"
        if kept:
            names, group_names = dict(kept.names), dict(kept.group_names)
        elif matched:  # a refit keeps the codes and names of the segments it found again
            names = refresh.carry_names(names, rows.previous_model.names, matched.types.previous_of)
            group_names = refresh.carry_names(group_names, rows.previous_model.group_names,
                                              matched.groups.previous_of)
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
            "quality_population": rows.pop.quality.reset_index(),
            "quality_customers": rows.cust.quality.reset_index(),
            "cleaning_log": log_table(plan.log),
            "scree": scree(reducer),
            "loadings": loadings(reducer, 10).reset_index(names="column"),
            "k_curves": rows.selection.curves.reset_index(),
            "comparison": comparison.reset_index(),
            "gains": gains.reset_index(),
            "gains_mailing": mailing.reset_index(),
            "traits": traits,
            "comparison_groups": group_comparison.reset_index(),
            "traits_groups": group_traits,
            "game_plan": plan_table,
            "centroids": centroids,
            "set_aside_profile": set_aside_profile(rows.pop, rows.cust, {f.name: f for f in rows.features}),
            **look.tables,
        }
        fingerprint = refresh.data_fingerprint(fingerprints)
        previous_bins = previous.table("feature_bins") if previous is not None else None
        feature_table = (psi_table(previous_bins, rows.feature_counts, {c.name: c.source for c in plan.columns})
                         if previous_bins is not None and rows.feature_counts is not None else None)
        changes, change_tables = refresh.changes(
            previous, "keep-model" if kept else "refit", previous_of, matched.types if matched else None,
            bool(rows.previous_model) and not refresh.same_schema(rows.previous_model.plan, plan),
            comparison.reset_index(), rows.pop.quality.reset_index(), rows.pop.rows, plan, fingerprint,
            feature_table)
        tables.update(change_tables, feature_bins=rows.feature_bins, category_levels=refresh.category_levels(plan))
        (work / "tables").mkdir()
        for name, table in tables.items():
            table.to_parquet(work / "tables" / f"{name}.parquet", index=False)
        rows.write_labels(work / "tables")
        joblib.dump(model, work / MODEL_FILE)
        summary = {
            "cache_key": key,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(),
            "data": {"source": "demo" if inputs.demo else "user", "files": fingerprints, "fingerprint": fingerprint,
                     "rows": {"population": rows.pop.rows, "customers": rows.cust.rows},
                     "checks": rows.checks},
            "settings": dataclasses.asdict(analysis),
            "cleaning": _cleaning_summary(plan, rows.pop, rows.cust),
            "pca": {"n_components": reducer.n_keep, "variance_target": analysis.variance_target,
                    "variance_explained": float(reducer.pca.explained_variance_ratio_[: reducer.n_keep].sum()),
                    "n_features": len(plan.columns), "components": interpret(reducer, columns)},
            "k_selection": rows.selection.to_dict(),
            "levels": {**levels.to_dict(), "segments_are": "types"},
            "distinctness": rows.distinctness,
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
        if rows.engine is not None:
            summary["engine"] = rows.engine
        write_json(work / RESULTS_FILE, summary)


def distinctness(scores: np.ndarray, types: np.ndarray, levels: Levels, seed: int, rows: int = 5_000) -> dict:
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


def _cleaning_summary(plan: CleaningPlan, pop: TableFacts, cust: TableFacts) -> dict:
    return {
        "dropped": plan.dropped,
        "n_columns": len(plan.columns),
        "row_missing_threshold": plan.row_missing_threshold,
        "set_aside": {"population_count": pop.set_aside, "population_share": pop.set_aside_share,
                      "customer_count": cust.set_aside, "customer_share": cust.set_aside_share},
        "out_of_range": {"population": int(pop.quality["out_of_range"].sum()),
                         "customers": int(cust.quality["out_of_range"].sum())},
        "log": plan.log,
    }


def set_aside_profile(pop: TableFacts | CleanedTable, cust: TableFacts | CleanedTable,
                      features: dict[str, Feature]) -> pd.DataFrame:
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
