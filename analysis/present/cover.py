"""The PDF's cover block and table of contents, and the site's print stylesheet hook.

The title and subtitle come from the page's YAML; what identifies this edition of the report
(data source, analysis date, the data fingerprint) comes from the results, so it is written
here at render time, followed by the contents list (Typst's outline) and a page break.
"""
from __future__ import annotations

from pathlib import Path

from analysis.present.words import md_escape, number
from analysis.results import Results

TOC_DEPTH = 2


def data_fingerprint(results: Results) -> str:
    """One short fingerprint of the input files: their BLAKE2b hashes, in a fixed order, shortened."""
    files = results.summary["data"]["files"]
    return " · ".join(f"{role} {files[role]['blake2b'][:12]}" for role in sorted(files))


def cover_block(results: Results) -> str:
    """Markdown (with raw Typst) for the PDF after its title: edition facts, contents, page break."""
    data = results.summary["data"]
    kind = "synthetic demonstration data (not real people)" if results.is_demo else "files supplied by the user"
    files = ", ".join(f"{Path(f['path']).name} ({role})" for role, f in data["files"].items())
    facts = [
        f"**Data source:** {md_escape(kind)}: {md_escape(files)}; {number(data['rows']['population'])} people "
        f"in the population, {number(data['rows']['customers'])} customers.",
        f"**Analysis date:** {md_escape(results.summary['created'][:10])} (UTC).",
        f"**Data fingerprint:** {md_escape(data_fingerprint(results))}; cache key "
        f"{md_escape(results.summary['cache_key'])}.",
    ]
    outline = f'#outline(title: [Contents], depth: {TOC_DEPTH}, indent: 1.5em)'
    return "\n\n".join(["::: {.cover}", *facts, ":::",
                        "```{=typst}\n#v(1em)\n" + outline + "\n#pagebreak()\n```"]) + "\n"
