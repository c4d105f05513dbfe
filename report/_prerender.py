"""Quarto pre-render step: make sure analysis results exist before any page executes.

Pages only *read* a results folder. This script runs once per ``quarto render``:

* Under ``segments report`` the analysis has just run (``SEGMENTS_ANALYSED`` is set and
  ``SEGMENTS_RESULTS`` names its folder): nothing to do but check that the folder is there.
* Under a plain ``quarto render`` (or ``quarto preview``) it removes the frozen page outputs
  (``_freeze/``: only ``segments report`` knows which results they were made from) and runs
  ``segments run`` in the project root. That is cached on the data, settings and code, so it returns in about a second
  when nothing changed, and recomputes after a data refresh.

Quarto runs ``.py`` scripts with the Python it finds (``QUARTO_PYTHON`` or ``python3`` on PATH),
which may not be the project's environment, so only the standard library is used here.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def segments_command() -> list[str]:
    """``segments`` beside this Python, else on PATH, else ``python -m analysis.shell.cli``."""
    for found in (shutil.which("segments", path=str(Path(sys.executable).parent)), shutil.which("segments")):
        if found:
            return [found]
    return [sys.executable, "-m", "analysis.shell.cli"]


def main() -> int:
    if os.environ.get("SEGMENTS_ANALYSED"):
        named = os.environ.get("SEGMENTS_RESULTS", "")
        if (Path(named) / "results.json").is_file():
            print(f"[pre-render] using the results in {named} (written by segments report)")
            return 0
        print(f"[pre-render] SEGMENTS_RESULTS={named} holds no results.json; run 'segments report' again",
              file=sys.stderr)
        return 1
    # Frozen page outputs are tied to the results they were made from only by `segments report`
    # (analysis.shell.freeze); a plain `quarto render` cannot check that, so it runs every page.
    shutil.rmtree(ROOT / "_freeze", ignore_errors=True)
    command = [*segments_command(), "run"]
    print("[pre-render] " + " ".join(command) + " (cached: quick when nothing changed)")
    return subprocess.run(command, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
