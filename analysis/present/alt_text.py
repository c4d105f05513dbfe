"""Alternative text for every chart: what the chart shows, in words and numbers from the results.

A screen reader (or a reader whose images did not load) gets the chart's message from these
sentences; the caption beside a chart says how to read it, the alternative text says what it
shows for this data. One function per chart of :mod:`analysis.present.figures`, same name.
"""
from __future__ import annotations

import numpy as np

from analysis.constants import SET_ASIDE
from analysis.present.wording import join_words, percent
from analysis.present.words import index_value, mailing_gains, profile_order, short_label
from analysis.results import Results


def _listing(items: list[str], limit: int = 4) -> str:
    shown = items[:limit]
    more = len(items) - len(shown)
    return join_words(shown + ([f"{more} more"] if more > 0 else []))


def missingness(results: Results, top: int = 25) -> str:
    pop = results.table("quality_population").set_index("feature")["missing_share"]
    cust = results.table("quality_customers").set_index("feature")["missing_share"].reindex(pop.index)
    order = pop[pop > 0].sort_values(ascending=False).head(top).index
    if not len(order):
        return "Bar chart of missing values: no feature has missing values in the population."
    dropped = [f for f in order if f in results.summary["cleaning"]["dropped"]]
    limit = results.summary["settings"]["column_missing_threshold"]
    worst = order[0]
    return (f"Bar chart of the {len(order)} features most often missing, population beside customers. "
            f"The most often missing is {worst}: {percent(pop[worst])} of the population and "
            f"{percent(cust[worst])} of customers. "
            + (f"Above the {percent(limit, 0)} drop limit and dropped: {_listing(dropped)}."
               if dropped else f"No feature is above the {percent(limit, 0)} drop limit."))


def set_aside_profile(results: Results, top: int = 8) -> str:
    profile = results.table("set_aside_profile").head(top)
    if not len(profile):
        return "Bar chart of how set-aside people differ from everyone else: too few known values to compare."
    parts = [f"{phrase} ({effect:+.1f} SD)" for phrase, effect in zip(profile["phrase"], profile["effect"])]
    return (f"Bar chart of the {len(parts)} largest differences between set-aside people and everyone "
            f"else in the population, in standard deviations: {_listing(parts)}.")


def scree(results: Results) -> str:
    pca = results.summary["pca"]
    table = results.table("scree")
    kept = table[table["kept"]]
    return (f"Two charts of the variation explained by the principal components. The first component "
            f"explains {percent(table['variance_ratio'].iloc[0])}; the {pca['n_components']} components "
            f"kept explain {percent(kept['variance_ratio'].sum())} together, reaching the "
            f"{percent(pca['variance_target'], 0)} target.")


def component_weights(results: Results, n: int = 3) -> str:
    parts = []
    for number, comp in enumerate(results.summary["pca"]["components"][:n], start=1):
        strongest = comp["top_weights"][0]
        parts.append(f"component {number} ({percent(comp['variance_ratio'])} of the variation) weighs "
                     f"{strongest['description']} ({strongest['column']}) most")
    return f"Bar charts of the features that weigh most in the first {len(parts)} components: {join_words(parts)}."


def k_curves(results: Results) -> str:
    curves = results.table("k_curves")
    selection = results.summary["k_selection"]
    row = curves.loc[curves["k"] == selection["k"]].iloc[0]
    return (f"Three line charts over k = {curves['k'].min()} to {curves['k'].max()} segments: inertia with "
            f"its elbow at k = {selection['elbow_k']}, silhouette and stability across refits. "
            f"The chosen k = {selection['k']} has silhouette {row['silhouette']:.2f} and mean stability "
            f"{row['stability_mean']:.2f}.")


def _share_words(segment: dict) -> str:
    return (f"{short_label(segment)}: {percent(segment['population_share'])} of the population, "
            f"{percent(segment['customer_share'])} of customers")


def segment_shares(results: Results) -> str:
    segments = profile_order(results)
    types = sum(s["id"] != SET_ASIDE for s in segments)
    aside = " and the set-aside group" if types < len(segments) else ""
    return (f"Bar chart of the share of the population and of the customers in each of {types} types{aside}, "
            f"with 95% intervals. " + "; ".join(map(_share_words, segments)) + ".")


def index_chart(results: Results) -> str:
    ranked = sorted(results.segments, key=lambda s: -np.nan_to_num(s["index"], nan=-1, posinf=1e9))
    parts = [f"{short_label(s)}: {index_value(s['index'])} ({s['verdict']})" for s in ranked]
    return ("Bar chart of the customer index per type and of the set-aside group, highest first, with 95% "
            "intervals and a line at 100 (as common among customers as in the population). "
            + "; ".join(parts) + ".")


def gains(results: Results) -> str:
    table = mailing_gains(results)
    head = results.summary["targeting"]
    order = ", ".join(results.segment(int(s))["code"] for s in table["segment"])
    return (f"Gains chart: types mailed in the order {order}. The recommended selection mails "
            f"{percent(head['population_share'], 0)} of the population and reaches "
            f"{percent(head['customer_share'], 0)} of current customers, against "
            f"{percent(head['population_share'], 0)} when mailing at random.")


def level_traits(entry: dict) -> str:
    """What a group's or type's trait chart shows: its strongest traits, each with its size."""
    from analysis.present.segments import effect_rows, label  # segments imports words, as we do
    values, labels = effect_rows(entry)
    if len(values) == 0:
        return f"Bar chart for {label(entry)}: no trait differs clearly from the population."
    traits = [f"{phrase} ({value:.1f})" for value, phrase in zip(values, labels)]
    return (f"Bar chart of what distinguishes {label(entry)} from the population, each bar the size of "
            f"the difference in the direction its label says: {_listing(traits, 5)}.")


def game_plan(results: Results) -> str:
    """Which types fall in which quadrant of the game plan."""
    from analysis.present.segments import game_plan_rows  # segments imports words, as we do
    plan = results.summary["game_plan"]
    by_quadrant: dict[str, list[str]] = {}
    for t in game_plan_rows(results):
        by_quadrant.setdefault(t.get("game_plan") or "unplaced", []).append(t["code"])
    quadrants = "; ".join(f"{name}: {join_words(codes)}" for name, codes in by_quadrant.items())
    return (f"Scatter chart of the types by share of current customers (across) and index (up, log scale), "
            f"split at a customer share of {percent(plan['share_threshold'])} and an index of "
            f"{plan['index_threshold']:.0f}. {quadrants}.")


def lookalike_gains(results: Results) -> str:
    """Reach of the lookalike score against whole segments at a few mailing depths."""
    from analysis.present import lookalike  # it imports words, as we do
    rows = [f"{percent(r['depth'], 0)} mailed: {percent(r['lookalike'], 0)} by the score, "
            f"{percent(r['segments'], 0)} by whole segments" for r in lookalike.facts(results)["at_depth"]]
    return ("Line chart of the share of current customers reached against the share of the population "
            f"mailed, on held-out people: {_listing(rows, 4)}.")


def lookalike_spread(results: Results) -> str:
    """Median lookalike score per segment, highest first."""
    table = results.table("lookalike_segments").sort_values("median", ascending=False)
    names = {s["id"]: short_label(s) for s in results.segments}
    rows = [f"{names.get(int(s), str(s))} median {m:.2f}" for s, m in zip(table["segment"], table["median"])]
    return ("Chart of how the lookalike score (1.0 = population average) spreads inside each segment: "
            f"{_listing(rows, 5)}.")


def lookalike_drivers(results: Results, top: int = 10) -> str:
    """The features that move the score most, with the end that goes with a higher score."""
    from analysis.present import lookalike  # it imports words, as we do
    table = results.table("lookalike_importance").head(top)
    rows = [f"{d} ({lookalike.driver_phrase(r)}, {r['importance']:.3f})"
            for d, (_, r) in zip(table["description"], table.iterrows())]
    return ("Bar chart of the features that drive the lookalike score, as the AUC lost when each is "
            f"shuffled: {_listing(rows, 4)}.")
