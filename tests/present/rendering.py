"""Helpers for the real-render tests: a project copy pointed at some data, `segments report` in it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from analysis.results import Results

ROOT = Path(__file__).resolve().parents[2]
NO_QUARTO = "quarto is not on PATH (CI sets up the Quarto kit from ../shared/quarto; see .ci/run)"


@dataclass(frozen=True)
class Rendered:
    project: Path
    log: str
    results: Results

    @property
    def site(self) -> Path:
        return self.project / "_site"

    @property
    def pdf(self) -> Path:
        return self.site / "report" / "full-report.pdf"


def make_project(folder: Path, data, results: Path | None = None, k_max: int = 10) -> Path:
    """A copy of the report project whose segments.toml names ``data``; ``results`` is copied in
    as its (cached) results folder when given."""
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "_quarto.yml", folder)
    shutil.copytree(ROOT / "report", folder / "report", ignore=shutil.ignore_patterns("*_files", ".quarto", "*.quarto_ipynb"))
    if results is not None:
        shutil.copytree(results, folder / "_results")
    (folder / "segments.toml").write_text(
        f'[data]\npopulation = "{data.population}"\ncustomers = "{data.customers}"\n'
        f'feature_summary = "{data.feature_summary}"\n[analysis]\nk_max = {k_max}\n'
        '[output]\nresults = "_results"\n', encoding="utf-8")
    return folder


def segments_report(project: Path) -> subprocess.CompletedProcess:
    """`segments report` in ``project``, as a user runs it, output captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTS_") and k != "MPLBACKEND"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return subprocess.run([sys.executable, "-m", "analysis.shell.cli", "report"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=1200)


def site_pages() -> list[str]:
    """The HTML pages the site must have: one per report/*.qmd (not partials, not the PDF page)."""
    return sorted(p.with_suffix(".html").name for p in (ROOT / "report").glob("*.qmd")
                  if not p.name.startswith("_") and p.name != "full-report.qmd")
