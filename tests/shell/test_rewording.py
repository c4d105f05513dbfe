"""Rewording a page re-renders from the cached analysis: the cache key hashes only analysis code.

The package is copied and edited in the copy, so the checked-out code is never touched.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.shell.store import ANALYSIS_CODE, code_fingerprint
from damage import valid_files

PACKAGE = Path(__file__).resolve().parents[2] / "analysis"
ANALYSIS_PARTS = ("inputs", "prepare", "segment", "compare", "profile")  # docs/architecture.md
WORDS_ONLY = ("results.py", "present", "shell", "demo")


@pytest.fixture
def copy(tmp_path) -> Path:
    target = tmp_path / "src" / "analysis"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def reword(path: Path) -> None:
    """Change a sentence (or, in a file without one, add a comment line)."""
    text = path.read_text(encoding="utf-8")
    changed = text.replace("These results use", "These findings use", 1)
    path.write_text(changed if changed != text else text + "\n# reworded\n", encoding="utf-8")


def test_the_key_covers_the_analysis_and_nothing_that_only_presents():
    keyed = {p for pattern in ANALYSIS_CODE for p in PACKAGE.glob(pattern)}
    for part in ANALYSIS_PARTS:
        assert set((PACKAGE / part).glob("*.py")) <= keyed, part
    assert {PACKAGE / "pipeline.py", PACKAGE / "constants.py", PACKAGE / "settings.py"} <= keyed
    for part in WORDS_ONLY:
        assert not any(p == PACKAGE / part or PACKAGE / part in p.parents for p in keyed), part


@pytest.mark.parametrize("edited", ["present/words.py", "present/figures.py", "present/cleaning_words.py",
                                    "results.py", "shell/sources.py", "demo/synthetic.py"])
def test_rewording_keeps_the_cache_key(copy, edited):
    before = code_fingerprint(copy)
    reword(copy / edited)
    assert code_fingerprint(copy) == before


@pytest.mark.parametrize("edited", ["prepare/reduce.py", "segment/kselect.py", "pipeline.py",
                                    "data/recommendations.toml"])
def test_changing_the_analysis_changes_the_cache_key(copy, edited):
    before = code_fingerprint(copy)
    reword(copy / edited)
    assert code_fingerprint(copy) != before


def segments(copy: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``segments`` from the copied package, in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(copy.parent), "SEGMENTS_K_MAX": "4"}
    env.pop("SEGMENTS_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "analysis.shell.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_segments_run_after_a_wording_edit_is_a_cache_hit(copy, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    files = valid_files(data / "files", population=2_000, customers=500, seed=3)
    flags = []
    for role, flag in (("population", "--population"), ("customers", "--customers"),
                       ("summary", "--feature-summary")):
        (data / f"{role}.csv").write_bytes(files[role])
        flags += [flag, str(data / f"{role}.csv")]
    out = ["--out", str(tmp_path / "_results"), "--k", "3"]
    first = segments(copy, tmp_path, "run", *flags, *out)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "results written to" in first.stderr

    for edited in ("present/words.py", "present/cleaning_words.py", "results.py"):
        reword(copy / edited)
    again = segments(copy, tmp_path, "run", *flags, *out)
    assert again.returncode == 0 and "are up to date" in again.stderr, again.stderr[-2000:]

    reword(copy / "prepare" / "reduce.py")  # analysis code: the run is redone
    redone = segments(copy, tmp_path, "run", *flags, *out)
    assert redone.returncode == 0 and "results written to" in redone.stderr, redone.stderr[-2000:]
