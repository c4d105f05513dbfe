"""The words of the "What changed" page and the summary's line about it, from results.json ``changes``.

The analysis stores facts (shares, indexes, tests, PSI, flags, reason codes); this module turns
them into sentences and tables at render time.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd

from analysis.constants import SET_ASIDE
from analysis.present.wording import join_words, percent
from analysis.present.words import index_value, markdown_table, md_escape
from analysis.results import Results

REASON_WORDS = {
    "segments_psi_major": "the mix of segments in the population has shifted a lot (PSI above {major})",
    "features_psi_major": "the distribution of some input features has shifted a lot (PSI above {major})",
    "schema_changed": "the usable columns of the data have changed",
    "new_categories": "new categories appeared in the data",
    "segments_new_or_vanished": "segments appeared or disappeared when the model was refitted",
}
MODE_WORDS = {
    "keep-model": "The new data was scored with the previous model (no refit), so the segments are "
                  "exactly the same as before.",
    "refit": "The model was fitted anew, and each new segment was matched to the previous one it shares "
             "most people with; a segment that is essentially the same keeps its code and name.",
}
BAND_WORDS = {"stable": "stable", "moderate": "a moderate shift", "major": "a major shift"}


def changes_of(results: Results) -> dict | None:
    """The ``changes`` section, or None for a first report (or results older than this section)."""
    section = results.summary.get("changes")
    return None if not section or section.get("first_report") else section


def _date(stamp: str) -> str:
    return dt.datetime.fromisoformat(stamp).strftime("%d %B %Y, %H:%M UTC")


def summary_line(results: Results) -> str:
    """One line for the summary page: first report, or what moved and whether to refit."""
    ch = changes_of(results)
    if ch is None:
        return ("**What changed:** this is the first report on this data; later deliveries will be "
                "compared with it.")
    moved = len(ch["segments_up"]) + len(ch["segments_down"])
    parts = [f"compared with the delivery of {_date(ch['previous']['created'])}, "
             + (f"{moved} segment{'s' if moved != 1 else ''} changed beyond sampling noise"
                if moved else "no segment's index changed beyond sampling noise")]
    if ch["segments_new"] or ch["segments_vanished"]:
        parts.append(f"{len(ch['segments_new'])} new and {len(ch['segments_vanished'])} vanished segments")
    parts.append("a refit is recommended" if ch["refit_recommended"] else "the model still fits the data")
    return f"**What changed:** {join_words(parts)} (see *What changed*)."


def overview(results: Results) -> str:
    """Opening paragraphs: which runs are compared, how, and the recommendation."""
    ch = changes_of(results)
    if ch is None:
        return ("This is the **first report** on this data: there is no previous run to compare with. "
                "After the next delivery, this page shows what moved: segment shares and indexes, "
                "shifts in the data, and whether the model should be refitted.")
    prev = ch["previous"]
    text = [f"This report compares the current delivery (data fingerprint `{ch['fingerprint']}`) with the "
            f"previous run of {_date(prev['created'])} (data fingerprint `{prev['fingerprint']}`).",
            MODE_WORDS[ch["mode"]]]
    if ch["refit_recommended"]:
        major = ch["psi"]["thresholds"]["major"]
        reasons = [REASON_WORDS[r].format(major=major) for r in ch["reasons"]]
        sentence = join_words(reasons)
        text.append(f"**Recommendation: refit.** {sentence[0].upper() + sentence[1:]}.")
    else:
        text.append("**Recommendation: no refit needed.** The segments and the data are stable.")
    return "\n\n".join(text)


def _label(row: pd.Series, names: dict[str, str], before: dict[str, str]) -> str:
    segment, previous = row["segment"], row["previous_segment"]
    if pd.isna(segment):
        return f"{before.get(str(int(previous)), '')} (vanished)"
    if int(segment) == SET_ASIDE:
        return "Set aside (too much missing data)"
    flag = " (new)" if row["status"] == "new" else ""
    return f"{names.get(str(int(segment)), '')}{flag}"


def segments_table(results: Results) -> str:
    """Per segment: share of population and customers before/after, index before/after, verdict."""
    table = results.table("changes_segments")
    names = {str(s["id"]): f"{s.get('code', s['id'])} · {s['name']}" for s in results.segments}
    before = results.summary["changes"]["previous"].get("names", {})
    verdict = {"up": "up", "down": "down", "none": "within noise"}
    rows = pd.DataFrame({
        "Segment": [_label(r, names, before) for _, r in table.iterrows()],
        "Population share": [_arrow(table, "population_share", i, _pct) for i in range(len(table))],
        "Customer share": [_arrow(table, "customer_share", i, _pct) for i in range(len(table))],
        "Index": [_arrow(table, "index", i, index_value) for i in range(len(table))],
        "Index change": [verdict[d] if s == "kept" else s for d, s in zip(table["direction"], table["status"])],
    })
    return markdown_table(rows, align="lrrrl")


def _arrow(table: pd.DataFrame, column: str, i: int, fmt) -> str:
    """'16.7% → 16.6%': the value before and after."""
    return f"{fmt(table[column + '_before'].iloc[i])}\u00a0→\u00a0{fmt(table[column + '_after'].iloc[i])}"


def _pct(value: float) -> str:
    return "–" if pd.isna(value) else percent(value)


def drift_text(results: Results) -> str:
    """Bullets: PSI of the segments and the features, and data-quality changes."""
    ch = changes_of(results)
    psi = ch["psi"]
    t = psi["thresholds"]
    lines = [f"- **Segment mix (population):** PSI {psi['segments']:.3f}, {BAND_WORDS[psi['segments_band']]}. "
             f"Among customers: PSI {psi['customers']:.3f}, {BAND_WORDS[psi['customers_band']]}.",
             f"- **Input features:** " + _feature_words(psi)]
    quality = ch["quality"]
    for row in quality["missing_changed"]:
        lines.append(f"- **Missing values in {md_escape(row['feature'])}:** {percent(row['missing_before'])} before, "
                     f"{percent(row['missing_after'])} now.")
    for row in quality["out_of_range_changed"]:
        lines.append(f"- **Codes outside the documented ones in {md_escape(row['feature'])}:** "
                     f"{percent(row['out_of_range_before'])} of rows before, {percent(row['out_of_range_after'])} now "
                     "(treated as missing).")
    for row in quality["new_categories"]:
        lines.append(f"- **New category in {md_escape(row['column'])}:** `{row['level']}`.")
    if not (quality["missing_changed"] or quality["out_of_range_changed"] or quality["new_categories"]):
        lines.append("- **Data quality:** no column's missing share or out-of-range codes changed beyond noise.")
    lines.append(f"\nPSI (population stability index) below {t['moderate']:.2f} means stable, "
                 f"{t['moderate']:.2f}–{t['major']:.2f} a moderate shift, above {t['major']:.2f} a major shift. "
                 "A segment's index counts as changed when the change of its log index is beyond sampling "
                 "noise (two-sided test, Holm-adjusted over the segments, 5% family-wise).")
    return "\n".join(lines)


def _feature_words(psi: dict) -> str:
    major, moderate = psi["features_major"], psi["features_moderate"]
    if not major and not moderate:
        return "every feature's distribution is stable (PSI below 0.10)."
    parts = []
    if major:
        parts.append(f"a major shift in {join_words([md_escape(f) for f in major])}")
    if moderate:
        parts.append(f"a moderate shift in {join_words([md_escape(f) for f in moderate])}")
    return join_words(parts) + "; the others are stable."
