"""The words, numbers and markdown the Quarto pages show.

Pages call these helpers and print or display what they return; nothing here recomputes the
analysis: every figure comes from a :class:`analysis.results.Results`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from analysis.constants import SET_ASIDE
from analysis.results import Results
from analysis.present.wording import join_words, percent
from analysis.present.cleaning_words import dropped_reasons, log_rows


# Every character Pandoc's markdown (or Quarto: shortcodes, attributes) or Typst could read as syntax;
# a backslash before any ASCII punctuation is a literal in Pandoc, and Pandoc escapes again for Typst.
_MD_SPECIAL = str.maketrans({**{c: "\\" + c for c in "\\`*_[]<>|$@#&~^{}!"}, "\n": " ", "\r": " "})


def md_escape(text: object) -> str:
    """Text as literal markdown: no accidental emphasis, links, math, citations, HTML, entities,
    shortcodes or table cells; line breaks become spaces so a value cannot end a table row."""
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


def segment_title(segment: dict) -> str:
    """Heading text: 'Segment 2: Youth in earlier decades, keen savers' or the set-aside label."""
    if segment["id"] == SET_ASIDE:
        return f"{segment['name']} (set-aside group, not a segment)"
    return f"{segment.get('code', 'Segment ' + str(segment['id']))}: {segment['name']}"


def short_label(segment: dict) -> str:
    """Chart label: '2 · Youth in earlier decades, keen savers', 'Set aside (missing data)'."""
    return "Set aside (missing data)" if segment["id"] == SET_ASIDE else \
        f"{segment.get('code', segment['id'])} · {segment['name']}"


def chart_name(segment_id: int) -> str:
    """File name of a segment's traits chart: segment-2.png, set-aside.png."""
    return "set-aside.png" if segment_id == SET_ASIDE else f"segment-{segment_id}.png"


def profile_order(results: Results) -> list[dict]:
    """Segment sections in id order, the set-aside group last."""
    return [*results.clusters, *[s for s in results.segments if s["id"] == SET_ASIDE]]


#: Pandoc sizes a wide table's columns by the dashes under each header. Dashes as long as a
#: column's longest cell let one column of long sentences take nearly all the width and
#: squeeze the short columns below their words (the PDF's cleaning log: "GEBURTSJAHR" ran into
#: the next column), so a column asks for at most this many characters.
WIDE_CELL = 50


def markdown_table(table: pd.DataFrame, align: str | None = None) -> str:
    """A pipe table of already formatted cells; ``align`` has one of l/r/c per column.

    pandas' ``to_markdown`` (tabulate) writes the table; the dashes under each header, which
    set the column widths in HTML and in the Typst PDF, are then one per character of the
    column's longest cell, capped at :data:`WIDE_CELL` but never below its longest word.
    Cells are text already: tabulate must not re-read them as numbers.
    """
    text = table.astype(str)
    cells = text.map(md_escape)
    cells.columns = [md_escape(c) for c in table.columns]
    sides = {"l": "left", "r": "right", "c": "center"}
    align = align or "l" * len(cells.columns)
    lines = cells.to_markdown(index=False, tablefmt="pipe", disable_numparse=True,
                              colalign=[sides[side] for side in align]).splitlines()
    widths = [_column_width([str(name), *text[name]]) for name in text.columns]
    marks = {"l": ":{}", "r": "{}:", "c": ":{}:"}
    lines[1] = "|" + "|".join(marks[side].format("-" * width) for side, width in zip(align, widths)) + "|"
    return "\n".join(lines)


def _column_width(cells: list[str]) -> int:
    """Dashes for a column of these cells: its longest cell up to WIDE_CELL, at least its longest word."""
    longest_word = max((len(word) for cell in cells for word in cell.split()), default=0)
    return max(min(max(map(len, cells)), WIDE_CELL), longest_word, 3)


def _wilson(counts: np.ndarray, total: int) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of each share count/total (good even for small counts).

    scipy's ``binomtest(...).proportion_ci(method="wilson")`` takes one count at a time: about
    0.7 ms each, so a dozen segments cost ~15 ms per page, and it agrees with the closed form
    to 1e-16. Not worth a hand-written vectorised version.
    """
    intervals = [binomtest(int(count), total).proportion_ci(confidence_level=0.95, method="wilson")
                 for count in counts]
    return np.array([i.low for i in intervals]), np.array([i.high for i in intervals])


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


def source_note(results: Results) -> str:
    """Where the data comes from, in one sentence (results.json holds only the source flag)."""
    if results.is_demo:
        return ("These results use SYNTHETIC demonstration data generated by the package, not real people. "
                "Point the tool at your own files to analyse real data (see the README).")
    return "These results use the data files configured by the user."


def source_callout(results: Results) -> str:
    """The data-source box at the top of every page: a warning for synthetic demo data."""
    data = results.summary["data"]
    rows = data["rows"]
    sizes = (f"{number(rows['population'])} people in the population file and "
             f"{number(rows['customers'])} customers; analysis run {results.summary['created'][:10]}.")
    if results.is_demo:
        return ("::: {.callout-warning}\n## Synthetic demonstration data\n\n"
                f"{md_escape(source_note(results))} {sizes}\n:::\n")
    return f"::: {{.callout-note}}\n## Data source\n\n{md_escape(source_note(results))} {sizes}\n:::\n"


def _names(segments: list[dict]) -> str:
    parts = [f"the set-aside group (index {index_value(s['index'])})" if s["id"] == SET_ASIDE else
             f"{s.get('code', s['id'])} “{s['name']}” (index {index_value(s['index'])})" for s in segments]
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
    second = headline_text(results.summary["targeting"]) + "."
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
        who = ", ".join("the set-aside group" if s["id"] == SET_ASIDE else str(s.get("code", s["id"])) for s in members)
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


def features_with_gaps(results: Results) -> int:
    """How many of the input features have missing or unknown values in the population."""
    return int((results.table("quality_population")["missing_share"] > 0).sum())


def dropped_table(results: Results) -> str:
    from analysis.inputs.schema import load_schema
    schema = load_schema()
    reasons = dropped_reasons(results.summary["cleaning"]["log"])
    rows = [{"Feature": name, "Meaning": schema[name].description if name in schema else "",
             "Why it was dropped": reason} for name, reason in reasons.items()]
    return markdown_table(pd.DataFrame(rows, columns=["Feature", "Meaning", "Why it was dropped"]))


def cleaning_log_table(results: Results) -> str:
    """Every cleaning decision, one row each, in words (analysis/present/cleaning_words.py)."""
    rows = log_rows(results.table("cleaning_log").to_dict("records"))
    return markdown_table(pd.DataFrame(rows, columns=["Step", "Feature", "Decision", "Reason"]))


def set_aside_table(results: Results, top: int = 8) -> str:
    profile = results.table("set_aside_profile").head(top)
    if profile.empty:
        return "_No feature is known for enough set-aside people to compare them._"
    rows = [{"Feature": r.description, "Everyone else": f"{r.kept_mean:.2f}",
             "Set aside (population)": f"{r.set_aside_mean:.2f}",
             "Set aside (customers)": "–" if np.isnan(r.customers_set_aside_mean) else f"{r.customers_set_aside_mean:.2f}",
             "In words": r.phrase} for r in profile.itertuples()]
    return markdown_table(pd.DataFrame(rows), "lrrrl")


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


def k_reason(results: Results) -> str:
    """Why this k, in words, from which part of the rule chose it and the curves' numbers."""
    selection = results.summary["k_selection"]
    k, elbow, reason, rule = selection["k"], selection["elbow_k"], selection["reason"], selection["rule"]
    curves = {c["k"]: c for c in selection["curves"]}
    chosen, at_elbow = curves[k], curves[elbow]
    bends = f"the inertia curve bends most clearly at k = {elbow} (the elbow)"
    if reason == "forced":
        return f"forced by the user setting k = {k}"
    if reason == "elbow-unstable":
        best = max(c["stability_mean"] for c in curves.values()
                   if abs(c["k"] - elbow) <= rule["window"] and c["stability_mean"] is not None)
        return (f"k = {elbow}: {bends}. No k within ±{rule['window']} of it reproduces well across "
                f"{rule['n_boot']} refits (best stability {best:.2f}, below {rule['stable_ari']:.2f}), "
                "so the elbow is kept; treat segment borders as soft.")
    if reason == "elbow-kept":
        return (f"k = {elbow}: {bends}, its segments reproduce across {rule['n_boot']} refits (stability "
                f"{at_elbow['stability_mean']:.2f}) and no k within ±{rule['window']} separates clearly "
                f"better (silhouette {at_elbow['silhouette']:.2f}).")
    if reason == "better-separated":
        return (f"k = {k}: the inertia elbow is at {elbow}, but {k} reproduces as well (stability "
                f"{chosen['stability_mean']:.2f}) and its segments separate clearly better (silhouette "
                f"{chosen['silhouette']:.2f} against {at_elbow['silhouette']:.2f}).")
    if reason == "elbow-unreproducible":
        return (f"k = {k}: the inertia elbow at {elbow} does not reproduce well (stability "
                f"{at_elbow['stability_mean']:.2f}); {k} is the k near it that does (stability "
                f"{chosen['stability_mean']:.2f}) with the best silhouette ({chosen['silhouette']:.2f}).")
    raise ValueError(f"unknown k-selection reason {reason!r} in results.json")


def k_table(results: Results) -> str:
    chosen = results.summary["k_selection"]["k"]
    curves = results.table("k_curves")
    rows = [{"k": f"{int(r.k)}{' (chosen)' if int(r.k) == chosen else ''}",
             "Inertia": number(r.inertia), "Silhouette": f"{r.silhouette:.3f}",
             "Stability (mean)": _ari(r.stability_mean), "Stability (min)": _ari(r.stability_min),
             "Smallest segment": percent(r.smallest_share)} for r in curves.itertuples()]
    return markdown_table(pd.DataFrame(rows), "lrrrrr")


def _ari(value: float | None) -> str:
    """0.990; '–' where stability was not measured (k's that could not change the pick)."""
    return "–" if value is None or not np.isfinite(value) else f"{value:.3f}"


def verdict_lists(results: Results) -> str:
    """'Over-represented: …. Under-represented: ….', naming the groups with each verdict."""
    parts = []
    for verdict in ("over-represented", "under-represented"):
        members = [s for s in results.segments if s["verdict"] == verdict]
        if members:
            parts.append(f"{verdict.capitalize()}: {_names(members)}.")
    return " ".join(parts)  # plain text: a page's inline `{python}` value is escaped by Quarto


def segment_section(results: Results, segment_id: int, figure: Path | str | None = None,
                    level: int = 2) -> str:
    """Markdown for one segment (a type): see :func:`analysis.present.segments.section`."""
    from analysis.present.segments import section
    return section(results, results.segment(segment_id), figure, level)


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


def headline_text(targeting: dict) -> str:
    """'The top 3 segments hold 12% of the population and 41% of current customers'; names the
    segments instead of "top" when the selection is not the first rows of the mailing order."""
    count = len(targeting["segments"])
    if targeting.get("top", True):
        which = "The top segment holds" if count == 1 else f"The top {count} segments hold"
    else:
        which = ("Segment " if count == 1 else "Segments ") + ", ".join(map(str, targeting["segments"])) + \
            (" holds" if count == 1 else " hold")
    return (f"{which} {percent(targeting['population_share'], 0)} of the population "
            f"and {percent(targeting['customer_share'], 0)} of current customers")


def headline_callout(results: Results) -> str:
    """The gains headline, set apart: what mailing the recommended segments reaches."""
    head = results.summary["targeting"]
    return ("::: {.callout-important appearance=\"simple\"}\n## The headline\n\n"
            f"**{md_escape(headline_text(head))}.** Mailing the rest of these types is a bet that people who "
            "look like current customers buy like them; the index says where customers are concentrated, "
            "not how many will respond.\n:::\n")


def data_caveat(results: Results) -> str:
    """The first limitation: what the data is."""
    if results.is_demo:
        return ("**Synthetic data.** These results come from synthetic demonstration data with planted "
                "segments, generated by the package. They show how the report works; they say nothing "
                "about real people or real customers. Configure your own files and re-run `segments report`.")
    return ("**Your data.** The results describe the files listed above as they were on the analysis date; "
            "re-run after each data delivery (the run is cached, so unchanged data costs nothing).")
