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
from sklearn.cluster import KMeans

from analysis import __version__
from analysis.prepare.cleaning import CleaningPlan, CleanedTable, apply_cleaning, fit_cleaning
from analysis.compare.shares import compare_segments
from analysis.constants import ALPHA, MIN_EFFECT, MODEL_FILE, RESULTS_FILE, SET_ASIDE
from analysis.prepare.reduce import Reducer, fit_reducer, interpret, loadings, scree
from analysis.settings import AnalysisSettings, Settings
from analysis.shell.sources import Inputs, resolve_inputs
from analysis.segment.kselect import MIN_ROWS_PER_CLUSTER, fit_final, select_k
from analysis.errors import InputError
from analysis.inputs.loading import load_table
from analysis.profile.traits import pen_portrait, segment_names, top_traits, trait_table
from analysis.shell.progress import Stages
from analysis.profile.recommend import recommend
from analysis.inputs.schema import Feature, load_features
from analysis.shell.store import atomic_folder, cache_key, code_fingerprint, file_fingerprint, write_json
from analysis.compare.targeting import gains_table, headline
from analysis.target.lookalike import LookalikeModel, fit_lookalike



@dataclass
class Model:
    """What ``segments assign`` needs to score new rows exactly as the population was scored."""

    plan: CleaningPlan
    reducer: Reducer
    kmeans: KMeans
    names: dict[int, str]
    index: dict[int, float]
    cache_key: str
    lookalike: LookalikeModel | None = None  # resemblance to customers, person by person

    def assign(self, cleaned: CleanedTable) -> np.ndarray:
        """Segment per row: -1 for set-aside rows, else the nearest population centre."""
        return assign_segments(self.reducer, self.kmeans, cleaned)


def assign_segments(reducer: Reducer, kmeans: KMeans, cleaned: CleanedTable) -> np.ndarray:
    """Segment per row of a cleaned table: -1 for set-aside rows, else the nearest centre."""
    labels = np.full(len(cleaned.set_aside), SET_ASIDE, dtype=np.int16)
    if cleaned.kept.any():
        labels[cleaned.kept] = kmeans.predict(reducer.transform(cleaned.matrix.to_numpy(), cleaned.kept))
    return labels


def run(settings: Settings, stages: Stages, force: bool = False) -> Path:
    """Run (or reuse) the analysis; returns the results folder."""
    inputs = resolve_inputs(settings, stages)
    with stages.stage("fingerprint inputs"):
        fingerprints = {role: file_fingerprint(path) for role, path in inputs.paths().items()}
        # Content, not location: moving the same files elsewhere reuses the results.
        contents = {role: {k: v for k, v in fp.items() if k != "path"} for role, fp in fingerprints.items()}
        key = cache_key(contents, dataclasses.asdict(settings.analysis), __version__, code_fingerprint())
    out = settings.results
    if not force and cached_key(out) == key:
        stages.say(f"results in {out} are up to date (same data, settings and version); nothing to do")
        return out
    check_replaceable(out)
    with atomic_folder(out) as work:
        _analyse(inputs, settings, stages, work, key, fingerprints)
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
        raise InputError(f"only {kept:,} rows are complete enough to cluster", path=path,
                         expected=f"at least {need:,} ({MIN_ROWS_PER_CLUSTER} per segment, k up to {k_max})",
                         hint="Use the full population file, or lower k_max (and k)")


@dataclass
class Prepared:
    """Both tables loaded, checked and cleaned: what the analysis and ``segments validate`` share."""

    features: list[Feature]
    plan: CleaningPlan
    pop: CleanedTable
    cust: CleanedTable
    checks: dict[str, dict]  # per table: path, rows, duplicate rows, extra columns, encoding, notes


def prepare(inputs: Inputs, analysis: AnalysisSettings, stages: Stages) -> Prepared:
    """Load, check and clean both files; the raw tables are released before returning."""
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
    with stages.stage("clean"):  # each raw table is released as soon as it is cleaned
        plan, pop = fit_cleaning(population.data, features, analysis)
        del population
        cust = apply_cleaning(plan, customers.data)
        del customers
    check_enough(plan, pop, analysis, inputs.population)
    return Prepared(features, plan, pop, cust, checks)


def _analyse(inputs: Inputs, settings: Settings, stages: Stages, work: Path, key: str,
             fingerprints: dict) -> None:
    analysis = settings.analysis
    prepared = prepare(inputs, analysis, stages)
    features, plan, pop, cust = prepared.features, prepared.plan, prepared.pop, prepared.cust
    columns = {c.name: c for c in plan.columns}
    with stages.stage("scale, fill missing, PCA"):
        reducer, scores = fit_reducer(pop.matrix, pop.kept, analysis.variance_target, analysis.seed)
    with stages.stage("choose k"):
        k_range = range(analysis.k_min, analysis.k_max + 1)
        selection = select_k(scores, k_range, seed=analysis.seed, forced_k=analysis.k, progress=stages.say)
    with stages.stage("final clustering"):
        kmeans = fit_final(scores, selection.k, seed=analysis.seed)
        pop_labels = np.full(len(pop.set_aside), SET_ASIDE, dtype=np.int16)
        pop_labels[pop.kept] = kmeans.labels_  # fit_final fitted exactly these rows
        cust_labels = assign_segments(reducer, kmeans, cust)
        del scores
    with stages.stage("compare customers"):
        segments = [SET_ASIDE, *range(selection.k)]
        comparison = compare_segments(pop_labels, cust_labels, segments=segments)
        gains = gains_table(comparison)
        # The headline mails segments, not "people with missing data": the set-aside group
        # stays in the gains table and in every share, but is not picked as a target.
        mailing = gains_table(comparison.drop(index=SET_ASIDE))
        head = headline(mailing)
    with stages.stage("lookalike score"):
        look = fit_lookalike(plan, reducer, pop, cust, pop_labels, mailing, head.population_share,
                             analysis.lookalike_sample, analysis.lookalike_indicators, analysis.seed)
    with stages.stage("profiles"):
        traits = trait_table(pop.matrix, pop_labels, columns)
        names = segment_names(traits, list(range(selection.k)))
        names[SET_ASIDE] = "Set aside: too much missing data"
        model = Model(plan, reducer, kmeans, names, comparison["index"].astype(float).to_dict(), key,
                      lookalike=look.model)
        segments_json = _segments(comparison, traits, names)
        centroids = reducer.back_to_features(kmeans.cluster_centers_)
        centroids.insert(0, "segment", range(selection.k))
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
            "labels_population": pd.DataFrame({"segment": pop_labels}),
            "labels_customers": pd.DataFrame({"segment": cust_labels}),
            **look.tables,
        }
        (work / "tables").mkdir()
        for name, table in tables.items():
            table.to_parquet(work / "tables" / f"{name}.parquet", index=False)
        joblib.dump(model, work / MODEL_FILE)
        summary = {
            "cache_key": key,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(),
            "data": {"source": "demo" if inputs.demo else "user", "files": fingerprints,
                     "rows": {"population": len(pop_labels), "customers": len(cust_labels)},
                     "checks": prepared.checks, "note": inputs.note},
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
            "lookalike": look.facts,
            "timings": dict(stages.seconds),
        }
        write_json(work / RESULTS_FILE, summary)


def _segments(comparison: pd.DataFrame, traits: pd.DataFrame, names: dict[int, str]) -> list[dict]:
    out = []
    for segment, row in comparison.iterrows():  # one row per segment: a handful of iterations
        segment = int(segment)
        top = top_traits(traits, segment) if segment != SET_ASIDE else traits.iloc[:0]
        effects = traits[traits["segment"] == segment].set_index("column")["effect"]
        verdict = "set-aside" if segment == SET_ASIDE else row["verdict"]
        rec = recommend(verdict, effects)
        out.append({
            "id": segment, "name": names[segment],
            "population_share": float(row["population_share"]), "customer_share": float(row["customer_share"]),
            "population_count": int(row["population_count"]), "customer_count": int(row["customer_count"]),
            "index": float(row["index"]), "index_ci": [float(row["index_low"]), float(row["index_high"])],
            "p_adjusted": float(row["p_adjusted"]), "verdict": row["verdict"],
            "top_traits": [{"column": r.column, "description": r.description, "phrase": r.phrase,
                            "effect": round(float(r.effect), 3)} for r in top.itertuples()],
            "pen_portrait": (pen_portrait(segment, names[segment], row, traits) if segment != SET_ASIDE
                             else _set_aside_portrait(row)),
            "recommendation": rec.to_dict(),
        })
    return out


def _set_aside_portrait(row: pd.Series) -> str:
    return (f"{row['population_share']:.1%} of the population and {row['customer_share']:.1%} of customers "
            f"miss too many values to be placed in a segment (index {row['index']:.0f}). They are kept "
            "as their own group so that no share or index elsewhere is inflated by leaving them out.")


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
    kept rows; features known for fewer than half of the set-aside rows are left out.
    """
    means = pop.group_means[pop.group_means["set_aside_known"] >= 0.5]
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
