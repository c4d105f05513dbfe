"""The rendered site and PDF as a reader gets them (`segments report` run for real, see conftest).

Every check goes over everything found (all pages, links, images, tables, PDF pages), so a new
page or chart is covered without changing these tests.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from analysis.present.cover import data_fingerprint
from analysis.present import segments as seg
from analysis.present.words import source_note
from analysis.results import load_results
from analysis.demo.synthetic import generate
from rendering import make_project, segments_report, site_pages

pytestmark = pytest.mark.slow

# Render-log lines that say "warning" and are expected with the Quarto kit; anything else fails.
KNOWN_WARNINGS = (
    "typst-gather analyze failed",  # the kit lacks this helper; Quarto falls back (kit README)
    "Run ./configure.sh to build and install it",  # second line of the same message
    "Kernel is running over TCP without encryption",  # ipykernel's notice for a local kernel
)
A4_MARGIN = 2 / 2.54 * 72  # full-report.qmd: margin x and y 2 cm, in PDF points
# Typst lets punctuation and the edges of some glyphs hang slightly into the margin, on purpose.
OVERHANG = 4


class Page(HTMLParser):
    """What the checks need from one HTML page: ids, links, images with their figure captions, tables."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.images: list[dict[str, str]] = []
        self.tables: list[dict] = []
        self.captions: list[str] = []
        self._caption: list[str] | None = None
        self._header_cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name) and tag in ("a", "link", "script", "img"):
                self.links.append(attrs[name])
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables.append({"headers": [], "rows": 0})
        elif tag == "th" and self.tables:
            self._header_cell = []
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"] += 1
        elif tag == "figcaption":
            self._caption = []

    def handle_data(self, data):
        if self._header_cell is not None:
            self._header_cell.append(data)
        if self._caption is not None:
            self._caption.append(data)

    def handle_endtag(self, tag):
        if tag == "th" and self._header_cell is not None:
            self.tables[-1]["headers"].append("".join(self._header_cell).strip())
            self._header_cell = None
        elif tag == "figcaption" and self._caption is not None:
            self.captions.append(" ".join("".join(self._caption).split()))
            self._caption = None


def parsed(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def html_files(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def squeeze(text: str) -> str:
    """Text for comparing across HTML and PDF: no spaces, hyphens or typographic quotes (a PDF
    line may break and hyphenate anywhere)."""
    for fancy, simple in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u00a0", " ")):
        text = text.replace(fancy, simple)
    return re.sub(r"[\s\-\u00ad\u2010\u2011\u2060]+", "", text)


def pdf_text(pdf: Path, first: int | None = None, last: int | None = None) -> str:
    pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    return subprocess.run(["pdftotext", "-layout", *pages, str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                     reason="pdftotext (Debian poppler-utils) is not installed; .ci/run installs it")


def test_every_page_and_the_pdf_exist(rendered):
    for name in site_pages():
        assert (rendered.site / "report" / name).is_file(), name
    assert (rendered.site / "index.html").is_file()
    assert rendered.pdf.read_bytes()[:5] == b"%PDF-"
    source = " ".join(source_note(rendered.results).split())
    for name in site_pages():
        text = " ".join((rendered.site / "report" / name).read_text(encoding="utf-8").split())
        assert source in text, f"{name} does not show the data source"


def test_every_internal_link_and_anchor_resolves(rendered):
    pages = {path: parsed(path) for path in html_files(rendered.site)}
    broken = []
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("javascript:", "mailto:")):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path.relative_to(rendered.site)}: {link} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parsed(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{path.relative_to(rendered.site)}: {link} (no such anchor)")
    assert not broken, "\n".join(broken)


def test_every_figure_has_alt_text_that_says_what_it_shows(rendered):
    names = [segment["name"] for segment in rendered.results.segments]
    seen = 0
    for name in site_pages():
        page = parsed(rendered.site / "report" / name)
        alts = [image.get("alt", "").strip() for image in page.images]
        seen += len(alts)
        for alt in alts:
            assert len(alt.split()) >= 8, f"{name}: alt text too short to say what the chart shows: {alt!r}"
            assert alt not in page.captions, f"{name}: the alt text only repeats the caption: {alt!r}"
            assert re.search(r"\d", alt), f"{name}: the alt text gives no number from the results: {alt!r}"
        assert len(set(alts)) == len(alts), f"{name}: two charts share one alt text"
    assert seen >= 8 + len(rendered.results.segments)  # the eight charts and one per segment section
    profiles = parsed(rendered.site / "report" / "profiles.html")
    for segment in rendered.results.clusters:
        assert any(segment["name"] in image.get("alt", "") for image in profiles.images), segment["name"]
    assert any(n in image.get("alt", "") for n in names for image in parsed(
        rendered.site / "report" / "segments.html").images)


def test_every_table_has_a_header_row(rendered):
    count = 0
    for name in site_pages():
        for number, table in enumerate(parsed(rendered.site / "report" / name).tables, start=1):
            count += 1
            assert table["headers"] and all(table["headers"]), f"{name}: table {number} has no header row"
            assert table["rows"] >= 2, f"{name}: table {number} has a header but no rows"
    assert count >= 10


@needs_pdftotext
def test_each_segment_and_its_recommendation_is_in_the_html_and_the_pdf(rendered):
    html = squeeze(re.sub(r"<[^>]+>", " ", (rendered.site / "report" / "profiles.html").read_text(encoding="utf-8")))
    import html as html_module
    html = squeeze(html_module.unescape(html))
    pdf = squeeze(pdf_text(rendered.pdf))
    results = rendered.results
    for entry in [*seg.level(results, "groups"), *seg.level(results, "types")]:
        for text in (f"{entry['code']}: {entry['name']}" if entry["id"] != -1 else entry["code"],
                     seg.portrait(entry), entry["recommendation"]["action"]):
            text = re.sub(r"\\(.)", r"\1", text)  # markdown escapes are not part of what a reader sees
            assert squeeze(text) in html, f"not on the profiles page: {text}"
            assert squeeze(text) in pdf, f"not in the PDF: {text}"


@needs_pdftotext
def test_pdf_has_a_cover_block_contents_and_page_numbers(rendered):
    results = rendered.results
    cover = " ".join(pdf_text(rendered.pdf, 1, 1).split())
    assert "Customer segments: whom to mail" in cover
    assert "Data source:" in cover
    assert ("synthetic demonstration data" in cover) == results.is_demo
    for role, file in results.summary["data"]["files"].items():
        assert Path(file["path"]).name in cover, role
    assert f"Analysis date: {results.summary['created'][:10]}" in cover
    assert squeeze(data_fingerprint(results)) in squeeze(cover)
    assert "Contents" in cover and "Segment profiles" in cover
    pages = pdf_text(rendered.pdf).split("\f")[:-1]
    assert len(pages) >= 10
    for number, page in enumerate(pages, start=1):
        assert page.strip().splitlines()[-1].strip() == f"{number} / {len(pages)}", f"page {number} has no number"


def test_pdf_text_and_figures_stay_inside_the_page(rendered):
    pdfplumber = pytest.importorskip("pdfplumber")
    problems = []
    with pdfplumber.open(rendered.pdf) as pdf:
        for number, page in enumerate(pdf.pages, start=1):
            for char in page.chars:
                if char["text"].strip() and not (char["x0"] >= A4_MARGIN - OVERHANG
                                                 and char["x1"] <= page.width - A4_MARGIN + OVERHANG
                                                 and char["top"] >= 0 and char["bottom"] <= page.height):
                    problems.append(f"page {number}: text {char['text']!r} at x {char['x0']:.0f}-{char['x1']:.0f}, "
                                    f"y {char['top']:.0f}-{char['bottom']:.0f} of {page.width:.0f} x {page.height:.0f}")
                    break
            for image in page.images:
                if image["x0"] < A4_MARGIN - OVERHANG or image["x1"] > page.width - A4_MARGIN + OVERHANG or image["bottom"] > page.height:
                    problems.append(f"page {number}: an image at x {image['x0']:.0f}-{image['x1']:.0f} "
                                    f"is wider than the text ({A4_MARGIN:.0f}-{page.width - A4_MARGIN:.0f})")
        assert sum(len(page.images) for page in pdf.pages) >= 8 + len(rendered.results.segments)
    assert not problems, "\n".join(problems)


def test_render_log_has_no_warnings_but_the_known_ones(rendered):
    warnings = [line for line in rendered.log.splitlines()
                if re.search(r"warn|error", line, re.IGNORECASE) and not any(k in line for k in KNOWN_WARNINGS)]
    assert not warnings, "\n".join(warnings)


def test_frozen_pages_are_reused_for_the_same_results_and_never_after_a_refresh(rendered, tmp_path):
    """An unchanged analysis re-renders without running a page; new data re-runs every page."""
    project = tmp_path / "project"
    shutil.copytree(rendered.project, project, ignore=shutil.ignore_patterns("_site"))
    again = segments_report(project)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing their frozen output" in again.stderr and "Starting python3 kernel" not in again.stdout + again.stderr
    first = (project / "_site" / "report" / "segments.html").read_text(encoding="utf-8")
    assert first == (rendered.site / "report" / "segments.html").read_text(encoding="utf-8")

    other = generate(tmp_path / "other", population=6_000, customers=1_500, seed=7)
    old_results = rendered.results
    fresh = make_project(tmp_path / "scratch", other, k_max=4) / "segments.toml"
    shutil.copy(fresh, project / "segments.toml")  # the same project, pointed at new data
    refreshed = segments_report(project)
    assert refreshed.returncode == 0, refreshed.stderr[-3000:]
    assert "reusing their frozen output" not in refreshed.stderr
    new_results = load_results(project / "_results")
    assert new_results.summary["cache_key"] != old_results.summary["cache_key"]
    rows = new_results.summary["data"]["rows"]
    assert (rows["population"], rows["customers"]) == (6_000, 1_500)
    for name in site_pages():
        text = (project / "_site" / "report" / name).read_text(encoding="utf-8")
        assert "6,000 people in the population file" in text, f"{name} shows the new data"
        old_rows = old_results.summary["data"]["rows"]["population"]
        assert f"{old_rows:,} people in the population file" not in text, f"{name} shows the previous data"
    method = (project / "_site" / "report" / "method.html").read_text(encoding="utf-8")
    assert new_results.summary["cache_key"] in method and old_results.summary["cache_key"] not in method
    cover = " ".join(pdf_text(project / "_site" / "report" / "full-report.pdf", 1, 1).split()) \
        if shutil.which("pdftotext") else ""
    if cover:
        assert "6,000 people in the population" in cover
