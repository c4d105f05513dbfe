"""`segments report`'s render step with a stand-in for Quarto (Quarto itself is not installable here)."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from analysis.shell import render
from analysis.shell.cli import EXIT_NO_QUARTO, EXIT_RENDER
from analysis.shell.progress import Stages

FAKE = """#!/bin/sh
# a stand-in for `quarto render --output-dir DIR`: writes a page, or fails
[ "$1" = render ] && [ "$2" = --output-dir ] || exit 64
{body}
"""


def fake_quarto(folder: Path, body: str) -> str:
    path = folder / "quarto"
    path.write_text(FAKE.format(body=body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    (root / "_site").mkdir(parents=True)
    (root / "_quarto.yml").write_text("project:\n  type: website\n")
    (root / "_site" / "index.html").write_text("previous report")
    return root


def test_successful_render_replaces_the_site(project, tmp_path, monkeypatch):
    quarto = fake_quarto(tmp_path, 'echo "$SEGMENTS_RESULTS" > "$3/index.html"')
    monkeypatch.setattr(render, "find_quarto", lambda: quarto)
    assert render.render_site(tmp_path / "results", Stages(stream=None), project) == 0
    assert (project / "_site" / "index.html").read_text().strip() == str((tmp_path / "results").resolve())


def test_failed_render_keeps_the_previous_site(project, tmp_path, monkeypatch, capsys):
    quarto = fake_quarto(tmp_path, 'echo half > "$3/index.html"; exit 1')
    monkeypatch.setattr(render, "find_quarto", lambda: quarto)
    assert render.render_site(tmp_path / "results", Stages(stream=None), project) == EXIT_RENDER
    assert (project / "_site" / "index.html").read_text() == "previous report"
    assert sorted(p.name for p in project.iterdir()) == ["_quarto.yml", "_site"]
    assert "quarto render failed (exit code 1" in capsys.readouterr().err


def test_missing_quarto_says_how_to_install_it(project, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(render, "find_quarto", lambda: None)
    monkeypatch.setattr(render, "install_render_extra", lambda stages: False)
    assert render.render_site(tmp_path / "results", Stages(stream=None), project) == EXIT_NO_QUARTO
    err = capsys.readouterr().err
    assert "install Quarto" in err and "pip install 'quarto-cli>=1.6'" in err
    assert (project / "_site" / "index.html").read_text() == "previous report"


def test_render_extra_is_read_from_package_metadata():
    extra = render.render_extra()
    assert any(r.startswith("quarto-cli") for r in extra)
    assert not any(r.startswith("pytest") for r in extra)


@pytest.mark.slow
def test_report_without_quarto_writes_results_and_explains(tmp_path, monkeypatch, capsys):
    """The README's main command on a machine without Quarto: results written, exit 3, instructions."""
    from analysis.shell.cli import main

    monkeypatch.chdir(tmp_path)
    for name, value in {"SEGMENTS_CACHE_DIR": str(tmp_path / "cache"), "SEGMENTS_DEMO_POPULATION": "3000",
                        "SEGMENTS_DEMO_CUSTOMERS": "800", "SEGMENTS_K_MAX": "4"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SEGMENTS_CONFIG", raising=False)
    monkeypatch.setattr(render, "find_quarto", lambda: None)
    monkeypatch.setattr(render, "install_render_extra", lambda stages: False)
    assert main(["report"]) == EXIT_NO_QUARTO
    err = capsys.readouterr().err
    assert "using the synthetic demonstration dataset" in err
    assert "install Quarto" in err
    assert (tmp_path / "_results" / "results.json").is_file()
    assert not (tmp_path / "_site").exists()


def test_failed_install_of_the_render_extra_is_summarised(monkeypatch, capsys):
    import subprocess

    failed = subprocess.CompletedProcess([], 1, stdout="", stderr="long pip report\nERROR: Could not build quarto-cli\n")
    monkeypatch.setattr(render.subprocess, "run", lambda *args, **kwargs: failed)
    assert render.install_render_extra(Stages()) is False
    err = capsys.readouterr().err
    assert "installing the render extra failed (pip exit code 1): ERROR: Could not build quarto-cli" in err
    assert "long pip report" not in err
