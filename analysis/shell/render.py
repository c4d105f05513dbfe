"""Render the Quarto site and PDF from the results folder.

Quarto is found on PATH (or beside this Python, where the ``render`` extra's ``quarto-cli``
puts it). If it is missing, the ``render`` extra is installed once; if that fails too the
command stops with instructions, after the analysis results were written.

The site is rendered into a temporary folder and swapped in only when complete, so a failed
render leaves the previous ``_site`` intact.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

from analysis.errors import EXIT_NO_QUARTO, EXIT_RENDER
from analysis.settings import project_root
from analysis.shell import freeze
from analysis.shell.progress import Stages
from analysis.shell.lock import claim_folder
from analysis.shell.store import atomic_folder

SITE = "_site"
# Set for Quarto's pre-render step: the analysis has just run, only check its results.
ANALYSED = "SEGMENTS_ANALYSED"
INSTALL_HELP = """segments: Quarto is needed to render the report and could not be found or installed.
The analysis results are written ({results}); to get the HTML site and PDF:
  * install Quarto (https://quarto.org/docs/get-started/), then run `segments report` again, or
  * run `{python} -m pip install 'quarto-cli>=1.6'` on a machine with internet access
    (the quarto-cli package downloads Quarto while it installs), then `segments report` again.
Typst, used for the PDF, ships with Quarto: no LaTeX is needed."""


def find_quarto() -> str | None:
    """``quarto`` on PATH or in this interpreter's scripts folder (where quarto-cli installs it)."""
    scripts = str(Path(sys.executable).parent)
    return shutil.which("quarto") or shutil.which("quarto", path=scripts)


def render_extra() -> list[str]:
    """The requirements of the ``render`` extra, read from the installed package's metadata."""
    try:
        declared = requires("customer-segments") or []
    except PackageNotFoundError:
        return []
    return [r.split(";")[0].strip() for r in declared if 'extra == "render"' in r]


def install_render_extra(stages: Stages) -> bool:
    packages = render_extra()
    if not packages:
        return False
    stages.say("Quarto not found: installing the render extra (" + ", ".join(packages) + ")")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *packages], check=False,
                          capture_output=True, text=True)
    if done.returncode != 0:  # pip's own report is long; its last line says what failed
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        stages.say(f"installing the render extra failed (pip exit code {done.returncode}): {last}")
    return done.returncode == 0


class RenderFailed(Exception):
    """Quarto exited non-zero; its own messages are already on the terminal."""


def render_site(results: Path, stages: Stages, root: Path | None = None) -> int:
    """Render ``report/`` to ``_site`` (HTML) and the PDF; returns the process exit code."""
    quarto = find_quarto() or (install_render_extra(stages) and find_quarto())
    if not quarto:
        print(INSTALL_HELP.format(results=results, python=sys.executable), file=sys.stderr)
        return EXIT_NO_QUARTO
    root = project_root(root)
    # Quarto's Jupyter engine must run this interpreter (where `analysis` is installed), even
    # when the virtual environment is not activated.
    scripts = str(Path(sys.executable).parent)
    env = {**os.environ, "SEGMENTS_RESULTS": str(Path(results).resolve()), ANALYSED: "1",
           "QUARTO_PYTHON": sys.executable, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}
    key = freeze.render_key(results)
    if freeze.forget_stale(root, key):
        stages.say("pages unchanged since the last render of these results: reusing their frozen output")
    try:
        with (claim_folder(root / SITE), stages.stage("render report (quarto)"),
              atomic_folder(root / SITE) as work):
            done = subprocess.run([quarto, "render", "--output-dir", str(work)], cwd=root, env=env, check=False)
            if done.returncode != 0:
                raise RenderFailed(done.returncode)
        freeze.remember(root, key)
    except RenderFailed as failed:
        print(f"segments: error: quarto render failed (exit code {failed.args[0]}; its messages are above). "
              f"The analysis results in {results} are complete; the previous {root / SITE} was kept.",
              file=sys.stderr)
        return EXIT_RENDER
    stages.say(f"report written to {root / SITE}: open {root / SITE / 'index.html'}; "
               f"the PDF is {root / SITE / 'report' / 'full-report.pdf'}")
    return 0
