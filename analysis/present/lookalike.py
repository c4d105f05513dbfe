"""The "Whom to mail" page: words, tables and charts for the lookalike score, written at render time.

Numbers come from the ``lookalike`` section of results.json and the ``lookalike_*`` tables
(:mod:`analysis.target.lookalike` computes them); nothing here fits or scores anything.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from analysis.present.figures import (CUSTOMER_COLOUR, NEUTRAL, SET_ASIDE_COLOUR, WIDTH, _style, _subplots,
                                      _wrap, gains_axes, segment_colour)
from analysis.present.wording import percent
from analysis.present.words import markdown_table, md_escape, short_label
from analysis.results import Results

MODEL_NAMES = {"logistic": "logistic regression on the principal components",
               "boosting": "gradient boosting on the cleaned features"}
CURVES = {  # column of the gains table -> legend label, colour, line style
    "lookalike_without_indicators": ("Lookalike score (missing values filled)", CUSTOMER_COLOUR, "-"),
    "lookalike_with_indicators": ("Lookalike score with missing-value flags", "#7a3d00", "--"),
    "segments": ("Whole segments, headline order", NEUTRAL, "-"),
    "missing_share_only": ("Only: how much data is missing", SET_ASIDE_COLOUR, ":"),
}


def facts(results: Results) -> dict:
    return results.summary["lookalike"]


def _at(results: Results, depth: float) -> dict:
    return min(facts(results)["at_depth"], key=lambda row: abs(row["depth"] - depth))


def what_it_is(results: Results) -> str:
    """The plain-words opening: what the score is and is not."""
    f = facts(results)
    return (
        "Segments say *who* the customers are. To decide *whom to mail*, a score per person ranks "
        "people more finely: inside one segment some people look much more like the current customers "
        "than others. The **lookalike score** says how much more common a person's profile is among the "
        "current customers than in the population: 1.0 is an average person, 2.0 a profile twice as "
        "common among customers. It measures **resemblance to current customers, not a response rate**: "
        "nobody has been mailed yet, and the population it is compared with contains future customers "
        "too. Before mailing on it at scale, **test it with a control group**: mail a random sample of "
        "the same size beside the top-scored people and compare the orders.\n\n"
        f"The model is {MODEL_NAMES[f['chosen_model']]}, chosen over the alternative by cross-validated "
        f"AUC ({f['auc']:.2f}, 95% interval {f['auc_ci'][0]:.2f}–{f['auc_ci'][1]:.2f}; 0.5 would be "
        "guessing, 1.0 a perfect split of customers from the population). All gains below are measured on "
        "people the model never saw while it was fitted."
    )


def headline_comparison(results: Results) -> str:
    f = facts(results)
    row = _at(results, f["headline_depth"])
    return (
        f"At the headline's mailing depth ({percent(row['depth'], 0)} of the population), mailing the "
        f"top-scored people reaches **{percent(row['lookalike'], 0)}** of current customers, where mailing "
        f"the headline segments reaches {percent(row['segments'], 0)}. "
        f"{percent(row['set_aside_share_of_mailed'], 0)} of the people the score picks at that depth were set "
        "aside for missing data (they are scored like everyone else). Among people with enough data to be "
        f"placed in a segment the score still reaches {percent(row['lookalike_kept_rows'], 0)} of those "
        "customers: that part of the gain is about who people are, not about how much is known of them."
    )


def coverage_text(results: Results) -> str:
    """How much of the lift is data coverage: honest words about missing values."""
    f = facts(results)
    row = _at(results, f["headline_depth"])
    aside = results.summary["cleaning"]["set_aside"]
    return (
        f"Customers miss far more data than the population: {percent(aside['customer_share'], 0)} of customers "
        f"but {percent(aside['population_share'], 0)} of the population were set aside for missing values. "
        "That alone predicts customers, whatever people are like: ranking people only by how much of "
        f"their data is missing reaches {percent(row['missing_share_only'], 0)} of customers at the headline "
        f"depth. With explicit missing-value flags the score reaches {percent(row['lookalike_with_indicators'], 0)}, "
        f"with missing values filled by the population average {percent(row['lookalike_without_indicators'], 0)}. "
        "A flexible model can still partly recognise a filled-in average, so the fair measure of "
        "\"who people are\" is the reach among people with enough data (above). Whether sparse records are "
        "worth mailing depends on why customer records are sparse, which the data cannot tell; the score "
        + ("uses" if f["indicators"] else "does not use") + " the missing-value flags (setting "
        "`lookalike_indicators`)."
    )


def depth_table(results: Results) -> str:
    """Share of current customers reached at each stored mailing depth, every method."""
    rows = []
    for row in facts(results)["at_depth"]:
        rows.append({"Population mailed": percent(row["depth"], 0),
                     "Lookalike": percent(row["lookalike"], 0),
                     "…with missing flags": percent(row["lookalike_with_indicators"], 0),
                     "…without": percent(row["lookalike_without_indicators"], 0),
                     "…rows with enough data": percent(row["lookalike_kept_rows"], 0),
                     "Whole segments": percent(row["segments"], 0),
                     "Missing data only": percent(row["missing_share_only"], 0)})
    return markdown_table(pd.DataFrame(rows), "rrrrrrr")


def driver_phrase(row: pd.Series) -> str:
    """The end of a feature that goes with a higher score, in the schema's words."""
    if row["direction"] == 0:
        return "no clear direction"
    if row["kind"] == "flag":
        return f"{'more' if row['direction'] > 0 else 'less'} often {row['label']}"
    return row["high_end"] if row["direction"] > 0 else row["low_end"]


def drivers_table(results: Results, top: int = 10) -> str:
    table = results.table("lookalike_importance").head(top)
    out = pd.DataFrame({
        "Feature": table["description"],
        "More customer-like towards": [driver_phrase(r) for _, r in table.iterrows()],
        "AUC lost when shuffled": table["importance"].map(lambda v: f"{v:.3f}"),
        # Shuffling moves a feature's gaps with its values: a much-missing feature may matter
        # partly for what its gaps say (data coverage), not only for its values.
        "Missing for": table["missing_share"].map(lambda v: percent(v, 0)),
    })
    return markdown_table(out, "llrr")


def spread_table(results: Results) -> str:
    table = results.table("lookalike_segments")
    names = {s["id"]: short_label(s) for s in results.segments}
    out = pd.DataFrame({
        "Segment": [names.get(int(s), str(s)) for s in table["segment"]],
        "Median score": table["median"].map(lambda v: f"{v:.2f}"),
        "Middle half": [f"{a:.2f}–{b:.2f}" for a, b in zip(table["q25"], table["q75"])],
        "In the top tenth": table["top_decile_share"].map(lambda v: percent(v, 0)),
    })
    return markdown_table(out, "lrrr")


def spread_text(results: Results) -> str:
    return ("People inside one segment differ: the chart shows, per segment, how the score spreads over "
            "its members. Inside a segment chosen for a mailing, mail the higher-scored people first; in a "
            "segment that is not chosen, its highest-scored members may still be worth a test. "
            "`segments assign` adds `lookalike_score` and `lookalike_decile` (1 = the tenth of the "
            "population most like the current customers) to every row it scores.")


def gains_chart(results: Results) -> Figure:
    """Lookalike gains and segment gains on one chart, the headline's depth marked."""
    table = results.table("lookalike_gains")
    f = facts(results)
    with _style():
        fig, ax = _subplots(figsize=(WIDTH * 0.8, 4.0))
        ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="Mailing at random")
        for column, (label, colour, style) in CURVES.items():
            ax.plot(table["depth"], table[column], color=colour, linestyle=style, linewidth=1.6, label=label)
        depth = f["headline_depth"]
        ax.axvline(depth, color="#222222", linewidth=0.8)
        ax.annotate(f"headline depth: {depth:.0%} mailed", (depth, 0.99), textcoords="offset points",
                    xytext=(4, -8), fontsize=7.5)
        gains_axes(ax)
    return fig


def spread_chart(results: Results) -> Figure:
    """Per segment: the middle half and 10-90% range of the lookalike score, median marked."""
    table = results.table("lookalike_segments").sort_values("median")
    names = {s["id"]: short_label(s) for s in results.segments}
    with _style():
        fig, ax = _subplots(figsize=(WIDTH, 0.45 * len(table) + 1.0))
        for y, row in enumerate(table.itertuples()):
            colour = segment_colour(int(row.segment))
            ax.plot([row.q10, row.q90], [y, y], color=colour, linewidth=1.2)
            ax.plot([row.q25, row.q75], [y, y], color=colour, linewidth=6, solid_capstyle="butt")
            ax.plot([row.median], [y], marker="|", color="#222222", markersize=12)
        ax.axvline(1.0, color="#999999", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(table)), [_wrap(names.get(int(s), str(s)), 40) for s in table["segment"]])
        ax.set_xscale("log")
        low, high = max(float(table["q10"].min()), 1e-3), float(table["q90"].max())
        ticks = [t for t in (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16) if low / 1.5 <= t <= high * 1.5]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("Lookalike score (1 = population average; log scale)")
    return fig


def drivers_chart(results: Results, top: int = 10) -> Figure:
    """Permutation importance of the strongest drivers, labelled with the customer-like end."""
    table = results.table("lookalike_importance").head(top).iloc[::-1]
    labels = [_wrap(f"{d}: {driver_phrase(r)}", 60) for d, (_, r) in zip(table["description"], table.iterrows())]
    with _style():
        fig, ax = _subplots(figsize=(WIDTH, 0.42 * len(table) + 1.0))
        ax.barh(range(len(table)), np.maximum(table["importance"], 0), color=CUSTOMER_COLOUR)
        ax.set_yticks(range(len(table)), labels)
        ax.set_xlabel("AUC lost when the feature is shuffled (longer = matters more)")
    return fig


def source_words(results: Results) -> str:
    """One line for the technical callout: sample sizes and the setting names."""
    f = facts(results)
    s = f["sample"]
    return md_escape(
        f"Fitted on {s['population_train']:,} population and {s['customers_train']:,} customer rows "
        f"(classes weighted to balance); measured on {s['population_held_out']:,} population and "
        f"{s['customers_held_out']:,} customer rows held out before fitting; the 1.0 average and the "
        f"deciles come from {s['population_reference']:,} population rows the model never saw. "
        f"Cross-validation: {f['cv']['folds']} folds on the training rows. Setting lookalike_sample = "
        f"{s['sample_setting']:,} rows per table.")

