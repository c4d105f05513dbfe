"""The words and tables about groups and types: summaries, pen portraits, key facts,
recommendations and the game plan, written at render time from the facts in results.json.

Sentences come from the Jinja2 templates in ``templates/``; this module picks the facts that
fill them. Nothing here recomputes the analysis.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from analysis.constants import SET_ASIDE
from analysis.inputs.schema import load_schema
from analysis.present.wording import join_words, percent
from analysis.present.words import column_words, md_escape, markdown_table
from analysis.results import Results

TEMPLATES = Path(__file__).parent / "templates"
STRENGTHS = ((0.8, "a marked"), (0.5, "a clear"), (0.2, "a small"), (0.0, "a slight"))
QUADRANT_ORDER = ("core", "niche", "developmental", "low priority")


@cache
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
    env.globals["pct"] = percent
    return env


def render(template: str, **facts) -> str:
    return _env().get_template(template).render(**facts).strip()


def strength(effect: float) -> str:
    """'a clear' difference: the size of a standardised difference in words (Cohen's conventions)."""
    return next(word for limit, word in STRENGTHS if abs(effect) >= limit)


def level(results: Results, name: str) -> list[dict]:
    """``groups`` or ``types`` (set-aside row last), or the segments of a one-level result."""
    entries = results.summary.get(name) or results.summary["segments"]
    return [*[e for e in entries if e["id"] != SET_ASIDE], *[e for e in entries if e["id"] == SET_ASIDE]]


def label(entry: dict) -> str:
    """'B2 · Affluent Prudent Seniors'; the set-aside row as 'X · Set aside (missing data)'."""
    if entry["id"] == SET_ASIDE:
        return f"{entry.get('code', 'X')} · Set aside (missing data)"
    return f"{entry.get('code', entry['id'])} · {entry['name']}"


def summary_line(entry: dict) -> str:
    return md_escape(render("summary_line.md.j2", s=entry))


def _level_label(column: str, code: int | None) -> str | None:
    if code is None:
        return None
    feature = load_schema().get(column)
    return feature.label(code) if feature else str(code)


def portrait(entry: dict) -> str:
    """Plain sentences from the portrait traits (one per idea) and the typical age band."""
    if entry["id"] == SET_ASIDE:
        return ("People who miss too many answers to be placed in a segment; they are kept as their own "
                "group so that no share or index is inflated by leaving them out.")
    facts = entry.get("key_facts", {})
    age = _level_label("ALTERSKATEGORIE_GROB", facts.get("age_band", {}).get("code"))
    traits = [t for t in entry.get("portrait_traits", entry.get("top_traits", []))
              if not t["column"].startswith(("ALTERSKATEGORIE", "ONLINE"))]
    online = next((t["phrase"] for t in entry.get("portrait_traits", []) if t["column"].startswith("ONLINE")), "")
    phrases = [t["phrase"] for t in traits]
    return md_escape(render("portrait.md.j2", age=age, lead=phrases[:3], rest=phrases[3:], online=online))


def recommendation(results: Results, entry: dict) -> str:
    """The action, then each theme and channel with its reason (the trait and how strong)."""
    words = column_words(results)
    if "traits_groups" in _tables(results):
        groups = results.table("traits_groups")
        groups = groups[groups["effect"] != 0]
        words |= {(c, 1 if e > 0 else -1): p for c, e, p in zip(groups["column"], groups["effect"], groups["phrase"])}

    def reason(rule: dict) -> str:
        side = 1 if rule["side"] == "high" else -1
        phrase = words.get((rule["column"], side), rule["column"])
        return f"{phrase} ({strength(rule['effect'])} difference from the population)"
    return render("recommendation.md.j2", r=entry["recommendation"], reason=reason)


def _tables(results: Results) -> set[str]:
    return {p.stem for p in (results.folder / "tables").glob("*.parquet")}


def key_facts_row(entry: dict) -> dict:
    facts = entry.get("key_facts", {})

    def fact(key: str, column: str) -> str:
        value = facts.get(key, {})
        return _level_label(column, value.get("code")) or "–"
    index = "–" if entry["index"] is None else f"{entry['index']:.0f}"
    return {"Segment": label(entry), "Population": percent(entry["population_share"]),
            "Customers": percent(entry["customer_share"]), "Index": index,
            "Typical age": fact("age_band", "ALTERSKATEGORIE_GROB"), "Income": fact("income", "HH_EINKOMMEN_SCORE"),
            "Density": fact("density", "EWDICHTE"), "Online affinity": fact("online_affinity", "ONLINE_AFFINITAET")}


def key_facts_table(results: Results, name: str = "types") -> str:
    rows = [key_facts_row(e) for e in level(results, name)]
    return markdown_table(pd.DataFrame(rows), "lrrrllll")


def levels_table(results: Results) -> str:
    """Every group, then its types indented under it: shares, index with interval, verdict."""
    rows = []
    types = level(results, "types")
    for group in level(results, "groups"):
        members = [t for t in types if t.get("group") == group["id"]] if group["id"] != SET_ASIDE else []
        for entry, indent in [(group, ""), *[(t, "  ") for t in members]]:
            low, high = entry["index_ci"]
            interval = "–" if None in (low, high, entry["index"]) else \
                f"{entry['index']:.0f} ({low:.0f}–{high:.0f})"
            rows.append({"Code": ("**" if not indent else "") + entry["code"] + ("**" if not indent else ""),
                         "Name": entry["name"] if entry["id"] != SET_ASIDE else "Set aside (missing data)",
                         "Population": percent(entry["population_share"]),
                         "Customers": percent(entry["customer_share"]),
                         "Index (95% CI)": interval, "Verdict": entry["verdict"],
                         "Game plan": entry.get("game_plan") or ""})
    table = pd.DataFrame(rows)
    return markdown_table(table, "llrrrll").replace("\\*\\*", "**")


def game_plan_rows(results: Results) -> list[dict]:
    types = [t for t in level(results, "types") if t["id"] != SET_ASIDE]
    order = {q: i for i, q in enumerate(QUADRANT_ORDER)}
    return sorted(types, key=lambda t: (order.get(t.get("game_plan"), 9), -(t["index"] or 0)))


def game_plan_table(results: Results) -> str:
    rows = [{"Quadrant": t.get("game_plan") or "–", "Type": label(t), "Customers": percent(t["customer_share"]),
             "Population": percent(t["population_share"]),
             "Index": "–" if t["index"] is None else f"{t['index']:.0f}"} for t in game_plan_rows(results)]
    return markdown_table(pd.DataFrame(rows), "llrrr")


def game_plan_rule(results: Results) -> str:
    plan = results.summary["game_plan"]
    return md_escape(
        f"Each type is placed by its share of current customers and its index. A share counts as large "
        f"from {percent(plan['share_threshold'])} (what an average type would hold) and an index as high "
        f"from {plan['index_threshold']:.0f}. Core: large share, high index (keep and grow). Developmental: "
        "large share, index below that (broad campaigns). Niche: small share, high index (targeted "
        "mailings). Low priority: the rest. The set-aside group is not a type and is not placed.")


def distinctness(results: Results) -> str:
    facts = results.summary.get("distinctness")
    if not facts or facts.get("silhouette_groups") is None:
        return ""
    return md_escape(render("distinctness.md.j2", d=facts))


def levels_overview(results: Results) -> str:
    lv = results.summary["levels"]
    groups = [g for g in level(results, "groups") if g["id"] != SET_ASIDE]
    return md_escape(
        f"People are described at two levels: {lv['n_groups']} groups ({join_words([g['code'] for g in groups])}) "
        f"and {lv['n_types']} finer types nested in them (codes such as {groups[0]['code']}1), as commercial "
        "segmentations do. Small types keep valuable niches that a handful of groups would merge away. "
        "People with too much missing data form their own row, X, at both levels.")


def mail_list(results: Results) -> list[dict]:
    """The types to mail (the headline's selection), best index first."""
    by_id = {t["id"]: t for t in level(results, "types")}
    return [by_id[i] for i in results.summary["targeting"]["segments"]]


def niches_text(results: Results) -> str:
    """Types to mail whose group as a whole is not over-represented: the niches kept."""
    groups = {g["id"]: g for g in level(results, "groups")}
    kept = [t for t in mail_list(results) if groups.get(t.get("group"), {}).get("verdict") != "over-represented"]
    if not kept:
        return ""
    names = join_words([f"{t['code']} “{t['name']}” (index {t['index']:.0f}, group {t['group_code']})" for t in kept])
    return md_escape(f"Niches kept: {names} {'is' if len(kept) == 1 else 'are'} worth mailing although "
                     f"{'its group is' if len(kept) == 1 else 'their groups are'} not over-represented as a whole.")


def section(results: Results, entry: dict, figure: Path | str | None = None, level_: int = 2) -> str:
    """Markdown for one group or type: heading, summary, key facts, chart, portrait, recommendation."""
    aside = entry["id"] == SET_ASIDE
    kind = entry.get("level", "type")
    anchor = f"sec-{kind}-{'set-aside' if aside else entry['code'].lower()}"
    title = f"{entry['code']}: {entry['name']}" if not aside else f"{entry['code']}: set-aside group, not a segment"
    if kind == "type" and not aside:
        title += f" (group {entry['group_code']})"
    parts = [f"{'#' * level_} {md_escape(title)} {{#{anchor}}}", f"**{summary_line(entry)}**",
             markdown_table(pd.DataFrame([key_facts_row(entry)]).drop(columns="Segment"), "rrrllll")]
    if figure is not None:
        caption = ("How strongly each trait holds: bar length is the standardised difference from the "
                   "population (0.2 small, 0.5 clear, 0.8 marked), always in the direction its label says; "
                   "for yes/no traits the label gives the difference in percentage points.")
        from analysis.present import alt_text, figures  # they import this module
        alt = figures.attribute(alt_text.level_traits(entry))
        parts.append(f"![{md_escape(caption)}]({Path(figure).as_posix()})"
                     f"{{#fig-{anchor[4:]} width=\"100%\" fig-alt=\"{alt}\"}}")
    parts.append(f"**Pen portrait.** {portrait(entry)}")
    parts.append(f"::: {{.callout-tip}}\n## Recommendation\n\n{md_escape_keep(recommendation(results, entry))}\n:::")
    return "\n\n".join(parts) + "\n"


def md_escape_keep(text: str) -> str:
    """Escape markdown in rendered text but keep the template's bold and list markers."""
    lines = []
    for line in text.splitlines():
        bullet = line.startswith("- ")
        body = md_escape(line[2:] if bullet else line).replace("\\*\\*", "**")
        lines.append(("- " if bullet else "") + body)
    return "\n".join(lines)


def chart_name(entry: dict) -> str:
    return f"{entry.get('level', 'type')}-{entry['code'].lower()}.png"


def effect_rows(entry: dict) -> tuple[np.ndarray, list[str]]:
    """Bar lengths (always >= 0: more of what the label says) and labels for a trait chart."""
    traits = entry.get("top_traits", [])
    values = np.array([abs(t["effect"]) for t in traits], dtype=float)
    labels = [f"{t['phrase']} ({100 * t['difference']:+.0f} pp)" if t.get("kind") == "flag" else t["phrase"]
              for t in traits]
    return values, labels

