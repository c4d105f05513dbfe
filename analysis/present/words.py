"""The words, numbers and markdown the Quarto pages show.

Pages call these helpers and print or display what they return; nothing here recomputes the
analysis: every figure comes from a :class:`analysis.results.Results`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.constants import SET_ASIDE
from analysis.results import Results
from analysis.present.wording import join_words, percent


Z95 = 1.959963984540054  # two-sided 95% normal quantile
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|$@#"})


def md_escape(text: object) -> str:
    """Text as literal markdown: no accidental emphasis, links, math, citations or table cells."""
    return str(text).translate(_MD_SPECIAL)


def number(value: float) -> str:
    """Thousands separators: 891,211."""
    return f"{value:,.0f}"


def index_value(value: float) -> str:
    if value is None or np.isnan(value):
        return "–"
    return "∞" if np.isinf(value) else f"{value:.0f}"


def index_with_interval(segment: dict) -> str:
    """'181 (175–188)': the index and its 95% interval."""
    low, high = segment["index_ci"]
    return f"{index_value(segment['index'])} ({index_value(low)}–{index_value(high)})"


def ratio_words(index: float) -> str:
    """An index as a plain comparison: '1.8 times as common among customers as in the population'."""
    if not np.isfinite(index):
        return "found only among customers" if np.isinf(index) else "absent from both files"
    if index >= 100:
        return f"{index / 100:.1f} times as common among customers as in the population"
    return f"{index / 100:.2f} times as common among customers as in the population"


def segment_title(segment: dict) -> str:
    """Heading text: 'Segment 2: Youth in earlier decades, keen savers' or the set-aside label."""
    if segment["id"] == SET_ASIDE:
        return f"{segment['name']} (set-aside group, not a segment)"
    return f"Segment {segment['id']}: {segment['name']}"


def short_label(segment: dict) -> str:
    """Chart label: '2 · Youth in earlier decades, keen savers', 'Set aside (missing data)'."""
    return "Set aside (missing data)" if segment["id"] == SET_ASIDE else f"{segment['id']} · {segment['name']}"


def chart_name(segment_id: int) -> str:
    """File name of a segment's traits chart: segment-2.png, set-aside.png."""
    return "set-aside.png" if segment_id == SET_ASIDE else f"segment-{segment_id}.png"


def profile_order(results: Results) -> list[dict]:
    """Segment sections in id order, the set-aside group last."""
    return [*results.clusters, *[s for s in results.segments if s["id"] == SET_ASIDE]]


def markdown_table(table: pd.DataFrame, align: str | None = None, max_width: int = 48) -> str:
    """A pipe table of already formatted cells; ``align`` has one of l/r/c per column.

    The dashes under each header are proportional to the column's longest cell, which is how
    Pandoc sizes the columns of a wide table in HTML and in the Typst PDF.
    """
    cells = table.astype(str).map(md_escape)
    headers = [md_escape(c) for c in table.columns]
    align = align or "l" * len(headers)
    rule = []
    for header, column, side in zip(headers, cells.columns, align):
        width = min(max([len(header), *cells[column].str.len(), 3]), max_width)
        dashes = "-" * width
        rule.append({"l": ":" + dashes[1:], "r": dashes[1:] + ":", "c": ":" + dashes[2:] + ":"}[side])
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines)


def _wilson(count: np.ndarray, total: int) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of a share count/total (good even for small counts)."""
    count = np.asarray(count, dtype=float)
    share = count / total
    centre = (share + Z95**2 / (2 * total)) / (1 + Z95**2 / total)
    half = Z95 * np.sqrt(share * (1 - share) / total + Z95**2 / (4 * total**2)) / (1 + Z95**2 / total)
    return centre - half, centre + half


def shares(results: Results) -> pd.DataFrame:
    """Per segment (set-aside included): population and customer shares with 95% Wilson intervals."""
    table = results.table("comparison").set_index("segment")
    rows = results.summary["data"]["rows"]
    for who, total in (("population", rows["population"]), ("customer", rows["customers"])):
        table[f"{who}_low"], table[f"{who}_high"] = _wilson(table[f"{who}_count"].to_numpy(), total)
    return table


def mailing_gains(results: Results) -> pd.DataFrame:
    """The gains table behind the headline (stored as ``gains_mailing``): segments only.

    The ``gains`` table ranks the set-aside group too; the headline leaves it out (it is not
    mailed before its data is enriched), so the chart of that decision does as well. Shares
    stay shares of everyone, so the cumulative columns end below 100%.
    """
    return results.table("gains_mailing")


def column_words(results: Results) -> dict[tuple[str, int], str]:
    """(cleaned column, +1 or -1) -> what a value above / below average means, in words.

    Read from the traits table, whose phrases were written with each column's own scale
    direction, so a low-is-strong scale (FINANZ_*, SEMIO_*, income) is never read backwards.
    """
    traits = results.table("traits")
    traits = traits[traits["effect"] != 0]
    return {(c, 1 if e > 0 else -1): p for c, e, p in zip(traits["column"], traits["effect"], traits["phrase"])}


def source_callout(results: Results) -> str:
    """The data-source box at the top of every page: a warning for synthetic demo data."""
    data = results.summary["data"]
    rows = data["rows"]
    sizes = (f"{number(rows['population'])} people in the population file and "
             f"{number(rows['customers'])} customers; analysis run {results.summary['created'][:10]}.")
    if results.is_demo:
        return ("::: {.callout-warning}\n## Synthetic demonstration data\n\n"
                f"{md_escape(results.source_note)} {sizes}\n:::\n")
    return f"::: {{.callout-note}}\n## Data source\n\n{md_escape(results.source_note)} {sizes}\n:::\n"


def _names(segments: list[dict]) -> str:
    parts = [f"the set-aside group (index {index_value(s['index'])})" if s["id"] == SET_ASIDE else
             f"segment {s['id']}, “{s['name']}” (index {index_value(s['index'])})" for s in segments]
    return join_words(parts)


def answer(results: Results) -> str:
    """The answer in three sentences: who customers are, whom to mail, what to watch."""
    over = [s for s in results.clusters if s["verdict"] == "over-represented"]
    if over:
        first = f"Customers come disproportionately from {_names(over)}."
    else:
        top = results.targets[0]
        first = (f"No segment is clearly over-represented among customers; the closest is "
                 f"{_names([top])}.")
    second = results.summary["targeting"]["headline"] + "."
    aside = results.segment(SET_ASIDE)
    under = [s for s in results.clusters if s["verdict"] == "under-represented"]
    if aside["verdict"] == "over-represented":
        third = (f"{percent(aside['customer_share'])} of customers (but {percent(aside['population_share'])} "
                 "of the population) could not be placed in a segment because too much of their data "
                 "is missing, so enriching their data is the next lever.")
    elif under:
        third = f"Customers are rare in {_names(under)}: leave them out of mass mailings."
    else:
        third = "No segment is clearly under-represented among customers."
    return md_escape(" ".join([first, second, third]))


def targets_table(results: Results) -> str:
    rows = [{"Mail": i, "Segment": short_label(s), "Population": percent(s["population_share"]),
             "Customers": percent(s["customer_share"]), "Index (95% CI)": index_with_interval(s),
             "Action": s["recommendation"]["action"]} for i, s in enumerate(results.targets, start=1)]
    return markdown_table(pd.DataFrame(rows), "rlrrrl")


def next_steps(results: Results) -> str:
    """A bullet list: one line per action, naming the segments it applies to."""
    by_action: dict[str, list[dict]] = {}
    targets = [s["id"] for s in results.targets]
    ranked = sorted(results.segments, key=lambda s: (s["id"] not in targets,
                                                     -np.nan_to_num(s["index"], nan=-1, posinf=1e9)))
    for segment in ranked:  # the headline's targets first, then by index
        by_action.setdefault(segment["recommendation"]["action"], []).append(segment)
    lines = []
    for action, members in by_action.items():
        text = members[0]["recommendation"]["text"]
        who = ", ".join("the set-aside group" if s["id"] == SET_ASIDE else f"segment {s['id']}" for s in members)
        lines.append(f"- **{md_escape(action)}** ({md_escape(who)}): {md_escape(text)}")
    lines.append("- **Refresh**: re-run `segments report` after each data delivery; the analysis is "
                 "cached and only recomputed when the data, settings or code change.")
    return "\n".join(lines)


def segments_table(results: Results) -> str:
    """Every segment in mailing order: sizes, index with interval and verdict."""
    ordered = sorted(results.segments, key=lambda s: -np.nan_to_num(s["index"], nan=-1, posinf=1e9))
    rows = [{"Segment": short_label(s),
             "Population": f"{percent(s['population_share'])} ({number(s['population_count'])})",
             "Customers": f"{percent(s['customer_share'])} ({number(s['customer_count'])})",
             "Index (95% CI)": index_with_interval(s), "Verdict": s["verdict"]} for s in ordered]
    return markdown_table(pd.DataFrame(rows), "lrrrl")


def shares_table(results: Results) -> str:
    table = shares(results)
    rows = []
    for segment in profile_order(results):
        row = table.loc[segment["id"]]
        rows.append({"Segment": short_label(segment),
                     "Population share (95% CI)": f"{percent(row['population_share'])} "
                     f"({percent(row['population_low'])}–{percent(row['population_high'])})",
                     "Customer share (95% CI)": f"{percent(row['customer_share'])} "
                     f"({percent(row['customer_low'])}–{percent(row['customer_high'])})"})
    return markdown_table(pd.DataFrame(rows), "lrr")


def gains_markdown(results: Results) -> str:
    """The stored gains table (set-aside group ranked like the others), formatted."""
    gains = results.table("gains")
    names = {s["id"]: short_label(s) for s in results.segments}
    rows = [{"Rank": int(r.rank), "Segment": names[int(r.segment)], "Index": index_value(r.index),
             "Population mailed": percent(r.cumulative_population_share),
             "Customer profile reached": percent(r.cumulative_customer_share),
             "Lift": index_value(r.lift)} for r in gains.itertuples()]
    return markdown_table(pd.DataFrame(rows), "rlrrrr")


def sources_table(results: Results) -> str:
    data = results.summary["data"]
    origin = "synthetic demonstration file" if results.is_demo else "user's file"
    rows = []
    for role, label, count in (("population", "General population (AZDIAS format)", data["rows"]["population"]),
                               ("customers", "Customers of the mail-order company", data["rows"]["customers"])):
        file = data["files"].get(role, {})
        rows.append({"Data set": label, "People": number(count), "File": Path(file.get("path", "?")).name,
                     "Size": f"{file.get('bytes', 0) / 1e6:,.1f} MB", "Origin": origin})
    return markdown_table(pd.DataFrame(rows), "lrlrl")


def data_overview(results: Results) -> str:
    """One paragraph: what the files hold and what cleaning kept."""
    cleaning = results.summary["cleaning"]
    quality = results.table("quality_population")
    affected = int((quality["missing_share"] > 0).sum())
    return md_escape(
        f"Each file describes people with the same {len(quality)} coded features (age band, "
        f"finances, personality, household, car and neighbourhood data). {affected} of the "
        f"{len(quality)} features have missing or unknown values in the population. "
        f"{len(cleaning['dropped'])} features were dropped and the rest were recoded into "
        f"{cleaning['n_columns']} numeric columns for the analysis.")


def dropped_table(results: Results) -> str:
    from analysis.inputs.schema import load_schema
    schema = load_schema()
    rows = [{"Feature": name, "Meaning": schema[name].description if name in schema else "",
             "Why it was dropped": reason} for name, reason in results.summary["cleaning"]["dropped"].items()]
    return markdown_table(pd.DataFrame(rows))


def cleaning_log_table(results: Results) -> str:
    log = results.table("cleaning_log").rename(columns=str.capitalize)
    return markdown_table(log[["Step", "Column", "Decision", "Reason"]])


def set_aside_text(results: Results) -> str:
    aside = results.summary["cleaning"]["set_aside"]
    threshold = results.summary["cleaning"]["row_missing_threshold"]
    return md_escape(
        f"{percent(aside['population_share'])} of the population ({number(aside['population_count'])} people) "
        f"and {percent(aside['customer_share'])} of customers ({number(aside['customer_count'])}) miss more "
        f"than {percent(threshold, 0)} of the kept features. They cannot be placed in a segment reliably, "
        "so they form their own group (segment −1, always grey in the charts). They are never dropped: "
        "every share and index on these pages counts them.")


def set_aside_table(results: Results, top: int = 8) -> str:
    profile = results.table("set_aside_profile").head(top)
    if profile.empty:
        return "_No feature is known for enough set-aside people to compare them._"
    rows = [{"Feature": r.description, "Everyone else": f"{r.kept_mean:.2f}",
             "Set aside (population)": f"{r.set_aside_mean:.2f}",
             "Set aside (customers)": "–" if np.isnan(r.customers_set_aside_mean) else f"{r.customers_set_aside_mean:.2f}",
             "In words": r.phrase} for r in profile.itertuples()]
    return markdown_table(pd.DataFrame(rows), "lrrrl")


def components_overview(results: Results) -> str:
    pca = results.summary["pca"]
    return md_escape(
        f"Many of the {pca['n_features']} cleaned columns measure related things and move together. "
        f"Principal component analysis (PCA) replaces them with "
        f"{pca['n_components']} uncorrelated summary scores, the components, which together keep "
        f"{percent(pca['variance_explained'])} of the variation between people (the target was "
        f"{percent(pca['variance_target'], 0)}). Segments are then found on these scores.")


def components_markdown(results: Results, level: int = 3) -> str:
    """One short section per interpreted component: both ends of it in words."""
    parts = []
    for number_, component in enumerate(results.summary["pca"]["components"], start=1):
        parts.append(
            f"{'#' * level} Component {number_}: {md_escape(', '.join(component['positive_pole']))}\n\n"
            f"Explains {percent(component['variance_ratio'])} of the variation. A **high** score means: "
            f"{md_escape(', '.join(component['positive_pole']))}. A **low** score means: "
            f"{md_escape(', '.join(component['negative_pole']))}.\n")
    return "\n".join(parts)


def k_text(results: Results) -> str:
    selection = results.summary["k_selection"]
    return (f"The analysis tried {len(selection['curves'])} values of k and chose **k = {selection['k']}**. "
            f"In its own words: {md_escape(selection['reason'])}")


def k_table(results: Results) -> str:
    chosen = results.summary["k_selection"]["k"]
    curves = results.table("k_curves")
    rows = [{"k": f"{int(r.k)}{' (chosen)' if int(r.k) == chosen else ''}",
             "Inertia": number(r.inertia), "Silhouette": f"{r.silhouette:.3f}",
             "Stability (mean)": f"{r.stability_mean:.3f}", "Stability (min)": f"{r.stability_min:.3f}",
             "Smallest segment": percent(r.smallest_share)} for r in curves.itertuples()]
    return markdown_table(pd.DataFrame(rows), "lrrrrr")


def index_text(results: Results) -> str:
    over = [s for s in results.segments if s["verdict"] == "over-represented"]
    under = [s for s in results.segments if s["verdict"] == "under-represented"]
    parts = ["An index of 100 means a segment is as common among customers as in the population; "
             "200 means twice as common, 50 half as common."]
    if over:
        parts.append(f"Over-represented: {_names(over)}.")
    if under:
        parts.append(f"Under-represented: {_names(under)}.")
    return md_escape(" ".join(parts))


def segment_facts(segment: dict) -> str:
    table = pd.DataFrame([{
        "Population": f"{percent(segment['population_share'])} ({number(segment['population_count'])} people)",
        "Customers": f"{percent(segment['customer_share'])} ({number(segment['customer_count'])} people)",
        "Index (95% CI)": index_with_interval(segment), "Verdict": segment["verdict"]}])
    return markdown_table(table, "rrrl")


def segment_section(results: Results, segment_id: int, figure: Path | str | None = None,
                    level: int = 2) -> str:
    """Markdown for one segment: heading, facts, verdict, traits chart, pen portrait, recommendation."""
    segment = results.segment(segment_id)
    aside = segment_id == SET_ASIDE
    anchor = "sec-set-aside-group" if aside else f"sec-segment-{segment_id}"
    parts = [f"{'#' * level} {md_escape(segment_title(segment))} {{#{anchor}}}", segment_facts(segment)]
    if aside:
        parts.append("::: {.callout-note}\n## Not a segment\n\nThese people miss too many answers to be "
                     "placed in a segment. They are kept as their own group so that no share or index is "
                     "inflated by leaving them out; the chart compares them with everyone else on the "
                     "features most of them still have.\n:::")
    parts.append(f"**Verdict: {md_escape(segment['verdict'])}.** This group is "
                 f"{md_escape(ratio_words(segment['index']))} (index {index_value(segment['index'])}).")
    if figure is not None:
        what = "the set-aside group differs from everyone else" if aside else \
            f"segment {segment_id} differs from the population"
        caption = (f"How {what}: each bar is a difference in standard deviations (an effect size; "
                   "0.2 is small, 0.5 clear, 0.8 marked), labelled with what it means.")
        label = "fig-set-aside-group" if aside else f"fig-segment-{segment_id}"
        from analysis.present import alt_text, figures  # they import this module
        alt = figures.attribute(alt_text.segment_traits(results, segment_id))
        parts.append(f"![{md_escape(caption)}]({Path(figure).as_posix()}){{#{label} width=\"100%\" fig-alt=\"{alt}\"}}")
    parts.append(f"**Pen portrait.** {md_escape(segment['pen_portrait'])}")
    parts.append(f"::: {{.callout-tip}}\n## Recommendation\n\n{md_escape(segment['recommendation']['sentence'])}\n:::")
    return "\n\n".join(parts) + "\n"


def settings_table(results: Results) -> str:
    labels = {"k": "Number of segments (k)", "seed": "Random seed",
              "column_missing_threshold": "Drop a feature missing for more than",
              "row_missing_threshold": "Set aside a person missing more than",
              "variance_target": "PCA variance to keep", "k_min": "Smallest k tried", "k_max": "Largest k tried"}
    rows = []
    for key, value in results.summary["settings"].items():
        if key == "k":
            value = "chosen by the analysis" if value is None else f"{value} (forced)"
        elif isinstance(value, float):
            value = percent(value, 0)
        rows.append({"Setting": labels.get(key, key), "Value": str(value), "Name in segments.toml": key})
    return markdown_table(pd.DataFrame(rows))


def fingerprint_table(results: Results) -> str:
    rows = [{"Input": role, "File": Path(f["path"]).name, "Bytes": number(f["bytes"]), "BLAKE2b": f["blake2b"]}
            for role, f in results.summary["data"]["files"].items()]
    return markdown_table(pd.DataFrame(rows), "llrl")


def versions_table(results: Results) -> str:
    rows = [{"Component": name, "Version": version} for name, version in results.summary["versions"].items()]
    rows += [{"Component": "analysis run (UTC)", "Version": results.summary["created"]},
             {"Component": "cache key", "Version": results.summary["cache_key"]}]
    return markdown_table(pd.DataFrame(rows))


def headline_callout(results: Results) -> str:
    """The gains headline, set apart: what mailing the recommended segments reaches."""
    head = results.summary["targeting"]
    return ("::: {.callout-important appearance=\"simple\"}\n## The headline\n\n"
            f"**{md_escape(head['headline'])}.** People mailed are *customer-like* (they look like "
            "customers); the index says where customers are concentrated, not how many will respond.\n:::\n")


def data_caveat(results: Results) -> str:
    """The first limitation: what the data is."""
    if results.is_demo:
        return ("**Synthetic data.** These results come from synthetic demonstration data with planted "
                "segments, generated by the package. They show how the report works; they say nothing "
                "about real people or real customers. Configure your own files and re-run `segments report`.")
    return ("**Your data.** The results describe the files listed above as they were on the analysis date; "
            "re-run after each data delivery (the run is cached, so unchanged data costs nothing).")


def verdict_rule(results: Results) -> str:
    """How a verdict is reached, with the thresholds this run's comparison used."""
    rule = results.summary["comparison"]
    alpha, effect = rule["alpha"], rule["min_effect"]
    low, high = 100 * (1 - effect), 100 * (1 + effect)
    return md_escape(
        f"A segment is over-represented (or under-represented) only when two things hold: its index "
        f"is at least {high:.0f} (or at most {low:.0f}), i.e. outside {low:.0f}–{high:.0f}, and the "
        f"difference is statistically clear (p < {alpha:g}) after a Holm correction for testing "
        f"{len(results.segments)} groups at once. With this many customers tiny differences are "
        "\"significant\" but useless for targeting, and with several groups some would look different "
        "by chance; the two conditions guard against both. The interval shown is the "
        f"{1 - alpha:.0%} Katz interval of the ratio of two shares, for each group on its own "
        "(not corrected for the number of groups).")
