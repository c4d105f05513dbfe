"""``segments validate``: check the input files and summarise their quality, without clustering.

It loads and cleans exactly as the analysis does, so a file that passes here will not fail
the analysis for an input reason, and the counts match the report's data-quality section.
"""
from __future__ import annotations

from analysis.prepare.cleaning import CleanedTable
from analysis.settings import Settings
from analysis.shell.sources import resolve_inputs
from analysis.pipeline import prepare
from analysis.shell.progress import Stages

TOP_MISSING = 8


def validate(settings: Settings, stages: Stages) -> str:
    """Load and clean both files as the analysis would; return a plain-text quality summary."""
    inputs = resolve_inputs(settings, stages)
    prepared = prepare(inputs, settings.analysis, stages)
    plan = prepared.plan
    summary = inputs.feature_summary or "the packaged copy"
    lines = [f"Data: {inputs.note}", f"Feature summary: {summary} ({len(prepared.features)} features)", ""]
    lines += _describe("Population", prepared.checks["population"], prepared.pop)
    lines += _describe("Customers", prepared.checks["customers"], prepared.cust)
    lines.append(f"Columns dropped ({len(plan.dropped)}):")
    lines += [f"  {name}: {reason}" for name, reason in plan.dropped.items()]
    lines.append(f"Cleaned matrix: {len(plan.columns)} columns.")
    lines.append("OK: both files can be analysed.")
    return "\n".join(lines)


def _describe(title: str, facts: dict, cleaned: CleanedTable) -> list[str]:
    quality = cleaned.quality
    worst = quality["missing_share"].sort_values(ascending=False).head(TOP_MISSING)
    out_of_range = quality["out_of_range"][quality["out_of_range"] > 0]
    lines = [f"{title}: {facts['path']}",
             f"  {facts['rows']:,} rows, {len(quality)} features",
             *(f"  note: {note}" for note in facts["notes"]),
             f"  duplicate rows: {facts['duplicate_rows']:,}",
             f"  values outside the valid codes (treated as missing): {int(out_of_range.sum()):,}",
             *(f"    {name}: {count:,}" for name, count in out_of_range.items()),
             f"  rows set aside for missing data: {int(cleaned.set_aside.sum()):,} "
             f"({cleaned.set_aside.mean():.1%})",
             "  most-missing columns: " + ", ".join(f"{n} {s:.0%}" for n, s in worst.items()),
             ""]
    return lines
