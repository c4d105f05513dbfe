"""The report: every page's code runs against a real (small) analysis, and every segment shows up.

Quarto itself is not needed for the main test: each page (``report/*.qmd`` that is not a
partial) is parsed, its ``{{< include >}}`` shortcodes are expanded, its Python cells become a
notebook and the notebook is run in a Jupyter kernel of this interpreter, from a copy of
``report/`` and with ``SEGMENTS_RESULTS`` pointing at the shared small analysis, as Quarto's
Jupyter engine would run it. The real render (site, PDF, browser) is tested in test_rendered.py
and test_browser.py when a ``quarto`` command is available.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from analysis.shell.render import find_quarto
from analysis.present import segments as seg
from analysis.present.cleaning_words import dropped_reasons, log_rows
from analysis.present.words import headline_text, percent, segments_table, source_note
from analysis.results import load_results, results_folder

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "report"
KERNEL = "customer-segments-test"
INCLUDE = re.compile(r"^[ \t]*\{\{<\s*include\s+(\S+)\s*>\}\}[ \t]*$", re.MULTILINE)
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
CELL = re.compile(r"^```\{python[^}\n]*\}[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"(?<!`)`\{python\} ([^`\n]+)`")  # Quarto's inline value: `{python} expr`
SOURCE = re.compile(CELL.pattern + "|" + INLINE.pattern, re.MULTILINE | re.DOTALL)
OPTION = re.compile(r"^#\|\s*([\w-]+):\s*(.*)$", re.MULTILINE)


def pages() -> list[Path]:
    """The documents Quarto renders: report/*.qmd except the partials (names starting with _)."""
    return sorted(p for p in REPORT.glob("*.qmd") if not p.name.startswith("_"))


def expand(path: Path) -> str:
    """The document's text with every include shortcode replaced by the included file (recursively)."""
    text = path.read_text(encoding="utf-8")
    return INCLUDE.sub(lambda m: expand(path.parent / m.group(1)), text)


def split(path: Path) -> tuple[dict, list[str]]:
    """Front matter and the source of each Python cell and inline value, in document order.

    An inline value `{python} expr` becomes a cell of its own holding ``expr``: the kernel runs
    it where Quarto would, after the cells above it, and its result is the cell's output.
    """
    text = expand(path)
    match = FRONT_MATTER.match(text)
    meta = yaml.safe_load(match.group(1)) if match else {}
    body = text[match.end() if match else 0:]
    return meta or {}, [cell if cell else inline for cell, inline in SOURCE.findall(body)]


def options(source: str) -> dict[str, str]:
    return {key: value.strip().strip('"') for key, value in OPTION.findall(source)}


def plain(text: str) -> str:
    """Text for comparing: markdown escapes and tags removed, quotes and spaces normalised."""
    text = re.sub(r"\\(.)", r"\1", html.unescape(re.sub(r"<[^>]+>", " ", text)))
    for fancy, simple in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u2026", "...")):
        text = text.replace(fancy, simple)
    return re.sub(r"\s+", " ", text)


def output_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("display_data", "execute_result"):
            parts.append(out["data"].get("text/markdown", "") or out["data"].get("text/plain", ""))
    return "".join(parts)


def has_image(cell, folder: Path) -> bool:
    """The cell showed a PNG: inline, or as a markdown image of a chart file written beside the page."""
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        shown = re.fullmatch(r"!\[\]\((\S+\.png)\)\{fig-alt=\"[^\"]+\"\}", data.get("text/markdown", "").strip())
        if "image/png" in data or (shown and (folder / shown.group(1)).is_file()):
            return True
    return False


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory, small_results) -> Path:
    """A kernelspec for this interpreter, with the report's environment, in a private folder.

    Its own name and folder mean no kernel installed elsewhere on the machine is picked up.
    Pages draw their figures to PNG themselves (``figures.show``), so the headless Agg backend
    still renders every figure and drawing errors surface here.
    """
    folder = tmp_path_factory.mktemp("kernels")
    spec = folder / KERNEL
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "customer-segments (tests)", "language": "python",
        "env": {"SEGMENTS_RESULTS": str(small_results), "PYTHONNOUSERSITE": "1",
                "MPLBACKEND": "Agg"},
    }))
    return folder


@pytest.fixture(scope="session")
def report_copy(tmp_path_factory) -> Path:
    """A copy of report/ to run the pages in: they write chart files next to themselves."""
    workdir = tmp_path_factory.mktemp("project") / "report"
    shutil.copytree(REPORT, workdir)
    return workdir


@pytest.fixture(scope="session")
def executed(kernel_dir, report_copy) -> dict[str, nbformat.NotebookNode]:
    """Every page run as a notebook in its folder (as Quarto runs pages), cells in order."""
    notebooks = {}
    for page in pages():
        _, sources = split(page)
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source) for source in sources
                    if options(source).get("eval") != "false"]  # Quarto does not run those either
        manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(
            kernel_dirs=[str(kernel_dir)], ensure_native_kernel=False))
        NotebookClient(nb, km=manager, timeout=180, resources={"metadata": {"path": str(report_copy)}}).execute()
        notebooks[page.name] = nb
    return notebooks


SETUP = "_setup.qmd"  # the one partial every page starts with


def test_every_partial_is_in_one_page_and_in_the_pdf():
    site = {p.name: p.read_text(encoding="utf-8") for p in pages() if p.name != "full-report.qmd"}
    pdf = (REPORT / "full-report.qmd").read_text(encoding="utf-8")
    partials = sorted(p.name for p in REPORT.glob("_*.qmd") if p.name != SETUP)
    assert partials
    for name in partials:
        assert sum(name in INCLUDE.findall(text) for text in site.values()) == 1, name
        assert name in INCLUDE.findall(pdf), name
    for text in [*site.values(), pdf]:
        assert INCLUDE.findall(text)[0] == SETUP


def test_quarto_config_renders_exactly_the_pages():
    config = yaml.safe_load((ROOT / "_quarto.yml").read_text(encoding="utf-8"))
    assert sorted(config["project"]["render"]) == sorted(f"report/{p.name}" for p in pages())
    assert config["execute"]["freeze"] == "auto"  # kept only for the same results (analysis/shell/freeze.py)
    assert (ROOT / config["project"]["pre-render"]).is_file()
    for page in pages():
        meta, sources = split(page)
        assert meta["title"] and meta["jupyter"] == "python3", page.name  # Jupyter even if cells sit in includes
        assert "report.source_callout(res)" in sources[0], page.name  # the data source tops every page
    meta, _ = split(REPORT / "full-report.qmd")
    assert list(meta["format"]) == ["typst"]
    assert meta["format"]["typst"]["fig-format"] == "png"


def test_labels_are_unique_across_the_whole_report():
    text = expand(REPORT / "full-report.qmd")
    labels = [options(source).get("label") for source in CELL.findall(text)]
    labels = [label for label in labels if label]
    labels += re.findall(r"\{#((?:fig|tbl|sec)-[\w-]+)", text)
    assert len(labels) == len(set(labels)), sorted(label for label in labels if labels.count(label) > 1)
    for label in labels:
        assert re.fullmatch(r"(fig|tbl|sec)-[a-z0-9-]+", label), label


@pytest.mark.parametrize("page", [p.name for p in pages()])
def test_page_runs_and_shows_the_data_source(executed, report_copy, page, small_results):
    nb = executed[page]
    note = plain(source_note(load_results(small_results)))
    assert note in plain(output_text(nb.cells[0])), "the first cell must show the data-source callout"
    for cell in nb.cells:
        wanted = options(cell.source)
        assert not any(out["output_type"] == "error" for out in cell.outputs)
        if wanted.get("label", "").startswith("fig-"):
            assert has_image(cell, report_copy), f"{wanted['label']} displayed no figure"
        if wanted.get("label", "").startswith("tbl-"):
            assert output_text(cell).lstrip().startswith("|"), f"{wanted['label']} is not a table"


@pytest.mark.parametrize("page", ["profiles.qmd", "full-report.qmd"])
def test_every_segment_has_its_section(executed, report_copy, page, small_results):
    results = load_results(small_results)
    text = plain("".join(output_text(cell) for cell in executed[page].cells))
    assert results.summary["groups"] and results.summary["types"]  # a two-level result
    for entry in seg.level(results, "groups") + seg.level(results, "types"):
        if not entry["set_aside"]:
            assert plain(f"{entry['code']}: {entry['name']}") in text
        assert plain(seg.portrait(entry)) in text
        assert plain(seg.summary_line(entry)) in text
        assert plain(entry["recommendation"]["action"]) in text
        for rule in entry["recommendation"]["messages"] + entry["recommendation"]["channels"]:
            assert plain(rule["what"].capitalize()) in text
        if entry["level"] == "type" and not entry["set_aside"]:
            assert (report_copy / "profile-charts_files" / seg.chart_name(entry)).is_file()
    assert "set-aside group, not a segment" in text
    assert (report_copy / "profile-charts_files" / "set-aside.png").is_file()


def test_segments_page_shows_both_levels_and_the_game_plan(executed, small_results):
    results = load_results(small_results)
    text = plain("".join(output_text(cell) for cell in executed["segments.qmd"].cells))
    for entry in results.summary["groups"] + results.summary["types"]:
        assert plain(entry["code"]) in text
    for entry in seg.game_plan_rows(results):
        assert plain(seg.label(entry)) in text
    assert plain(seg.game_plan_rule(results)) in text
    assert plain(seg.distinctness(results)) in text


def test_summary_names_the_targets_and_the_headline(executed, small_results):
    results = load_results(small_results)
    text = plain("".join(output_text(cell) for cell in executed["index.qmd"].cells))
    assert plain(headline_text(results.summary["targeting"])) in text
    for segment in results.targets:
        assert plain(segment["name"]) in text


def test_data_page_gives_every_cleaning_decision_in_words_with_its_numbers(executed, small_results):
    results = load_results(small_results)
    text = plain("".join(output_text(cell) for cell in executed["data.qmd"].cells))
    log = results.summary["cleaning"]["log"]
    for row in log_rows(log):
        assert plain(f"| {row['Feature']} | {row['Decision']} | {row['Reason']} |") in text
    for name, reason in dropped_reasons(log).items():
        assert plain(f"| {reason} |") in text, name
    aside = next(e for e in log if e["decision"] == "set_aside")
    assert f"{aside['set_aside_share']:.1%}" in text


def test_tables_and_text_are_formatted_for_people(small_results):
    results = load_results(small_results)
    table = segments_table(results).splitlines()
    assert len(table) == 2 + len(results.segments)
    assert all(line.startswith("| ") and line.endswith(" |") for line in table[:1] + table[2:])
    top = results.segment(results.summary["targeting"]["segments"][0])
    row = next(line for line in table if line.startswith(f"| {top['code']} · "))
    assert f"{top['population_count']:,}" in row and f"{top['population_share']:.1%}" in row
    assert percent(0.004, 0) == "0.4%" and percent(0.25, 0) == "25%" and percent(float("nan")) == "–"


def prerender(project: Path, **env: str) -> subprocess.CompletedProcess:
    """Run the pre-render script of a project copy as Quarto would: its own Python, project root as cwd."""
    environ = {k: v for k, v in os.environ.items() if k not in ("SEGMENTS_RESULTS", "SEGMENTS_ANALYSED")}
    environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + environ.get("PATH", "")
    return subprocess.run([sys.executable, str(project / "report" / "_prerender.py")], cwd=project,
                          env={**environ, **env}, capture_output=True, text=True, timeout=300)


def test_prerender_only_checks_the_results_segments_report_names(tmp_path, small_results):
    shutil.copytree(REPORT, tmp_path / "report")
    assert prerender(tmp_path, SEGMENTS_RESULTS=str(small_results), SEGMENTS_ANALYSED="1").returncode == 0
    missing = prerender(tmp_path, SEGMENTS_RESULTS=str(tmp_path / "nothing"), SEGMENTS_ANALYSED="1")
    assert missing.returncode == 1 and "no results.json" in missing.stderr
    assert not (tmp_path / "_results").exists()


@pytest.mark.slow
def test_prerender_runs_the_cached_analysis_where_the_pages_look(tmp_path, monkeypatch):
    shutil.copy(ROOT / "_quarto.yml", tmp_path)
    shutil.copytree(REPORT, tmp_path / "report")
    (tmp_path / "segments.toml").write_text('[analysis]\nk_max = 4\n[output]\nresults = "out/results"\n')
    tiny = {"SEGMENTS_CACHE_DIR": str(tmp_path / "cache"), "SEGMENTS_DEMO_POPULATION": "3000",
            "SEGMENTS_DEMO_CUSTOMERS": "800"}
    first = prerender(tmp_path, **tiny)
    assert first.returncode == 0, first.stderr[-2000:]
    assert (tmp_path / "out" / "results" / "results.json").is_file()
    again = prerender(tmp_path, **tiny)
    assert again.returncode == 0 and "up to date" in again.stderr + again.stdout
    monkeypatch.delenv("SEGMENTS_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path / "report")  # where Quarto executes the pages
    assert results_folder().resolve() == (tmp_path / "out" / "results").resolve()
    monkeypatch.setenv("SEGMENTS_RESULTS", "elsewhere")  # a user setting: relative to the project root
    assert results_folder().resolve() == (tmp_path / "elsewhere").resolve()


def test_changes_page_says_first_report_without_a_previous_run(executed):
    for page in ("changes.qmd", "index.qmd"):
        text = plain("".join(output_text(cell) for cell in executed[page].cells))
        assert "first report" in text
