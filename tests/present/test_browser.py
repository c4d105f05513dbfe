"""The rendered site in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

The site is served over HTTP from the session's render (site search fetches its index, which a
``file://`` page may not). Each page must load without console errors; the navbar and the table
of contents must lead where they say; the search must find a segment by name; axe-core (npm,
installed by ``.ci/run`` into ``.cache/axe``) must report no serious or critical violation; and
printing must leave the navigation out.
"""
from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from rendering import ROOT, site_pages

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
AXE = ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# The flags that work in a container without a display, GPU or network (and with a fresh profile).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SERIOUS = ("serious", "critical")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def base_url(rendered):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(rendered.site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=FLAGS, viewport={"width": 1280, "height": 900})
        yield context
        context.close()


@pytest.fixture
def page(browser):
    tab = browser.new_page()
    problems: list[str] = []
    tab.on("console", lambda message: message.type == "error" and problems.append(message.text))
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on("requestfailed", lambda request: problems.append(f"{request.url}: {request.failure}"))
    tab.problems = problems
    yield tab
    tab.close()


@pytest.mark.parametrize("name", site_pages())
def test_page_loads_without_console_errors(page, base_url, name):
    page.goto(f"{base_url}/report/{name}", wait_until="networkidle")
    assert page.locator("h1").first.is_visible()
    assert page.locator("img").count() == page.locator("img").evaluate_all(
        "images => images.filter(i => i.complete && i.naturalWidth > 0).length"), "an image did not load"
    assert not page.problems, "\n".join(page.problems)


def test_navbar_leads_to_every_page(page, base_url):
    page.goto(f"{base_url}/report/index.html", wait_until="networkidle")
    links = page.locator("nav.navbar a.nav-link:not([href$='.pdf'])")
    texts = [links.nth(i).inner_text().strip() for i in range(links.count())]
    visited = []
    for text in texts:
        page.locator("nav.navbar a.nav-link", has_text=text).first.click()
        page.wait_for_load_state("networkidle")
        path = urlsplit(page.url).path
        visited.append("index.html" if path.endswith("/") else Path(path).name)
        assert page.locator("h1").first.is_visible(), text
    assert sorted(visited) == site_pages(), dict(zip(texts, visited))
    assert page.locator("nav.navbar a[href$='full-report.pdf']").count() == 1
    assert not page.problems, "\n".join(page.problems)


@pytest.mark.parametrize("name", site_pages())
def test_table_of_contents_jumps_to_its_sections(page, base_url, name):
    page.goto(f"{base_url}/report/{name}", wait_until="networkidle")
    entries = page.locator("#TOC > ul > li > a.nav-link")  # the top level: deeper ones fold away
    headings = page.locator("main h2[id], main section.level2[id]")
    if headings.count() == 0:
        pytest.skip(f"{name} has no sections")
    assert entries.count() >= 1
    last = entries.nth(entries.count() - 1)
    anchor = last.get_attribute("href").split("#", 1)[1]
    last.click()
    page.wait_for_function("anchor => location.hash === '#' + anchor", arg=anchor)
    target = page.locator(f"[id='{anchor}']")
    assert target.count() == 1
    assert page.evaluate("anchor => { const r = document.getElementById(anchor).getBoundingClientRect(); "
                         "return r.top < window.innerHeight && r.bottom > 0; }", anchor)


def test_search_finds_a_segment_by_name(page, base_url, rendered):
    name = rendered.results.clusters[0]["name"]
    page.goto(f"{base_url}/report/index.html", wait_until="networkidle")
    page.locator("#quarto-search .aa-DetachedSearchButton, #quarto-search button").first.click()
    page.locator(".aa-Input").first.fill(name)
    hits = page.locator(".aa-Item")
    hits.first.wait_for(timeout=15_000)
    assert any(name in text for text in hits.all_inner_texts()), hits.all_inner_texts()[:3]
    profile = page.locator(".aa-Item a[href*='profiles.html']").first
    profile.click()
    page.wait_for_url("**/profiles.html*")
    assert not page.problems, "\n".join(page.problems)


@pytest.mark.parametrize("name", site_pages())
def test_accessibility_scan_finds_no_serious_violation(page, base_url, name):
    if not AXE.is_file():
        pytest.skip(f"axe-core is not installed in {AXE.parent} (.ci/run: npm install --prefix .cache/axe axe-core)")
    page.goto(f"{base_url}/report/{name}", wait_until="networkidle")
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']}))
        .violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                               nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))""")
    print(f"axe {name}: " + (", ".join(f"{v['id']} ({v['impact']}, {len(v['nodes'])}+)" for v in violations)
                             or "no violations"))
    serious = [v for v in violations if v["impact"] in SERIOUS]
    assert not serious, "\n".join(f"{v['impact']}: {v['id']}: {v['help']} at {v['nodes']}" for v in serious)


def test_printing_leaves_out_the_navigation(page, base_url):
    page.goto(f"{base_url}/report/segments.html", wait_until="networkidle")
    assert page.locator("nav.navbar").is_visible()
    page.emulate_media(media="print")
    assert not page.locator("nav.navbar").is_visible()
    assert not page.locator("#TOC").is_visible()
    assert page.locator("main h1, header h1").first.is_visible()
    assert page.locator("main img").first.is_visible()
